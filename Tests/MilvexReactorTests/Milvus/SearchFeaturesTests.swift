import Foundation
import MilvexProtos
import SwiftProtobuf
import XCTest

@testable import MilvexReactor

/// Search features (issue 14, item 2), each proved on a server that has it and cross-checked
/// against pymilvus 3.0.2 on the same server and data: the same ids in the same order,
/// distances within 1e-5.
///
/// Which server proves what:
/// - milvus-lite 3.2.2: range search (L2 and COSINE), group-by with group size and strict
///   group size, offset, hybrid search offset and grouping, get by ids with output fields,
///   delete by filter.
/// - Milvus 2.3.5: ignoreGrowing (milvus-lite ignores it), consistency per call, range search,
///   offset, get by ids, delete by filter; it ignores grouping (shown) and has no hybrid search.
/// - Neither: search by primary keys (pymilvus 3.0.2 sends `SearchRequest.ids`, which Milvus
///   2.6 reads; milvus-lite answers "missing placeholder_group", 2.3.5 "empty search request")
///   and filter templates (Milvus 2.5; both servers fail to parse the braces). For those the
///   request is compared with pymilvus's own request for the same call (its
///   `Prepare.search_requests_with_expr` / `query_request`, run without a server), and the
///   servers' refusals are shown.
final class SearchFeaturesTests: XCTestCase {
  typealias SearchRequest = Milvus_Proto_Milvus_SearchRequest
  typealias QueryRequest = Milvus_Proto_Milvus_QueryRequest

  private static let liteSchema = CollectionSchema(fields: [
    .primaryKey("id"), .field("color", .varChar(maxLength: 16)), .field("n", .int64),
    .field("flag", .bool), .vector("vec", dimension: 4), .vector("vec_cos", dimension: 4),
  ])

  /// Milvus 2.3.5 takes one vector field per collection.
  private static let realSchema = CollectionSchema(fields: [
    .primaryKey("id"), .field("color", .varChar(maxLength: 16)), .field("n", .int64),
    .vector("vec", dimension: 4),
  ])

  private static let colors = ["red", "green", "blue", "gold"]

  private static func row(_ index: Int, schema: CollectionSchema = liteSchema) -> Row {
    var row: Row = [
      "id": .int(Int64(index)), "color": .string(colors[index % 4]), "n": .int(Int64(index)),
      "vec": .floatVector(TestData.vector(index, dimension: 4)),
    ]
    if schema.field(named: "flag") != nil {
      row["flag"] = .bool(index % 2 == 0)
      row["vec_cos"] = .floatVector(TestData.vector(index, dimension: 4, salt: 3))
    }
    return row
  }

  private static let center: [Float] = [0.5, 0.5, 0.5, 0.5]
  private static let corner: [Float] = [0.9, 0.2, 0.1, 0.7]

  // MARK: - Requests compared with pymilvus's (no server)

  private func context(_ schema: CollectionSchema) -> MilvusCallContext {
    MilvusCallContext(database: "default", schema: schema)
  }

  private func encoded<Output>(_ call: MilvusCall<Output>, schema: CollectionSchema) throws
    -> [UInt8]
  {
    if let invalid = call.invalid { throw invalid }
    return try call.encode(context(schema))
  }

  /// Key-value parameters as a dictionary, the "params" JSON parsed. pymilvus also copies the
  /// top-level metric type into that JSON (its `get_params`), where the server ignores it: the
  /// copy is dropped. `defaults` are pairs pymilvus always sends with Milvus's default value,
  /// dropped when `other` (ours) leaves them out.
  private func parameters(
    _ pairs: [Milvus_Proto_Common_KeyValuePair], defaults: [String: String] = [:],
    other: [Milvus_Proto_Common_KeyValuePair] = []
  ) throws -> [String: FieldValue] {
    var result: [String: FieldValue] = [:]
    for pair in pairs {
      if defaults[pair.key] == pair.value, !other.contains(where: { $0.key == pair.key }) {
        continue
      }
      if pair.key == "params" {
        var inner = try JSONText.parse(Data(pair.value.utf8)).objectValue ?? [:]
        inner["metric_type"] = nil
        result[pair.key] = .object(inner)
      } else {
        result[pair.key] = .string(pair.value)
      }
    }
    return result
  }

  /// Each template value byte for byte.
  private func assertSameTemplates(
    _ mine: [String: Milvus_Proto_Schema_TemplateValue],
    _ theirs: [String: Milvus_Proto_Schema_TemplateValue], file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    XCTAssertEqual(mine.keys.sorted(), theirs.keys.sorted(), file: file, line: line)
    for (key, value) in theirs {
      let theirBytes: [UInt8] = try value.serializedBytes()
      let myBytes: [UInt8]? = try mine[key]?.serializedBytes()
      XCTAssertEqual(myBytes, theirBytes, "template value \(key)", file: file, line: line)
    }
  }

  /// The whole request equals pymilvus's: parameters as dictionaries, the rest as messages.
  private func assertSameSearchRequest(
    _ mine: SearchRequest, _ theirs: SearchRequest, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    XCTAssertEqual(
      try parameters(mine.searchParams), try parameters(theirs.searchParams), file: file,
      line: line)
    try assertSameTemplates(
      mine.exprTemplateValues, theirs.exprTemplateValues, file: file, line: line)
    var mineRest = mine
    var theirRest = theirs
    mineRest.searchParams = []
    theirRest.searchParams = []
    XCTAssertEqual(mineRest, theirRest, file: file, line: line)
  }

