import MilvexProtos
import MilvexReactor
import SwiftProtobuf

/// How a ``MilvusTestServer`` answers one call.
public indirect enum TestServerAnswer: Sendable, Hashable, CustomStringConvertible {
  /// The serialized response message, with gRPC status OK.
  case response([UInt8])
  /// A Milvus error: the method's response message holding only a `common.Status` with
  /// `code` and `reason` (and the legacy `error_code` UnexpectedError), gRPC status OK. A
  /// client reports it as `MilvexError.milvus(code:reason:)`.
  case milvusError(code: Int32, reason: String)
  /// A gRPC status other than OK (trailers-only), with its message.
  case grpcStatus(GRPCStatusCode, String)
  /// `answer`, after `delay` (measured from the request's arrival, on the server's clock).
  case delayed(Duration, then: TestServerAnswer)
  /// No answer at all: the call stays open until the client gives up (its deadline) or the
  /// connection ends.
  case never

  /// `message`, serialized, with gRPC status OK.
  /// - Important: Callable from any thread (a value; no loop involved).
  public static func message(_ message: some SwiftProtobuf.Message) -> TestServerAnswer {
    .response((try? message.serializedBytes()) ?? [])
  }

  /// A Milvus success: the method's response with a success status and nothing else (a
  /// `common.Status` for the methods that return one, an empty `BoolResponse` and the like).
  public static var success: TestServerAnswer { .response([]) }

  public var description: String {
    switch self {
    case .response(let bytes): return "message (\(bytes.count) bytes)"
    case .milvusError(let code, let reason): return "Milvus error \(code): \(reason)"
    case .grpcStatus(let code, let message): return "gRPC status \(code): \(message)"
    case .delayed(let delay, let answer): return "after \(delay): \(answer)"
    case .never: return "no answer"
    }
  }
}

/// One call the server received, as the test asserts it: the path, the metadata, the request.
public struct TestServerCall: Sendable, CustomStringConvertible {
  /// The gRPC path, such as `/milvus.proto.milvus.MilvusService/Search`.
  public var path: String
  /// The Milvus method (the path's last part), such as `Search`.
  public var method: String { String(path.split(separator: "/").last ?? "") }
  /// The request's metadata: every header field except pseudo-headers (`authorization`,
  /// `dbname`, `identifier`, `user-agent`, `grpc-timeout`, …). A field sent twice keeps its
  /// last value.
  public var metadata: [String: String]
  /// The request message's bytes (without gRPC's 5-byte prefix).
  public var requestBytes: [UInt8]
  /// The decoded request for the built-in Milvus methods (a `Milvus_Proto_Milvus_…Request`);
  /// nil for other paths (decode `requestBytes` yourself) or bytes that do not decode.
  public var request: (any SwiftProtobuf.Message)?
  /// The answer the server gave (or is about to give, for a delayed one); nil when it gave
  /// none because the path was unimplemented (see `unimplemented`).
  public var answer: TestServerAnswer?
  /// True when the server answered `UNIMPLEMENTED`: nothing was scripted for the path and it
  /// has no built-in answer. A test that did not expect it has a missing script.
  public var unimplemented: Bool
  /// Which connection the call came on, counting from 1 in accepting order (across restarts).
  public var connection: Int
  /// When it arrived.
  public var arrival: ContinuousClock.Instant

  /// The decoded request as `type`, or nil.
  /// - Important: Callable from any thread (a value; no loop involved).
  public func request<Request: SwiftProtobuf.Message>(as type: Request.Type) -> Request? {
    if let request = request as? Request { return request }
    return try? Request(serializedBytes: requestBytes)
  }

  public var description: String {
    "\(method) on connection \(connection)"
      + (unimplemented ? " (UNIMPLEMENTED)" : answer.map { ": \($0)" } ?? "")
  }
}

/// How ``MilvusTestServer/closeAllConnections(_:)`` ends the connections.
public enum TestServerClose: Sendable, Hashable {
  /// An orderly close (FIN): the client reads end of file.
  case eof
  /// An abortive close (RST, `SO_LINGER` 0): the client's next read fails with
  /// `ECONNRESET`.
  case reset
}

/// Which GOAWAY ``MilvusTestServer/goAway(_:)`` sends (RFC 9113 §6.8).
public enum TestServerGoAway: Sendable, Hashable {
  /// NO_ERROR: a graceful end (a server shutting down or recycling connections). Calls
  /// already started are answered; the connection closes when they are done.
  case noError
  /// ENHANCE_YOUR_CALM with debug data `too_many_pings`, then the connection closes: a gRPC
  /// server telling a client that its keepalive PINGs come too often.
  case tooManyPings
}

/// A misuse of ``MilvusTestServer`` or a failure to start it, in words a test can act on.
public struct TestServerError: Error, Sendable, Hashable, CustomStringConvertible {
  /// What failed.
  public var description: String

  init(_ description: String) {
    self.description = description
  }
}

/// A PING the server received (keepalive), per connection.
public struct TestServerPing: Sendable, Hashable {
  /// Which connection sent it (see ``TestServerCall/connection``).
  public var connection: Int
  /// When it arrived.
  public var arrival: ContinuousClock.Instant
}
