import Foundation
import SwiftProtobuf

/// One Milvus operation, ready to be performed by a ``MilvusClient``: what to send, how to read
/// the answer into `Output`, and whether it is a write. Made by the static functions in the
/// extensions (`.createCollection(…)`, `.insert(…)`, `.search(…)`, …), so that every operation
/// has both a callback and an `async` form through ``MilvusClient/perform(_:options:completion:)``
/// and ``MilvusClient/perform(_:options:)``:
///
/// ```swift
/// let names = try await client.perform(.listCollections())
/// client.perform(.hasCollection("docs")) { result in print(result) }
/// ```
///
/// Arguments that are wrong on their face (an empty name, a zero limit) are found when the call
/// is made and reported by `perform` without any network call; arguments that need the
/// collection's schema (vector dimensions, field names, types) are checked against it before
/// the request is sent.
///
/// - Important: Making a call is pure (no I/O, no shared state): any thread may make one, and a
///   call may be performed any number of times, by any client.
public struct MilvusCall<Output: Sendable>: Sendable {
  /// Everything but the output type, for the client's non-generic per-call machinery.
  @usableFromInline let erased: ErasedCall
  /// Reads the response bytes into `Output`.
  @usableFromInline let decode: @Sendable ([UInt8], MilvusCallContext) throws -> Output

  /// The MilvusService method (`Search`, `Insert`, …).
  public var method: String { erased.method }
  /// Insert, upsert and delete: retried only when the retry policy allows writes.
  public var isWrite: Bool { erased.isWrite }

  var schemaOf: String? { erased.schemaOf }
  var invalid: MilvexError? { erased.invalid }
  var encode: @Sendable (MilvusCallContext) throws -> [UInt8] { erased.encode }
  var effect: SchemaCacheEffect { erased.effect }
  var path: String { erased.path }

  init(
    method: String, isWrite: Bool, schemaOf: String?, invalid: MilvexError?,
    encode: @escaping @Sendable (MilvusCallContext) throws -> [UInt8],
    decode: @escaping @Sendable ([UInt8], MilvusCallContext) throws -> Output,
    effect: SchemaCacheEffect
  ) {
    erased = ErasedCall(
      method: method, path: "/milvus.proto.milvus.MilvusService/\(method)", isWrite: isWrite,
      schemaOf: schemaOf,
      invalid: invalid, encode: encode, effect: effect)
    self.decode = decode
  }
}

/// What the client's per-call machinery needs of a ``MilvusCall``, without its output type.
@usableFromInline
struct ErasedCall: Sendable {
  let method: String
  let path: String
  let isWrite: Bool
  /// The collection whose schema encoding needs (fetched once, then cached per database).
  let schemaOf: String?
  /// An argument error found when the call was made.
  let invalid: MilvexError?
  let encode: @Sendable (MilvusCallContext) throws -> [UInt8]
  /// What a success means for the schema cache.
  let effect: SchemaCacheEffect
}

/// What encoding and decoding know about the call.
@usableFromInline
struct MilvusCallContext: Sendable {
  /// The database the call runs in.
  let database: String
  /// The schema of ``MilvusCall/schemaOf``, when it names one.
  let schema: CollectionSchema?
  /// The schema's update timestamp from DescribeCollection (0: unknown), sent with inserts and
  /// upserts so that the server can say the schema changed (`SchemaMismatch`).
  var schemaTimestamp: UInt64 = 0
  /// Where writes record their timestamp for session reads (nil: not recorded).
  var session: SessionTimestamps? = nil
  /// The latest write to the call's collection: a read's session guarantee (0: none).
  var sessionTimestamp: UInt64 = 0
}

enum SchemaCacheEffect: Sendable {
  case none
  case remember(collection: String, schema: CollectionSchema, timestamp: UInt64 = 0)
  case forget(collections: [String])
  case forgetDatabase(String)
}

extension MilvusCall {
  /// A call sending `Request` and reading `Response`; a Milvus error status in the response
  /// becomes ``MilvexError/milvus(code:reason:)``.
  static func make<Request: SwiftProtobuf.Message, Response: MilvusResponse>(
    _ method: String, response: Response.Type, isWrite: Bool = false, schemaOf: String? = nil,
    invalid: MilvexError? = nil, effect: SchemaCacheEffect = .none,
    request: @escaping @Sendable (MilvusCallContext) throws -> Request,
    output: @escaping @Sendable (Response, MilvusCallContext) throws -> Output
  ) -> MilvusCall {
    MilvusCall(
      method: method, isWrite: isWrite, schemaOf: schemaOf, invalid: invalid,
      encode: { context in try request(context).serializedBytes() },
      decode: { bytes, context in
        let response: Response
        do {
          response = try Response(serializedBytes: bytes)
        } catch {
          throw MilvexError.violation(
            .unparsableMessage(
              "the \(method) response is not a \(Response.protoMessageName): \(error)"))
        }
        try MilvusStatus.check(response.milvusStatus)
        return try output(response, context)
      },
      effect: effect)
  }

}

extension MilvusCall where Output: SwiftProtobuf.Message {
  /// An escape hatch: any MilvusService method with protobuf request and response messages
  /// generated from Milvus's protos (the response as is, its status not checked).
  public static func raw<Request: SwiftProtobuf.Message>(
    method: String, request: Request, isWrite: Bool = false
  ) -> MilvusCall {
    MilvusCall(
      method: method, isWrite: isWrite, schemaOf: nil,
      invalid: method.isEmpty || method.contains("/")
        ? .invalidArgument(
          field: "method", message: "must be a MilvusService method name like 'GetVersion'") : nil,
      encode: { _ in try request.serializedBytes() },
      decode: { bytes, _ in
        do { return try Output(serializedBytes: bytes) } catch {
          throw MilvexError.violation(.unparsableMessage("the \(method) response: \(error)"))
        }
      },
      effect: .none)
  }
}

/// Argument checks shared by the operations.
enum Check {
  /// An in-memory replica count: 1 up to Milvus's `int32` field.
  static func replicas(_ value: Int) -> MilvexError? {
    guard value < 1 || value > Int(Int32.max) else { return nil }
    return .invalidArgument(
      field: "replicas", message: "must be between 1 and \(Int32.max), is \(value)")
  }

  static func name(_ value: String, _ field: String) -> MilvexError? {
    value.isEmpty ? .invalidArgument(field: field, message: "must not be empty") : nil
  }

  static func names(_ values: [String], _ field: String) -> MilvexError? {
    if values.isEmpty { return .invalidArgument(field: field, message: "must not be empty") }
    if let index = values.firstIndex(where: \.isEmpty) {
      return .invalidArgument(field: "\(field)[\(index)]", message: "must not be empty")
    }
    return nil
  }

  /// The first error of several.
  static func first(_ errors: MilvexError?...) -> MilvexError? {
    errors.first { $0 != nil } ?? nil
  }
}

// MARK: - For benchmarks

extension MilvusCall {
  /// The request bytes this call would send, given the collection's schema (for calls that
  /// need one): the local encoding cost, measured without a server.
  @_spi(Benchmarks)
  public func encodedRequest(schema: CollectionSchema?, database: String = "default") throws
    -> [UInt8]
  {
    if let invalid { throw invalid }
    return try encode(MilvusCallContext(database: database, schema: schema))
  }

  /// Reads response bytes as this call would (the local decoding cost).
  @_spi(Benchmarks)
  public func decodedResponse(_ bytes: [UInt8], database: String = "default") throws -> Output {
    try decode(bytes, MilvusCallContext(database: database, schema: nil))
  }
}