  /// Filter templates: neither server here reads them (Milvus 2.5 does), so the request is
  /// compared with the one pymilvus builds for the same query and search: every value kind,
  /// byte for byte.
  func testFilterTemplatesSendWhatPymilvusSends() throws {
    let filter = "id in {ids} and color in {cities} and n > {min} and flag == {on}"
    let params: [String: FieldValue] = [
      "ids": [1, 2, 3], "cities": ["北京", "上海"], "min": 2.5, "low": .float(0.1), "on": true,
      "flags": [true, false], "prices": [1.5, 2.25], "empty": [], "nested": [[1, 2], [3]],
      "mixed": [1, 2.5, true], "big": .int(Int64.max), "neg": -7, "c": "red",
    ]
    let python: [String: Any] = [
      "ids": [1, 2, 3], "cities": ["北京", "上海"], "min": 2.5, "low": 0.1, "on": true,
      "flags": [true, false], "prices": [1.5, 2.25], "empty": [Int](), "nested": [[1, 2], [3]],
      "mixed": [1, 2.5, true] as [Any], "big": Int64.max, "neg": -7, "c": "red",
    ]
    let query = MilvusCall<[Row]>.query(
      "docs", filter: filter, filterParams: params, outputFields: ["color"], limit: 5,
      consistencyLevel: .strong)
    let mine = try QueryRequest(serializedBytes: encoded(query, schema: Self.liteSchema))
    let theirs = try QueryRequest(
      serializedBytes: PymilvusTypes.encoded([
        "op": "encode_query", "collection": "docs", "filter": filter, "filter_params": python,
        "output_fields": ["color"], "limit": 5, "consistency_level": "Strong",
      ]))
    XCTAssertEqual(theirs.exprTemplateValues.count, params.count)
    try assertSameTemplates(mine.exprTemplateValues, theirs.exprTemplateValues)
    // pymilvus always sends ignore_growing and reduce_stop_for_best, both False by default.
    XCTAssertEqual(
      try parameters(
        theirs.queryParams,
        defaults: ["ignore_growing": "False", "reduce_stop_for_best": "False"],
        other: mine.queryParams),
      try parameters(mine.queryParams))
    var mineRest = mine
    var theirRest = theirs
    mineRest.queryParams = []
    theirRest.queryParams = []
    XCTAssertEqual(mineRest, theirRest)

    let search = MilvusCall<[[SearchHit]]>.search(
      "docs", vectors: [Self.center], annsField: "vec", limit: 4, filter: filter,
      filterParams: params, consistencyLevel: .strong)
    try assertSameSearchRequest(
      SearchRequest(serializedBytes: encoded(search, schema: Self.liteSchema)),
      SearchRequest(
        serializedBytes: PymilvusTypes.encoded([
          "op": "encode_search", "collection": "docs", "anns_field": "vec",
          "data": [Self.center.map(Double.init)], "limit": 4, "filter": filter,
          "filter_params": python, "consistency_level": "Strong",
        ])))
  }

  /// Search by primary keys: no server here takes pymilvus 3.0.2's form (Milvus 2.6 does), so
  /// the request is compared with pymilvus's, for int64 and varchar keys.
  func testSearchByPrimaryKeysSendsWhatPymilvusSends() throws {
    let byInt = MilvusCall<[[SearchHit]]>.search(
      "docs", ids: [7, 3, 7], annsField: "vec", limit: 3, filter: "n > {n}",
      filterParams: ["n": 2], outputFields: ["color"], metricType: .l2, offset: 1,
      consistencyLevel: .strong)
    let mine = try SearchRequest(serializedBytes: encoded(byInt, schema: Self.liteSchema))
    XCTAssertEqual(mine.ids.intID.data, [7, 3, 7])
    XCTAssertTrue(mine.placeholderGroup.isEmpty)
    XCTAssertFalse(mine.searchByPrimaryKeys, "pymilvus 3.0.2 does not set field 16")
    try assertSameSearchRequest(
      mine,
      SearchRequest(
        serializedBytes: PymilvusTypes.encoded([
          "op": "encode_search", "collection": "docs", "anns_field": "vec", "ids": [7, 3, 7],
          "limit": 3, "filter": "n > {n}", "filter_params": ["n": 2],
          "output_fields": ["color"], "search_params": ["metric_type": "L2"], "offset": 1,
          "consistency_level": "Strong",
        ])))

    let keyed = CollectionSchema(fields: [
      .primaryKey("key", .varChar(maxLength: 16)), .vector("vec", dimension: 4),
    ])
    let byString = MilvusCall<[[SearchHit]]>.search(
      "docs", ids: ["b", "a"], limit: 2, consistencyLevel: .strong)
    try assertSameSearchRequest(
      SearchRequest(serializedBytes: encoded(byString, schema: keyed)),
      SearchRequest(
        serializedBytes: PymilvusTypes.encoded([
          "op": "encode_search", "collection": "docs", "anns_field": "vec", "ids": ["b", "a"],
          "limit": 2, "consistency_level": "Strong",
        ])))
  }

