import Foundation
import XCTest

@testable import MilvexReactor

/// Errors: Milvus statuses surface with code and reason; bad arguments are caught before any
/// request is sent, naming the argument.
final class MilvusErrorTests: XCTestCase {
  func testMilvusErrorStatusesSurfaceWithCodeAndReason() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    // An unknown collection: Milvus answers gRPC OK with status code 100 inside.
    await assertMilvexError({ try await client.perform(.describeCollection("no_such_collection")) })
    { error in
      guard case .milvus(let code, let reason) = error else { return false }
      return code == 100 && reason.contains("no_such_collection") && !error.isRetriable
    }
    // Data calls on an unknown collection fail the same way (from the schema lookup).
    await assertMilvexError({
      try await client.perform(.insert(into: "no_such_collection", rows: [["id": 1]]))
    }) { $0.milvusCode == 100 }
    await assertMilvexError({
      try await client.perform(.search("no_such_collection", vectors: [[0.1, 0.2]]))
    }) { $0.milvusCode == 100 }
    // Creating what exists, dropping a database that is not empty.
    try await client.perform(.createCollection("twice", schema: TestData.schema))
    await assertMilvexError({
      try await client.perform(
        .createCollection("twice", schema: TestData.schema.adding(.field("more", .bool))))
    }) { $0.milvusCode != nil }
    await assertMilvexError({ try await client.perform(.describeDatabase("no_such_db")) }) {
      $0.milvusCode != nil
    }
    await assertMilvexError({ try await client.useDatabase("no_such_db") }) { $0.milvusCode != nil }
    // The current database did not change.
    let names = try await client.perform(.listCollections())
    XCTAssertEqual(names, ["twice"])
    await fixture.stop()
  }

  /// With the schema known, bad data is rejected locally: the server is stopped before the
  /// calls, so any attempt to send would fail with a connection error instead.
  func testBadArgumentsAreRejectedBeforeTheNetwork() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await client.perform(.createCollection("checked", schema: TestData.schema))
    let strict = CollectionSchema(fields: [
      .primaryKey("key", .varChar(maxLength: 8)), .vector("v", dimension: 3),
    ])
    try await client.perform(.createCollection("strict", schema: strict))
    fixture.server.stop()

    func expectInvalid<T: Sendable>(
      _ call: MilvusCall<T>, field: String, containing text: String, line: UInt = #line
    ) async {
      await assertMilvexError(
        { try await client.perform(call, options: MilvusCallOptions(timeout: .seconds(2))) },
        line: line
      ) { error in
        guard case .invalidArgument(let named, let message) = error else { return false }
        return named == field && message.contains(text)
      }
    }
    var shortVector = TestData.row(1)
    shortVector["vec"] = .floatVector([0.1, 0.2, 0.3])
    await expectInvalid(
      .insert(into: "checked", rows: [TestData.row(0), shortVector]),
      field: "rows[1].vec",
      containing: "has 3 dimensions; field 'vec' of collection 'checked' has 8")
    await expectInvalid(
      .search("checked", vectors: [TestData.vector(1), [1, 2]], annsField: "vec"),
      field: "vectors[1]", containing: "has 2 dimensions")
    await expectInvalid(
      .search("checked", vectors: [TestData.vector(1)]),
      field: "annsField", containing: "2 vector fields (vec, vec2)")
    await expectInvalid(
      .search("checked", vectors: [TestData.vector(1)], annsField: "title"),
      field: "annsField", containing: "not a vector field")
    var missing = TestData.row(2)
    missing["title"] = nil
    await expectInvalid(
      .insert(into: "checked", rows: [missing]), field: "rows[0]",
      containing: "missing field 'title'")
    await expectInvalid(
      .insert(into: "strict", rows: [["key": "a", "v": [1, 2, 3], "extra": 1]]),
      field: "rows[0].extra", containing: "unknown field 'extra'")
    await expectInvalid(
      .insert(into: "strict", rows: [["key": "far too long", "v": [1, 2, 3]]]),
      field: "rows[0].key", containing: "maximum is 8")
    await expectInvalid(
      .insert(into: "strict", rows: [["key": 1, "v": [1, 2, 3]]]),
      field: "rows[0].key", containing: "expected varchar(8), got an integer")
    var wrongRange = TestData.row(3)
    wrongRange["i8"] = 300
    await expectInvalid(
      .insert(into: "checked", rows: [wrongRange]), field: "rows[0].i8",
      containing: "out of range for int8")
    await expectInvalid(
      .insert(
        into: "checked",
        .columns(["id": .int([1, 2]), "vec": .floatVectors([TestData.vector(1)])])),
      field: "columns.vec", containing: "has 1 values; column 'id' has 2")
    await expectInvalid(
      .get("strict", ids: [7]), field: "ids[0]", containing: "does not match primary key 'key'")
    await expectInvalid(
      .query("strict", filter: "key == \"a\"", outputFields: ["nope"]),
      field: "outputFields[0]", containing: "unknown field 'nope'")
    // Errors visible without a schema.
    await expectInvalid(
      .createCollection("", schema: TestData.schema), field: "collection",
      containing: "must not be empty")
    await expectInvalid(
      .insert(into: "", rows: [TestData.row(0)]), field: "collection",
      containing: "must not be empty")
    await expectInvalid(
      .search("checked", vectors: []), field: "vectors", containing: "must not be empty")
    await expectInvalid(
      .search("checked", vectors: [[1]], limit: 0), field: "limit", containing: "1...16384")
    await expectInvalid(.query("checked", filter: ""), field: "filter", containing: "needs a limit")
    await expectInvalid(
      .hybridSearch(
        "checked", [AnnSearch(vectors: [[1]]), AnnSearch(vectors: [[1]])],
        ranker: .weighted([1])), field: "ranker", containing: "1 weights for 2 searches")
    await expectInvalid(
      .createCollection("bad", schema: CollectionSchema(fields: [.vector("v", dimension: 4)])),
      field: "schema", containing: "exactly one primary key")
    await expectInvalid(
      .createCollection(
        "bad", schema: CollectionSchema(fields: [.primaryKey("id"), .vector("v", dimension: 0)])),
      field: "schema.fields[1] 'v'", containing: "dimension must be in 1...32768")
    await expectInvalid(
      .createCollection(
        "bad", schema: CollectionSchema(fields: [.primaryKey("id"), .field("x", .bool)])),
      field: "schema", containing: "at least one vector field")
    // Replica counts are Milvus int32s: anything else is refused, not trapped on.
    for replicas in [0, -1, Int(Int32.max) + 1, Int.max] {
      await expectInvalid(
        .loadCollection("checked", replicas: replicas),
        field: "replicas", containing: "must be between 1 and 2147483647")
      await expectInvalid(
        .loadPartitions(["p"], in: "checked", replicas: replicas),
        field: "replicas", containing: "must be between 1 and 2147483647")
    }
    await fixture.stop()
  }
}
