import Foundation
import XCTest

@testable import MilvexReactor

/// The same questions to the same server through MilvexReactor and through pymilvus (the
/// reference SDK, run by Tests/Peers/pymilvus_query.py): the answers must be equal.
final class MilvusCrossCheckTests: XCTestCase {
  func testSearchAndQueryEqualPymilvus() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await client.perform(
      .createCollection("cross", schema: TestData.schema, consistencyLevel: .strong))
    for batch in 0..<2 {
      let range = (batch * 1_000)..<((batch + 1) * 1_000)
      _ = try await client.perform(.insert(into: "cross", .columns(TestData.columns(range))))
    }
    try await client.perform(
      .createIndex(on: "cross", IndexSpec(fieldName: "vec", metricType: .l2)))
    try await client.perform(
      .createIndex(on: "cross", IndexSpec(fieldName: "vec2", indexType: .flat, metricType: .ip)))
    try await client.loadCollection("cross")

    let probes = [
      TestData.vector(5), TestData.vector(1_234), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    ]
    let searchFilter = "i16 > 100 and color == \"red\""
    let outputFields = ["title", "i32", "d", "tags", "meta", "color"]
    let queryFilter = "id in [1, 2, 3, 500, 1999] or title like \"t77%\""

    let ours = try await client.perform(
      .search(
        "cross", vectors: probes, annsField: "vec", limit: 7, filter: searchFilter,
        outputFields: outputFields))
    let ourRows = try await client.perform(
      .query("cross", filter: queryFilter, outputFields: outputFields, limit: 100))

    let request: [String: Any] = [
      "uri": "http://127.0.0.1:\(fixture.server.port)", "collection": "cross",
      "search": [
        "vectors": probes.map { $0.map(Double.init) }, "anns_field": "vec", "limit": 7,
        "filter": searchFilter, "output_fields": outputFields,
      ],
      "query": ["filter": queryFilter, "output_fields": outputFields, "limit": 100],
    ]
    let theirs = try Self.runPymilvus(request)

    // Search: the same hits in the same order, the same distances and fields.
    let theirSearch = try XCTUnwrap(theirs["search"]?.arrayValue)
    XCTAssertEqual(ours.count, theirSearch.count)
    for (ourHits, theirHits) in zip(ours, theirSearch) {
      let theirHits = try XCTUnwrap(theirHits.arrayValue)
      XCTAssertEqual(ourHits.count, theirHits.count)
      XCTAssertEqual(ourHits.count, 7)
      for (ourHit, theirHit) in zip(ourHits, theirHits) {
        XCTAssertEqual(ourHit.id.fieldValue, theirHit.objectValue?["id"])
        XCTAssertEqual(
          Double(ourHit.distance), try XCTUnwrap(theirHit.objectValue?["distance"]?.doubleValue),
          accuracy: 1e-6)
        let entity = try XCTUnwrap(theirHit.objectValue?["entity"]?.objectValue)
        XCTAssertEqual(ourHit.fields, Self.typed(entity), "hit \(ourHit.id)")
      }
    }
    // Query: the same rows (compared as sets: query order is not specified).
    let theirRows = try XCTUnwrap(theirs["query"]?.arrayValue).compactMap {
      $0.objectValue.map(Self.typed)
    }
    XCTAssertEqual(ourRows.count, theirRows.count)
    XCTAssertGreaterThan(ourRows.count, 5)
    XCTAssertEqual(Set(ourRows), Set(theirRows))
    await fixture.stop()
  }

  /// JSON does not say float or double; the schema does (`f` is the float field).
  static func typed(_ row: Row) -> Row {
    var row = row
    if let number = row["f"]?.doubleValue { row["f"] = .float(Float(number)) }
    if let number = row["d"]?.doubleValue { row["d"] = .double(number) }
    return row
  }

  static func runPymilvus(_ request: [String: Any]) throws -> [String: FieldValue] {
    try PeerProcess.runJSONScript("pymilvus_query.py", request)
  }

}