  /// Range bounds, grouping, offset and ignore_growing go where pymilvus puts them (radius and
  /// range_filter inside the params JSON, the rest as top-level search parameters).
  func testSearchParametersMatchPymilvus() throws {
    let call = MilvusCall<[[SearchHit]]>.search(
      "docs", vectors: [Self.center, Self.corner], annsField: "vec", limit: 5,
      filter: "n > 3", outputFields: ["color", "n"], metricType: .l2, params: ["ef": 32],
      radius: 0.3, rangeFilter: 0.1, offset: 3,
      groupBy: SearchGrouping(field: "color", size: 2, strictSize: true), ignoreGrowing: true,
      partitions: ["_default"], consistencyLevel: .strong)
    let mine = try SearchRequest(serializedBytes: encoded(call, schema: Self.liteSchema))
    try assertSameSearchRequest(
      mine,
      SearchRequest(
        serializedBytes: PymilvusTypes.encoded([
          "op": "encode_search", "collection": "docs", "anns_field": "vec",
          "data": [Self.center.map(Double.init), Self.corner.map(Double.init)], "limit": 5,
          "filter": "n > 3", "output_fields": ["color", "n"],
          "search_params": [
            "metric_type": "L2", "params": ["ef": 32, "radius": 0.3, "range_filter": 0.1],
          ],
          "offset": 3, "group_by_field": "color", "group_size": 2, "strict_group_size": true,
          "ignore_growing": true, "partition_names": ["_default"], "consistency_level": "Strong",
        ])))
    let params = mine.searchParams.dictionary
    XCTAssertEqual(params["ignore_growing"], "True")
    XCTAssertEqual(params["group_by_field"], "color")
    XCTAssertEqual(
      try JSONText.parse(Data((params["params"] ?? "").utf8)),
      ["ef": 32, "radius": 0.3, "range_filter": 0.1])
  }

  // MARK: - Local argument checks

  private func error<Output>(_ call: MilvusCall<Output>, schema: CollectionSchema = liteSchema)
    -> MilvexError?
  {
    do {
      _ = try encoded(call, schema: schema)
      return nil
    } catch let error as MilvexError {
      return error
    } catch {
      XCTFail("not a MilvexError: \(error)")
      return nil
    }
  }

  private func assertInvalid<Output>(
    _ call: MilvusCall<Output>, field: String, saying words: String,
    schema: CollectionSchema = liteSchema, file: StaticString = #filePath, line: UInt = #line
  ) {
    guard case .invalidArgument(let named, let message)? = error(call, schema: schema) else {
      XCTFail("expected an invalid argument \(field)", file: file, line: line)
      return
    }
    XCTAssertEqual(named, field, message, file: file, line: line)
    XCTAssertTrue(message.contains(words), "'\(message)' lacks '\(words)'", file: file, line: line)
  }

  func testRangeBoundsAreCheckedForTheMetric() {
    typealias Search = MilvusCall<[[SearchHit]]>
    let q = [Self.center]
    assertInvalid(
      Search.search(
        "c", vectors: q, annsField: "vec", metricType: .l2, radius: 0.1, rangeFilter: 0.3),
      field: "rangeFilter", saying: "must be less than radius (0.1) for metric L2")
    assertInvalid(
      Search.search(
        "c", vectors: q, annsField: "vec", metricType: .ip, radius: 0.9, rangeFilter: 0.5),
      field: "rangeFilter", saying: "must be greater than radius (0.9) for metric IP")
    assertInvalid(
      Search.search(
        "c", vectors: q, annsField: "vec", metricType: "cosine", radius: 0.9, rangeFilter: 0.9),
      field: "rangeFilter", saying: "must be greater than radius (0.9) for metric COSINE")
    assertInvalid(
      Search.search("c", vectors: q, annsField: "vec", rangeFilter: 0.2), field: "rangeFilter",
      saying: "needs a radius")
    assertInvalid(
      Search.search("c", vectors: q, annsField: "vec", radius: .infinity), field: "radius",
      saying: "must be a finite number")
    assertInvalid(
      Search.search("c", vectors: q, annsField: "vec", params: ["radius": 1], radius: 0.5),
      field: "params",
      saying: "sets 'radius', and so does radius")
    // Without a metric the order is the server's to check; the right orders pass.
    XCTAssertNil(
      error(Search.search("c", vectors: q, annsField: "vec", radius: 0.1, rangeFilter: 0.3)))
    XCTAssertNil(
      error(
        Search.search(
          "c", vectors: q, annsField: "vec", metricType: .l2, radius: 0.3, rangeFilter: 0.1)))
    XCTAssertNil(
      error(
        Search.search(
          "c", vectors: q, annsField: "vec", metricType: .cosine, radius: 0.3, rangeFilter: 0.9)))
    assertInvalid(
      MilvusCall<[[SearchHit]]>.hybridSearch(
        "c",
        [
          AnnSearch(vectors: q, annsField: "vec"),
          AnnSearch(vectors: q, annsField: "vec_cos", metricType: .l2, radius: 1, rangeFilter: 2),
        ], ranker: .rrf()),
      field: "searches[1].rangeFilter", saying: "must be less than radius")
  }

