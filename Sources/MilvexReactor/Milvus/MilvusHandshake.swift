internal import MilvexProtos
import SwiftProtobuf

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Milvus's `Connect` handshake, run on every new channel before the connection counts as
/// connected: the client introduces itself (`ClientInfo`), the server answers with its
/// `identifier`, which goes out as `identifier` metadata on every later call. Servers that
/// predate `Connect` answer `UNIMPLEMENTED`; the connection then goes on without it.
///
/// The request and the reading of the answer are pure; the driver performs the call.
enum MilvusHandshake {
  static let path = "/milvus.proto.milvus.MilvusService/Connect"

  /// What the driver does with the answer.
  enum Outcome: Equatable {
    /// Connected; send `identifier` metadata when the server gave one.
    case proceed(identifier: Int64?)
    /// The attempt failed, for this reason.
    case fail(String)
    /// The server refused the credentials: trying again cannot help. Callers get `error`.
    case refuse(MilvexError, reason: String)
  }

  /// Milvus's "user hasn't authenticated" (merr `ErrNeedAuthenticate`) inside a status.
  static let needAuthenticateCode: Int32 = 1800

  /// A serialized `ConnectRequest` (sdk type `Swift`, this library's version, local time,
  /// user, host name). The password and token are not part of it.
  static func request(user: String?) -> [UInt8] {
    var info = Milvus_Proto_Common_ClientInfo()
    info.sdkType = "Swift"
    info.sdkVersion = MilvexReactorVersion.string
    info.localTime = localTime()
    info.user = user ?? ""
    info.host = hostName()
    var request = Milvus_Proto_Milvus_ConnectRequest()
    request.clientInfo = info
    return (try? request.serializedBytes()) ?? []
  }

  /// Reads the server's answer to `Connect`.
  static func outcome(_ result: Result<[UInt8], MilvexError>) -> Outcome {
    switch result {
    case .failure(.grpcStatus(let status)) where status.code == .unimplemented:
      return .proceed(identifier: nil)
    case .failure(.grpcStatus(let status)) where status.code == .unauthenticated:
      return refusal(status.message)
    case .failure(let error):
      return .fail("the Milvus Connect handshake failed: \(error)")
    case .success(let bytes):
      guard let response = try? Milvus_Proto_Milvus_ConnectResponse(serializedBytes: bytes) else {
        return .fail("the Milvus Connect handshake failed: the answer is not a ConnectResponse")
      }
      let status = response.status
      guard status.errorCode == .success, status.code == 0 else {
        if status.code == needAuthenticateCode { return refusal(status.reason) }
        let code = status.code != 0 ? status.code : Int32(status.errorCode.rawValue)
        return .fail("the Milvus Connect handshake failed: Milvus error \(code): \(status.reason)")
      }
      return .proceed(identifier: response.identifier == 0 ? nil : response.identifier)
    }
  }

  /// The path of Milvus's health check, the connection's health probe.
  static let checkHealthPath = "/milvus.proto.milvus.MilvusService/CheckHealth"

  /// Reads the answer to `CheckHealth`: nil when healthy (or the server has no CheckHealth),
  /// else why not.
  static func unhealthy(_ result: Result<[UInt8], MilvexError>) -> String? {
    switch result {
    case .failure(.grpcStatus(let status)) where status.code == .unimplemented:
      return nil
    case .failure(let error):
      return "CheckHealth failed: \(error)"
    case .success(let bytes):
      guard let response = try? Milvus_Proto_Milvus_CheckHealthResponse(serializedBytes: bytes)
      else { return "CheckHealth answered something that is not a CheckHealthResponse" }
      let status = response.status
      guard status.errorCode == .success, status.code == 0 else {
        let code = status.code != 0 ? status.code : Int32(status.errorCode.rawValue)
        return "CheckHealth: Milvus error \(code): \(status.reason)"
      }
      guard response.isHealthy else {
        let reasons = response.reasons.joined(separator: "; ")
        return "the server reports it is not healthy" + (reasons.isEmpty ? "" : ": \(reasons)")
      }
      return nil
    }
  }

