import Foundation
import XCTest

@testable import MilvexReactor

/// Deterministic test data: the same row for the same index, in every test and in pymilvus.
enum TestData {
  static let dimension = 8

  /// A pseudo-random vector (SplitMix64 per component), distinct for every index.
  static func vector(_ index: Int, dimension: Int = dimension, salt: UInt64 = 0) -> [Float] {
    (0..<dimension).map { component in
      var z =
        UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(component) &* 0xBF58_476D_1CE4_E5B9 &+ salt
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      z ^= z >> 31
      return Float(z % 10_000) / 10_000
    }
  }

  /// The mixed schema of the workflow: every scalar type, JSON, array, two vector fields and a
  /// dynamic field.
  static let schema = CollectionSchema(
    fields: [
      .primaryKey("id", .int64),
      .vector("vec", dimension: dimension),
      .vector("vec2", dimension: 2),
      .field("title", .varChar(maxLength: 64)),
      .field("flag", .bool),
      .field("i8", .int8),
      .field("i16", .int16),
      .field("i32", .int32),
      .field("f", .float),
      .field("d", .double),
      .field("meta", .json),
      .field("tags", .array(of: .int64, capacity: 8)),
    ],
    enableDynamicField: true, description: "the workflow's mixed schema")

  static func row(_ index: Int) -> Row {
    let i = Int64(index)
    return [
      "id": .int(i), "vec": .floatVector(vector(index)),
      "vec2": .floatVector(vector(index, dimension: 2, salt: 7)),
      "title": .string("t\(index)"), "flag": .bool(index % 2 == 0), "i8": .int(i % 100),
      "i16": .int(i % 30_000),
      "i32": .int(i * 10), "f": .float(Float(index) / 2), "d": .double(Double(index) / 4),
      "meta": ["k": .int(i), "s": .string("x\(index)")], "tags": [.int(i), .int(i + 1)],
      // Not in the schema: goes to the dynamic field.
      "color": .string(index % 3 == 0 ? "red" : "blue"),
    ]
  }

  /// The same entities as `row(_:)`, column-oriented.
  static func columns(_ range: Range<Int>) -> [String: FieldColumn] {
    [
      "id": .int(range.map { Int64($0) }),
      "vec": .floatVectors(range.map { vector($0) }),
      "vec2": .floatVectors(range.map { vector($0, dimension: 2, salt: 7) }),
      "title": .string(range.map { "t\($0)" }),
      "flag": .bool(range.map { $0 % 2 == 0 }),
      "i8": .int(range.map { Int64($0 % 100) }),
      "i16": .int(range.map { Int64($0 % 30_000) }),
      "i32": .int(range.map { Int64($0 * 10) }),
      "f": .float(range.map { Float($0) / 2 }),
      "d": .double(range.map { Double($0) / 4 }),
      "meta": .values(range.map { ["k": .int(Int64($0)), "s": .string("x\($0)")] }),
      "tags": .values(range.map { [.int(Int64($0)), .int(Int64($0 + 1))] }),
      "color": .string(range.map { $0 % 3 == 0 ? "red" : "blue" }),
    ]
  }
}

/// A milvus-lite server and a client connected to it, for one test.
final class MilvusFixture: @unchecked Sendable {
  let server: MilvusLite
  let loop: EventLoop
  let client: MilvusClient

  init(server: MilvusLite? = nil, retryPolicy: RetryPolicy = RetryPolicy()) throws {
    self.server = try server ?? MilvusLite()
    loop = try EventLoop(threadName: "milvus-api-test")
    client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: self.server.port, timeout: .seconds(60)),
      on: loop,
      retryPolicy: retryPolicy)
  }

  func stop() async {
    await client.close()
    loop.shutdown()
    server.stop()
  }
}

/// Asserts that `body` fails with the MilvexError `check` accepts.
func assertMilvexError<T>(
  _ body: () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
  _ check: (MilvexError) -> Bool
) async {
  do {
    let value = try await body()
    XCTFail("expected an error, got \(value)", file: file, line: line)
  } catch let error as MilvexError {
    XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
  } catch {
    XCTFail("not a MilvexError: \(error)", file: file, line: line)
  }
}

extension MilvexError {
  /// The field of an invalidArgument error.
  var invalidField: String? {
    if case .invalidArgument(let field, _) = self { return field }
    return nil
  }

  var milvusCode: Int32? {
    if case .milvus(let code, _) = self { return code }
    return nil
  }
}

/// The collection the wait tests build on (WaitingAndAlteringTests, CallbackWaitsTests): an
/// int64 key, a varchar title and an 8-dimensional vector; on the real Milvus 2.3.5, 20,500
/// rows (20,000 in four inserts, 500 in partition `p1`), enough for an index build and a load
/// that take visible time.
enum WaitTestCollection {
  static let schema = CollectionSchema(fields: [
    .primaryKey("id"), .field("title", .varChar(maxLength: 64)), .vector("vec", dimension: 8),
  ])

  static func rows(_ range: Range<Int>) -> Entities {
    .columns([
      "id": .int(range.map(Int64.init)), "title": .string(range.map { "t\($0)" }),
      "vec": .floatVectors(range.map { TestData.vector($0) }),
    ])
  }

  /// A client of the real plain Milvus 2.3.5 (60 s call timeout) on `loop`, and a new
  /// collection named `prefix_<random>` with partition `p1` and the 20,500 rows (unflushed).
  static func create(prefix: String, on loop: EventLoop) async throws -> (MilvusClient, String) {
    let server = try MilvusServers.plain
    let client = try MilvusClient.connect(
      config: try ConnectionConfig(host: server.host, port: server.port, timeout: .seconds(60)),
      on: loop)
    let name = "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    try await client.perform(.createCollection(name, schema: schema))
    try await client.perform(.createPartition("p1", in: name))
    for batch in 0..<4 {
      _ = try await client.perform(
        .insert(into: name, rows((batch * 5_000)..<((batch + 1) * 5_000))))
    }
    _ = try await client.perform(.insert(into: name, rows(20_000..<20_500), partition: "p1"))
    return (client, name)
  }
}