  func testGroupingKeysAndTemplatesAreChecked() throws {
    typealias Search = MilvusCall<[[SearchHit]]>
    let q = [Self.center]
    assertInvalid(
      Search.search(
        "c", vectors: q, annsField: "vec", groupBy: SearchGrouping(field: "color", size: 0)),
      field: "groupBy.size", saying: "must be at least 1, is 0")
    assertInvalid(
      Search.search("c", vectors: q, annsField: "vec", groupBy: SearchGrouping(field: "shade")),
      field: "groupBy.field", saying: "has no field 'shade'")
    assertInvalid(
      Search.search("c", vectors: q, annsField: "vec", groupBy: SearchGrouping(field: "vec_cos")),
      field: "groupBy.field", saying: "a search groups by a scalar field")
    assertInvalid(
      Search.hybridSearch(
        "c", [AnnSearch(vectors: q, annsField: "vec")], ranker: .rrf(),
        groupBy: SearchGrouping(field: "")),
      field: "groupBy.field", saying: "must not be empty")
    assertInvalid(
      Search.search("c", vectors: q, annsField: "vec", offset: -1), field: "offset",
      saying: "must not be negative")

    // Search by primary keys: keys of the key's type, not with queries, not in hybrids.
    assertInvalid(
      Search.search("c", ids: [1, "two"], annsField: "vec"), field: "ids[1]",
      saying: "does not match primary key 'id' of type int64")
    assertInvalid(Search.search("c", ids: []), field: "ids", saying: "must not be empty")
    var both = AnnSearch(ids: [1], annsField: "vec")
    both.queries = [.floatVector(Self.center)]
    assertInvalid(Search.search("c", both), field: "ids", saying: "not both")
    assertInvalid(
      Search.hybridSearch(
        "c", [AnnSearch(vectors: q, annsField: "vec"), AnnSearch(ids: [1], annsField: "vec")],
        ranker: .rrf()),
      field: "searches[1].ids", saying: "not primary keys")

    // Template values: every shape pymilvus refuses is refused here, naming the key.
    typealias Query = MilvusCall<[Row]>
    assertInvalid(
      Query.query("c", filter: "id in {ids}", filterParams: ["ids": [1, nil, [:]], "x": nil]),
      field: "filterParams[\"x\"]", saying: "is null, which has no filter template form")
    assertInvalid(
      Query.query("c", filter: "m == {m}", filterParams: ["m": ["k": 1]]),
      field: "filterParams[\"m\"]", saying: "is an object")
    assertInvalid(
      Query.query("c", filter: "v == {v}", filterParams: ["v": .floatVector([1])]),
      field: "filterParams[\"v\"]", saying: "is a float vector")
    assertInvalid(
      Query.query("c", filter: "m in {m}", filterParams: ["m": [["k": 1], ["k": 2]]]),
      field: "filterParams[\"m\"][0]", saying: "is an object, like every element")
    assertInvalid(
      Query.query("c", filter: "m in {m}", filterParams: ["m": [[1], [nil, nil]]]),
      field: "filterParams[\"m\"][1][0]", saying: "is null, like every element")
    assertInvalid(
      Query.query("c", filter: "id == {1st}", filterParams: ["1st": 1]),
      field: "filterParams[\"1st\"]", saying: "is not a placeholder name")
    assertInvalid(
      Query.query("c", filter: "", filterParams: ["a": 1], limit: 3), field: "filterParams",
      saying: "the filter is empty")
    assertInvalid(
      Search.search(
        "c", vectors: q, annsField: "vec", filter: "n > {n}", filterParams: ["n": [:]]),
      field: "filterParams[\"n\"]", saying: "is an object")
    assertInvalid(
      Search.hybridSearch(
        "c",
        [
          AnnSearch(vectors: q, annsField: "vec"),
          AnnSearch(vectors: q, annsField: "vec", filter: "n > {n}", filterParams: ["n": nil]),
        ], ranker: .rrf()),
      field: "searches[1].filterParams[\"n\"]", saying: "is null")
    // A mixed list is JSON, as pymilvus sends it; objects and nulls are fine inside one. A
    // string in it is a JSON string (pymilvus takes a string there as JSON text, and refuses
    // "a").
    XCTAssertNil(
      error(Query.query("c", filter: "id in {ids}", filterParams: ["ids": [1, nil, [:]]])))
    let mixed = try FilterTemplate.values(["m": [1, "a", nil]])["m"]?.arrayVal.jsonData.data
    XCTAssertEqual(mixed, [Data("1".utf8), Data("\"a\"".utf8), Data("null".utf8)])
  }

  // MARK: - The guide's example

  /// The Docs/milvus-api.md "Search features" block, word for word, on milvus-lite (filter
  /// templates and search by primary keys are only made there: no server here runs them).
  // swift-format-ignore
  func testGuideExampleRunsOnMilvusLite() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await client.perform(
      .createCollection("items", schema: Self.liteSchema, consistencyLevel: .strong))
    _ = try await client.perform(.insert(into: "items", rows: (0..<80).map { Self.row($0) }))
    for (field, metric) in [("vec", MetricType.l2), ("vec_cos", .cosine)] {
      let index = IndexSpec(fieldName: field, indexType: .flat, metricType: metric)
      try await client.perform(.createIndex(on: "items", index))
    }
    try await client.loadCollection("items")