  /// The server refused the credentials (`message` is its words; they hold no secret).
  private static func refusal(_ message: String) -> Outcome {
    let reason =
      "Milvus refused the credentials (check the user and password, or the token): "
      + (message.isEmpty ? "UNAUTHENTICATED" : message)
    return .refuse(.status(.unauthenticated, reason), reason: reason)
  }

  private static func localTime() -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    var buffer = [CChar](repeating: 0, count: 64)
    let count = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S %z", &parts)
    return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  private static func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

/// The Milvus layer's ``ChannelSetup``: runs Milvus's `Connect` handshake on every new channel
/// (`MilvusHandshake`) and gives every call the metadata Milvus expects: `authorization`
/// (from the token, or user and password), `dbname` (the database calls default to) and
/// `identifier` (the server's answer to `Connect`, once it gave one).
///
/// ``MilvusClient/connect(config:on:name:retryPolicy:logger:metrics:random:)`` uses it; start a
/// ``Connection`` with it yourself to share one connection between clients:
///
/// ```swift
/// let connection = try Connection.start(config: config, on: loop, setup: .milvus)
/// let client = try MilvusClient(connection: connection)
/// ```
public struct MilvusChannelSetup: ChannelSetup {
  /// The step Milvus servers expect.
  public init() {}

  /// Sends `Connect` with this client's description and reads the answer: the server's
  /// identifier, an older server without `Connect` (ready without one), a failure (retried) or
  /// a refusal of the credentials (final).
  ///
  /// - Important: Called by the connection on the loop thread; `completion` runs there.
  public func setUp(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (ChannelSetupOutcome<Int64>) -> Void
  ) {
    channel.onLoop.unary(
      path: MilvusHandshake.path, request: MilvusHandshake.request(user: config.user),
      timeout: timeout
    ) { result in
      switch MilvusHandshake.outcome(result) {
      case .proceed(let identifier): completion(.ready(identifier ?? 0))
      case .fail(let reason): completion(.failed(reason: reason))
      case .refuse(let error, let reason): completion(.refused(error, reason: reason))
      }
    }
  }

  /// Milvus's `CheckHealth`: healthy when the server says so (or lacks the method); else the
  /// reasons it gives, or the call's error.
  ///
  /// - Important: Called by the connection on the loop thread; `completion` runs there.
  public func probe(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (_ unhealthy: String?) -> Void
  ) {
    // CheckHealthRequest has no fields: its encoding is empty.
    channel.onLoop.unary(path: MilvusHandshake.checkHealthPath, request: [], timeout: timeout) {
      completion(MilvusHandshake.unhealthy($0))
    }
  }

  /// `authorization` (if credentials are set), `dbname` and `identifier` (a non-zero one).
  ///
  /// - Important: Called by the connection on the loop thread. The values carry the
  ///   credentials: never log them.
  public func defaultMetadata(config: ConnectionConfig, session identifier: Int64?)
    -> GRPCMetadata
  {
    var metadata = GRPCMetadata()
    if let authorization = config.authorizationMetadata["authorization"] {
      metadata.add("authorization", authorization)
    }
    metadata.add("dbname", config.database)
    if let identifier, identifier != 0 { metadata.add("identifier", "\(identifier)") }
    return metadata
  }
}

extension ChannelSetup where Self == MilvusChannelSetup {
  /// Milvus's `Connect` handshake and call metadata (``MilvusChannelSetup``).
  public static var milvus: MilvusChannelSetup { MilvusChannelSetup() }
}

extension ConnectionConfig {
  /// The gRPC metadata Milvus expects on every call: `authorization` (base64 of the token,
  /// or of `user:password` when there is no token; absent when neither is set) and `dbname`.
  ///
  /// - Important: The values carry the credentials; never log them.
  var authorizationMetadata: [String: String] {
    var metadata = ["dbname": database]
    if let token {
      metadata["authorization"] = GRPCWireFormat.base64Encode(token.utf8)
    } else if let user, let password {
      metadata["authorization"] = GRPCWireFormat.base64Encode("\(user):\(password)".utf8)
    }
    return metadata
  }
}