    // --- Docs/milvus-api.md "Search features" ---
    let probe: [Float] = [0.5, 0.5, 0.5, 0.5]
    let inBand = try await client.perform(.search(
      "items", vectors: [probe], annsField: "vec", limit: 10, metricType: .l2,
      radius: 0.3, rangeFilter: 0.1))                        // 0.1 ≤ distance < 0.3
    let perColor = try await client.perform(.search(
      "items", vectors: [probe], annsField: "vec", limit: 3, outputFields: ["color"],
      groupBy: SearchGrouping(field: "color", size: 2, strictSize: true)))  // 3 colors × 2
    let page2 = try await client.perform(.search(
      "items", vectors: [probe], annsField: "vec", limit: 5, offset: 5,
      ignoreGrowing: true, consistencyLevel: .strong))       // hits 6–10
    let fused = try await client.perform(.hybridSearch(
      "items", [AnnSearch(vectors: [probe], annsField: "vec"),
                AnnSearch(vectors: [probe], annsField: "vec_cos")],
      ranker: .rrf(), limit: 5, offset: 5))
    let picked = try await client.perform(.get("items", ids: [5, 17], outputFields: ["color"]))
    let removed = try await client.perform(.delete(from: "items", filter: "n >= 76"))
    print(inBand[0].count, perColor[0].count, page2[0].count, fused[0].count, picked.count,
          removed.deleteCount)   // 10 6 5 5 2 4
    // Filter templates (Milvus 2.5 and later) and search by primary keys (Milvus 2.6 and later)
    let reds = MilvusCall<[Row]>.query(
      "items", filter: "id in {ids} and color == {c}", filterParams: ["ids": [1, 2, 3], "c": "red"])
    let neighbours = MilvusCall<[[SearchHit]]>.search("items", ids: [5, 17], annsField: "vec")
    print(reds.method, neighbours.method)   // Query Search
    // --- end ---

    XCTAssertEqual(inBand[0].count, 10)
    XCTAssertTrue(inBand[0].allSatisfy { (0.1..<0.3).contains($0.distance) })
    XCTAssertEqual(perColor[0].count, 6)
    XCTAssertEqual(Set(perColor[0].compactMap { $0.fields["color"] }).count, 3)
    XCTAssertEqual(page2[0].count, 5)
    XCTAssertEqual(fused[0].count, 5)
    XCTAssertEqual(picked.count, 2)
    XCTAssertEqual(removed.deleteCount, 4)
    XCTAssertNil(reds.invalid)
    XCTAssertNil(neighbours.invalid)
    try await client.perform(.dropCollection("items"))
    await fixture.stop()
  }

  // MARK: - Cross-checks against pymilvus on the servers

  private func assertSameHits(
    _ mine: [[SearchHit]], _ result: FieldValue, _ label: String, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    let theirs = PymilvusTypes.hits(result)
    XCTAssertEqual(mine.count, theirs.count, "\(label): query count", file: file, line: line)
    XCTAssertFalse(mine.joined().isEmpty, "\(label): found nothing", file: file, line: line)
    for (query, (ours, others)) in zip(mine, theirs).enumerated() {
      XCTAssertEqual(
        ours.map(\.id.fieldValue), others.map(\.id), "\(label), query \(query)", file: file,
        line: line)
      for (hit, other) in zip(ours, others) {
        XCTAssertEqual(
          Double(hit.distance), other.distance, accuracy: 1e-5, "\(label), hit \(hit.id)",
          file: file, line: line)
      }
    }
  }

  private func ids(_ rows: [Row]) -> [Int64] {
    rows.compactMap { $0["id"]?.intValue }.sorted()
  }

  private func ids(_ result: FieldValue) -> [Int64] {
    (result.objectValue?["rows"]?.arrayValue ?? []).compactMap { $0.objectValue?["id"]?.intValue }
  }

  private static func vectors(_ vectors: [[Float]]) -> [[Double]] {
    vectors.map { $0.map(Double.init) }
  }

  /// Range search, grouping, offset, hybrid offset, get and delete by filter on milvus-lite,
  /// each against pymilvus on the same collection.
  func testSearchFeaturesOnMilvusLiteMatchPymilvus() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    let name = "features"
    try await client.perform(
      .createCollection(name, schema: Self.liteSchema, consistencyLevel: .strong))
    _ = try await client.perform(.insert(into: name, rows: (0..<80).map { Self.row($0) }))
    try await client.perform(
      .createIndex(on: name, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))
    try await client.perform(
      .createIndex(
        on: name, IndexSpec(fieldName: "vec_cos", indexType: .flat, metricType: .cosine)))
    try await client.loadCollection(name)
    let uri = "http://127.0.0.1:\(fixture.server.port)"
    let queries = Self.vectors([Self.center, Self.corner])

    let rangeL2 = try await client.perform(
      .search(
        name, vectors: [Self.center, Self.corner], annsField: "vec", limit: 10, metricType: .l2,
        radius: 0.3, rangeFilter: 0.1))
    let rangeCosine = try await client.perform(
      .search(
        name, vectors: [Self.center, Self.corner], annsField: "vec_cos", limit: 10,
        metricType: .cosine, radius: 0.9, rangeFilter: 0.97))
    let grouped = try await client.perform(
      .search(
        name, vectors: [Self.center], annsField: "vec", limit: 3, outputFields: ["color"],
        groupBy: SearchGrouping(field: "color", size: 2, strictSize: true)))
    let byFlag = try await client.perform(
      .search(
        name, vectors: [Self.corner], annsField: "vec", limit: 2, outputFields: ["flag"],
        groupBy: SearchGrouping(field: "flag", size: 3)))
    let paged = try await client.perform(
      .search(name, vectors: [Self.center, Self.corner], annsField: "vec", limit: 5, offset: 3))
    let unpaged = try await client.perform(
      .search(name, vectors: [Self.center, Self.corner], annsField: "vec", limit: 8))
    let byVec = AnnSearch(vectors: [Self.center], annsField: "vec", limit: 10)
    let byCos = AnnSearch(vectors: [Self.corner], annsField: "vec_cos", limit: 10, filter: "n > 10")
    let hybridPaged = try await client.perform(
      .hybridSearch(name, [byVec, byCos], ranker: .rrf(k: 60), limit: 4, offset: 2))
    let hybridGrouped = try await client.perform(
      .hybridSearch(
        name, [byVec, byCos], ranker: .rrf(k: 60), limit: 3, outputFields: ["color"],
        groupBy: SearchGrouping(field: "color", size: 2)))
    let fetched = try await client.perform(
      .get(name, ids: [5, 17, 999, 2], outputFields: ["color", "n", "vec"]))

    let sub: (String, [[Double]], String) -> [String: Any] = { field, data, filter in
      ["anns_field": field, "data": data, "limit": 10, "filter": filter]
    }
    let theirs = try PymilvusTypes.run(
      uri: uri, collection: name,
      [
        [
          "op": "search", "anns_field": "vec", "data": queries, "limit": 10,
          "search_params": ["metric_type": "L2", "params": ["radius": 0.3, "range_filter": 0.1]],
        ],
        [
          "op": "search", "anns_field": "vec_cos", "data": queries, "limit": 10,
          "search_params": [
            "metric_type": "COSINE", "params": ["radius": 0.9, "range_filter": 0.97],
          ],
        ],
        [
          "op": "search", "anns_field": "vec", "data": Self.vectors([Self.center]), "limit": 3,
          "output_fields": ["color"], "group_by_field": "color", "group_size": 2,
          "strict_group_size": true,
        ],
        [
          "op": "search", "anns_field": "vec", "data": Self.vectors([Self.corner]), "limit": 2,
          "output_fields": ["flag"], "group_by_field": "flag", "group_size": 3,
        ],
        ["op": "search", "anns_field": "vec", "data": queries, "limit": 5, "offset": 3],
        [
          "op": "search",
          "searches": [sub("vec", [queries[0]], ""), sub("vec_cos", [queries[1]], "n > 10")],
          "ranker": ["rrf": 60], "limit": 4, "offset": 2,
        ],
        [
          "op": "search",
          "searches": [sub("vec", [queries[0]], ""), sub("vec_cos", [queries[1]], "n > 10")],
          "ranker": ["rrf": 60], "limit": 3, "output_fields": ["color"],
          "group_by_field": "color", "group_size": 2,
        ],
        ["op": "query", "ids": [5, 17, 999, 2], "output_fields": ["color", "n", "vec"]],
      ])

    // Range search: the same hits, all inside the band.
    assertSameHits(rangeL2, theirs[0], "L2 range search")
    for hit in rangeL2.joined() { XCTAssertTrue((0.1..<0.3).contains(hit.distance), "\(hit)") }
    assertSameHits(rangeCosine, theirs[1], "COSINE range search")
    for hit in rangeCosine.joined() {
      XCTAssertTrue(hit.distance > 0.9 && hit.distance <= 0.97, "\(hit)")
    }
    // Grouping: 3 colors, 2 hits each (strict), each group's hits together.
    assertSameHits(grouped, theirs[2], "group by color")
    let groupColors = grouped[0].compactMap { $0.fields["color"]?.stringValue }
    XCTAssertEqual(groupColors.count, 6)
    XCTAssertEqual(Set(groupColors).count, 3)
    for pair in stride(from: 0, to: groupColors.count, by: 2) {
      XCTAssertEqual(groupColors[pair], groupColors[pair + 1], "\(groupColors)")
    }
    assertSameHits(byFlag, theirs[3], "group by flag")
    XCTAssertEqual(Set(byFlag[0].compactMap { $0.fields["flag"] }), [true, false])
    // Offset: the hits after the first 3.
    assertSameHits(paged, theirs[4], "offset")
    XCTAssertEqual(paged.map { $0.map(\.id) }, unpaged.map { $0.dropFirst(3).map(\.id) })
    // Hybrid search: offset and grouping of the fused list.
    assertSameHits(hybridPaged, theirs[5], "hybrid search with offset")
    XCTAssertEqual(hybridPaged[0].count, 4)
    assertSameHits(hybridGrouped, theirs[6], "hybrid search grouped by color")
    let hybridColors = hybridGrouped[0].compactMap { $0.fields["color"]?.stringValue }
    XCTAssertEqual(Set(hybridColors).count, 3)
    XCTAssertLessThanOrEqual(hybridColors.count, 6)
    // Get by ids: the rows that exist, with the fields asked for, as pymilvus reads them.
    let gotten = fetched.sorted { ($0["id"]?.intValue ?? 0) < ($1["id"]?.intValue ?? 0) }
    XCTAssertEqual(ids(gotten), [2, 5, 17])
    let theirRows = (theirs[7].objectValue?["rows"]?.arrayValue ?? []).map {
      PymilvusTypes.row($0, schema: Self.liteSchema)
    }
    XCTAssertEqual(gotten, theirRows)
    XCTAssertEqual(gotten.first, ["id": 2, "color": "blue", "n": 2, "vec": Self.row(2)["vec"]!])

    // Neither filter templates nor search by primary keys: milvus-lite refuses both.
    await assertMilvexError({
      try await client.perform(
        .query(name, filter: "id in {ids}", filterParams: ["ids": [1, 2]], outputFields: ["id"]))
    }) { $0.milvusCode != nil && "\($0)".contains("{") }
    await assertMilvexError({
      try await client.perform(.search(name, ids: [3], annsField: "vec"))
    }) { $0.milvusCode != nil && "\($0)".contains("placeholder") }

    // Delete by filter: as many rows as pymilvus counts, and both read the same rest.
    let filter = "n >= 60 and color == \"red\""
    let matching = try PymilvusTypes.run(
      uri: uri, collection: name, [["op": "query", "filter": filter, "output_fields": ["id"]]])
    XCTAssertEqual(ids(matching[0]), [60, 64, 68, 72, 76])
    let deleted = try await client.perform(.delete(from: name, filter: filter))
    XCTAssertEqual(deleted.deleteCount, 5)
    let rest = try await client.perform(.query(name, filter: "n >= 60", outputFields: ["id"]))
    let theirRest = try PymilvusTypes.run(
      uri: uri, collection: name, [["op": "query", "filter": "n >= 60", "output_fields": ["id"]]])
    XCTAssertEqual(ids(rest), ids(theirRest[0]))
    XCTAssertEqual(ids(rest), (60..<80).filter { $0 % 4 != 0 }.map(Int64.init))

    try await client.perform(.dropCollection(name))
    await fixture.stop()
  }

  /// ignoreGrowing, consistency per call, range search, offset, get and delete by filter on the
  /// real Milvus 2.3.5 server (real segments and real consistency, unlike milvus-lite's), each
  /// against pymilvus; grouping is ignored there.
  func testSearchFeaturesOnMilvus235MatchPymilvus() async throws {
    let server = try MilvusServers.plain
    let loop = try EventLoop(threadName: "search-features")
    defer { loop.shutdown() }
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: server.host, port: server.port, timeout: .seconds(60)),
      on: loop)
    let name = "features_\(UUID().uuidString.prefix(8).lowercased())"
    let uri = "http://\(server.host):\(server.port)"
    // Eventually by default: a read sees a fresh write only when the call asks for it.
    try await client.perform(
      .createCollection(name, schema: Self.realSchema, consistencyLevel: .eventually))
    do {
      try await runOnMilvus235(client: client, name: name, uri: uri)
    } catch {
      _ = try? await client.perform(.dropCollection(name))
      await client.close()
      throw error
    }
    try await client.perform(.dropCollection(name))
    await client.close()
  }

  private func runOnMilvus235(client: MilvusClient, name: String, uri: String) async throws {
    // Rows 0 ..< 40 flushed (pymilvus's flush waits until they are) before the load, so they
    // are in sealed segments; 40 ..< 50, inserted after, are in growing segments, and nearer.
    _ = try await client.perform(
      .insert(into: name, rows: (0..<40).map { Self.row($0, schema: Self.realSchema) }))
    _ = try PymilvusTypes.run(uri: uri, collection: name, [["op": "flush"]])
    try await client.perform(
      .createIndex(on: name, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))
    try await client.loadCollection(name)
    let growing: [Row] = (40..<50).map { index in
      var row = Self.row(index, schema: Self.realSchema)
      row["vec"] = .floatVector([0.5, 0.5, 0.5, 0.5 + Float(index - 40) / 1000])
      return row
    }
    _ = try await client.perform(.insert(into: name, rows: growing))

    let everything = try await client.perform(
      .search(name, vectors: [Self.center], limit: 5, consistencyLevel: .strong))
    let sealedOnly = try await client.perform(
      .search(
        name, vectors: [Self.center], limit: 5, ignoreGrowing: true, consistencyLevel: .strong))
    let sealedRows = try await client.perform(
      .query(
        name, filter: "id >= 0", outputFields: ["id"], limit: 100, ignoreGrowing: true,
        consistencyLevel: .strong))
    let rangeL2 = try await client.perform(
      .search(
        name, vectors: [Self.center, Self.corner], limit: 10, metricType: .l2, radius: 0.3,
        rangeFilter: 0.1, consistencyLevel: .strong))
    let paged = try await client.perform(
      .search(name, vectors: [Self.corner], limit: 5, offset: 3, consistencyLevel: .strong))
    let grouped = try await client.perform(
      .search(
        name, vectors: [Self.corner], limit: 3, groupBy: SearchGrouping(field: "color"),
        consistencyLevel: .strong))
    let ungrouped = try await client.perform(
      .search(name, vectors: [Self.corner], limit: 3, consistencyLevel: .strong))
    let fetched = try await client.perform(
      .get(
        name, ids: [3, 41, 999], outputFields: ["color", "n", "vec"], consistencyLevel: .strong))

    let center = Self.vectors([Self.center])
    let theirs = try PymilvusTypes.run(
      uri: uri, collection: name,
      [
        [
          "op": "search", "anns_field": "vec", "data": center, "limit": 5,
          "ignore_growing": true, "consistency_level": "Strong",
        ],
        [
          "op": "query", "filter": "id >= 0", "output_fields": ["id"], "limit": 100,
          "ignore_growing": true, "consistency_level": "Strong",
        ],
        [
          "op": "search", "anns_field": "vec", "data": Self.vectors([Self.center, Self.corner]),
          "limit": 10, "consistency_level": "Strong",
          "search_params": ["metric_type": "L2", "params": ["radius": 0.3, "range_filter": 0.1]],
        ],
        [
          "op": "search", "anns_field": "vec", "data": Self.vectors([Self.corner]), "limit": 5,
          "offset": 3, "consistency_level": "Strong",
        ],
        [
          "op": "query", "ids": [3, 41, 999], "output_fields": ["color", "n", "vec"],
          "consistency_level": "Strong",
        ],
      ])

    // ignoreGrowing: the growing rows, nearest of all, are skipped; pymilvus skips the same.
    XCTAssertEqual(everything[0].first?.id, 40)
    XCTAssertTrue(sealedOnly[0].allSatisfy { ($0.id.fieldValue.intValue ?? 99) < 40 })
    assertSameHits(sealedOnly, theirs[0], "ignore_growing search")
    XCTAssertEqual(ids(sealedRows), (0..<40).map(Int64.init))
    XCTAssertEqual(ids(sealedRows), ids(theirs[1]))
    // Range search and offset, as on milvus-lite.
    assertSameHits(rangeL2, theirs[2], "L2 range search")
    for hit in rangeL2.joined() { XCTAssertTrue((0.1..<0.3).contains(hit.distance), "\(hit)") }
    assertSameHits(paged, theirs[3], "offset")
    // Milvus 2.3.5 ignores grouping: the plain hits.
    XCTAssertEqual(grouped.map { $0.map(\.id) }, ungrouped.map { $0.map(\.id) })
    // Get by ids.
    let gotten = fetched.sorted { ($0["id"]?.intValue ?? 0) < ($1["id"]?.intValue ?? 0) }
    XCTAssertEqual(ids(gotten), [3, 41])
    XCTAssertEqual(
      gotten,
      (theirs[4].objectValue?["rows"]?.arrayValue ?? []).map {
        PymilvusTypes.row($0, schema: Self.realSchema)
      })

    // Consistency per call: at the collection's eventual default a fresh row may be missed;
    // a strong search and a strong get see each one at once, 10 times in a row.
    var newest: [Float] = []
    for step in 0..<10 {
      let id = Int64(1_000 + step)
      newest = [Float(step) / 10, 1, 1, 1]
      _ = try await client.perform(
        .insert(
          into: name,
          rows: [["id": .int(id), "color": "red", "n": .int(id), "vec": .floatVector(newest)]]))
      let found = try await client.perform(
        .search(name, vectors: [newest], limit: 1, consistencyLevel: .strong))
      XCTAssertEqual(found[0].first?.id, .int(id), "insert \(id) missed by a strong search")
      XCTAssertEqual(found[0].first?.distance, 0)
      let got = try await client.perform(
        .get(name, ids: [.int(id)], outputFields: ["n"], consistencyLevel: .strong))
      XCTAssertEqual(got.first?["n"], .int(id), "insert \(id) missed by a strong get")
    }
    let theirNewest = try PymilvusTypes.run(
      uri: uri, collection: name,
      [
        [
          "op": "search", "anns_field": "vec", "data": Self.vectors([newest]), "limit": 3,
          "consistency_level": "Strong",
        ]
      ])
    let ourNewest = try await client.perform(
      .search(name, vectors: [newest], limit: 3, consistencyLevel: .strong))
    assertSameHits(ourNewest, theirNewest[0], "strong search after the inserts")

    // Delete by filter: the rows pymilvus counts, gone for both.
    let matching = try PymilvusTypes.run(
      uri: uri, collection: name,
      [["op": "query", "filter": "n < 5", "output_fields": ["id"], "consistency_level": "Strong"]])
    XCTAssertEqual(ids(matching[0]), [0, 1, 2, 3, 4])
    let deleted = try await client.perform(.delete(from: name, filter: "n < 5"))
    XCTAssertEqual(deleted.deleteCount, 5)
    let rest = try await client.perform(
      .query(name, filter: "n < 10", outputFields: ["id"], consistencyLevel: .strong))
    let theirRest = try PymilvusTypes.run(
      uri: uri, collection: name,
      [["op": "query", "filter": "n < 10", "output_fields": ["id"], "consistency_level": "Strong"]])
    XCTAssertEqual(ids(rest), [5, 6, 7, 8, 9])
    XCTAssertEqual(ids(rest), ids(theirRest[0]))

    // Neither filter templates nor pymilvus 3.0.2's search by primary keys: 2.3.5 refuses both.
    await assertMilvexError({
      try await client.perform(
        .query(name, filter: "id in {ids}", filterParams: ["ids": [1, 2]], outputFields: ["id"]))
    }) { $0.milvusCode != nil }
    await assertMilvexError({
      try await client.perform(.search(name, ids: [7], consistencyLevel: .strong))
    }) { $0.milvusCode != nil && "\($0)".contains("empty search request") }
  }
}
