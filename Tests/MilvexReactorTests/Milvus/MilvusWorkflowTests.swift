import Foundation
import XCTest

@testable import MilvexReactor

/// The typed API end to end against milvus-lite: every group (server, databases, collections,
/// partitions, indexes, data, aliases) in one workflow, as an application would use it.
final class MilvusWorkflowTests: XCTestCase {
  /// The server a workflow runs against, and what only one of them does.
  enum Server {
    /// milvus-lite 3.2.2 (Python stand-in, Milvus 2.4-era API, no partition loading).
    case milvusLite
    /// The real Milvus 2.3.5 standalone server (plaintext, shared by the test run).
    case milvus235

    var versionMarker: String { self == .milvusLite ? "milvus_lite" : "2.3" }
    /// Several vector fields in one collection (and so hybrid search) came with Milvus 2.4.
    var hasSeveralVectorFields: Bool { self == .milvusLite }
  }

  func testWholeWorkflow() async throws {
    let fixture = try MilvusFixture()
    try await runWorkflow(fixture.client, on: .milvusLite, database: "workflow")
    await fixture.stop()
  }

  /// The same workflow against the real Milvus 2.3.5 server (issue 12): where the servers
  /// differ, each branch says which one proves what.
  func testWholeWorkflowOnTheRealServer() async throws {
    let server = try MilvusServers.plain
    let loop = try EventLoop(threadName: "milvus-real-workflow")
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: server.host, port: server.port, timeout: .seconds(120)),
      on: loop)
    // The server is shared by the run (and the TSan run after it): a database of its own.
    let database = "workflow_\(UUID().uuidString.prefix(8).lowercased())"
    do {
      try await runWorkflow(client, on: .milvus235, database: database)
      // useDatabase checks by listing where DescribeDatabase is missing (before Milvus 2.4).
      await assertMilvexError({ try await client.useDatabase("\(database)_missing") }) {
        $0.milvusCode == 800
      }
    } catch {
      try? await client.useDatabase("default")
      for name in ["items", "items_v2", "items_v3"] {
        _ = try? await client.perform(
          .dropCollection(name), options: MilvusCallOptions(database: database))
      }
      _ = try? await client.perform(.dropDatabase(database))
      await client.close()
      loop.shutdown()
      throw error
    }
    await client.close()
    loop.shutdown()
  }

  private func runWorkflow(_ client: MilvusClient, on server: Server, database: String) async throws
  {
    let strong = ConsistencyLevel.strong
    // On 2.3.5 the mixed schema without its second vector field.
    let schema =
      server.hasSeveralVectorFields
      ? TestData.schema
      : CollectionSchema(
        fields: TestData.schema.fields.filter { $0.name != "vec2" },
        enableDynamicField: true, description: TestData.schema.description)
    func row(_ index: Int) -> Row {
      var row = TestData.row(index)
      if !server.hasSeveralVectorFields { row["vec2"] = nil }
      return row
    }
    func columns(_ range: Range<Int>) -> [String: FieldColumn] {
      var columns = TestData.columns(range)
      if !server.hasSeveralVectorFields { columns["vec2"] = nil }
      return columns
    }

    // Server.
    let version = try await client.perform(.serverVersion())
    XCTAssertTrue(version.contains(server.versionMarker), version)
    let health = try await client.perform(.checkHealth())
    XCTAssertTrue(health.isHealthy, "\(health.reasons)")

    // Databases: create, list, describe, and make it current.
    try await client.perform(.createDatabase(database))
    let databases = try await client.perform(.listDatabases())
    XCTAssertTrue(databases.contains(database) && databases.contains("default"), "\(databases)")
    switch server {
    case .milvusLite:
      let described = try await client.perform(.describeDatabase(database))
      XCTAssertEqual(described.name, database)
    case .milvus235:
      // DescribeDatabase came with Milvus 2.4: 2.3.5 says so, as gRPC UNIMPLEMENTED.
      await assertMilvexError({ try await client.perform(.describeDatabase(database)) }) {
        if case .grpcStatus(let status) = $0 { return status.code == .unimplemented }
        return false
      }
    }
    try await client.useDatabase(database)

    // Collections.
    try await client.perform(.createCollection("items", schema: schema, consistencyLevel: .strong))
    let hasItems = try await client.perform(.hasCollection("items"))
    XCTAssertTrue(hasItems)
    let hasOther = try await client.perform(.hasCollection("other"))
    XCTAssertFalse(hasOther)
    let inWorkflow = try await client.perform(.listCollections())
    XCTAssertEqual(inWorkflow, ["items"])
    let inDefault = try await client.perform(
      .listCollections(), options: MilvusCallOptions(database: "default"))
    XCTAssertFalse(inDefault.contains("items"), "the call's database override: \(inDefault)")
    let description = try await client.perform(.describeCollection("items"))
    XCTAssertEqual(description.name, "items")
    XCTAssertEqual(description.schema.fields.map(\.name), schema.fields.map(\.name))
    XCTAssertEqual(description.schema.fields.map(\.type), schema.fields.map(\.type))
    XCTAssertTrue(description.schema.enableDynamicField)
    XCTAssertEqual(description.schema.primaryKey?.name, "id")

    // 10,000 rows in batches of 1,000, alternately rows and columns.
    var insertedIDs: [PrimaryKey] = []
    for batch in 0..<10 {
      let range = (batch * 1_000)..<((batch + 1) * 1_000)
      let entities: Entities = batch % 2 == 0 ? .rows(range.map(row)) : .columns(columns(range))
      let result = try await client.perform(.insert(into: "items", entities))
      XCTAssertEqual(result.insertCount, 1_000)
      insertedIDs += result.ids
    }
    XCTAssertEqual(insertedIDs, (0..<10_000).map { .int(Int64($0)) })
    try await client.perform(.flush(["items"]))
    var statistics = try await client.perform(.collectionStatistics("items"))
    // Milvus 2.3.5 counts rows once the flush it started has finished (flush does not wait yet,
    // issue 14): wait for the count, bounded; milvus-lite counts at once.
    let statisticsDeadline = ContinuousClock.now + .seconds(60)
    while statistics.rowCount < 10_000, server == .milvus235,
      ContinuousClock.now < statisticsDeadline
    {
      try await Task.sleep(for: .milliseconds(500))
      statistics = try await client.perform(.collectionStatistics("items"))
    }
    XCTAssertEqual(statistics.rowCount, 10_000)

    // Indexes.
    try await client.perform(
      .createIndex(on: "items", IndexSpec(fieldName: "vec", indexType: .autoIndex, metricType: .l2))
    )
    if server.hasSeveralVectorFields {
      try await client.perform(
        .createIndex(on: "items", IndexSpec(fieldName: "vec2", indexType: .flat, metricType: .ip)))
    }
    let indexes = try await client.perform(.describeIndex(on: "items"))
    XCTAssertEqual(
      Set(indexes.map(\.fieldName)), server.hasSeveralVectorFields ? ["vec", "vec2"] : ["vec"])
    let vecIndex = try XCTUnwrap(indexes.first { $0.fieldName == "vec" })
    XCTAssertEqual(vecIndex.metricType, .l2)
    XCTAssertEqual(vecIndex.indexType, .autoIndex)

    // Load.
    try await client.loadCollection("items", timeout: .seconds(30))
    let loadState = try await client.perform(.loadState(of: "items"))
    XCTAssertEqual(loadState, .loaded)

    // Search: each inserted vector's nearest neighbour is itself, at distance 0.
    let probes = [17, 4_242, 9_999]
    let results = try await client.perform(
      .search(
        "items", vectors: probes.map { TestData.vector($0) }, annsField: "vec", limit: 5,
        outputFields: ["title", "color", "tags"], consistencyLevel: strong))
    XCTAssertEqual(results.count, probes.count)
    for (probe, hits) in zip(probes, results) {
      XCTAssertEqual(hits.count, 5)
      XCTAssertEqual(hits.first?.id, .int(Int64(probe)))
      XCTAssertEqual(Double(hits.first?.distance ?? 1), 0, accuracy: 1e-5)
      XCTAssertEqual(hits.first?.fields["title"], .string("t\(probe)"))
      XCTAssertEqual(
        hits.first?.fields["color"], .string(probe % 3 == 0 ? "red" : "blue"), "dynamic field")
      XCTAssertEqual(hits.first?.fields["tags"], [.int(Int64(probe)), .int(Int64(probe + 1))])
      XCTAssertEqual(hits.map(\.distance), hits.map(\.distance).sorted(), "nearest first")
    }
    // The metric reaches the server: named as the index's (L2) it changes nothing; named IP,
    // milvus-lite scores by it (a full Milvus refuses a metric other than the index's).
    let defaultMetric = try await client.perform(
      .search(
        "items", vectors: [TestData.vector(17)], annsField: "vec", limit: 5,
        consistencyLevel: strong))
    let l2 = try await client.perform(
      .search(
        "items", vectors: [TestData.vector(17)], annsField: "vec", limit: 5, metricType: .l2,
        consistencyLevel: strong))
    XCTAssertEqual(l2, defaultMetric)
    let ip: Result<[[SearchHit]], MilvexError>
    do throws(MilvexError) {
      ip = .success(
        try await client.perform(
          .search(
            "items", vectors: [TestData.vector(17)], annsField: "vec", limit: 5, metricType: .ip,
            consistencyLevel: strong)))
    } catch {
      ip = .failure(error)
    }
    switch ip {
    case .success(let hits): XCTAssertNotEqual(hits[0].map(\.distance), l2[0].map(\.distance))
    case .failure(let error):
      XCTAssertNotNil(error.milvusCode, "refused by Milvus, or something else: \(error)")
    }
    // A filter.
    let filtered = try await client.perform(
      .search(
        "items", vectors: [TestData.vector(17)], annsField: "vec", limit: 10,
        filter: "id >= 5000 and flag == true",
        outputFields: ["flag"], consistencyLevel: strong))
    XCTAssertEqual(filtered[0].count, 10)
    for hit in filtered[0] {
      guard case .int(let id) = hit.id else { return XCTFail("int ids") }
      XCTAssertTrue(id >= 5_000 && id % 2 == 0, "\(id)")
      XCTAssertEqual(hit.fields["flag"], .bool(true))
    }

    // Query with a filter: every type comes back as it went in.
    let queried = try await client.perform(
      .query(
        "items", filter: "id in [3, 4, 5]",
        outputFields: [
          "title", "flag", "i8", "i16", "i32", "f", "d", "meta", "tags", "vec", "color",
        ],
        consistencyLevel: strong))
    XCTAssertEqual(queried.count, 3)
    for row in queried {
      let id = Int(try XCTUnwrap(row["id"]?.intValue))
      let expected = TestData.row(id)
      for key in ["title", "flag", "i8", "i16", "i32", "d", "meta", "tags", "color"] {
        XCTAssertEqual(row[key], expected[key], "field \(key) of row \(id)")
      }
      XCTAssertEqual(row["f"], .float(Float(id) / 2))
      XCTAssertEqual(row["vec"], .floatVector(TestData.vector(id)))
    }
    let page = try await client.perform(
      .query(
        "items", filter: "i16 < 100", outputFields: ["id"], limit: 5, offset: 2,
        consistencyLevel: strong))
    XCTAssertEqual(page.count, 5)
    let count = try await client.perform(
      .query("items", filter: "", outputFields: ["count(*)"], consistencyLevel: strong))
    XCTAssertEqual(count.first?["count(*)"], .int(10_000))

    // Get by ids.
    let fetched = try await client.perform(
      .get("items", ids: [1, 2, 3, 123_456], outputFields: ["title"], consistencyLevel: strong))
    XCTAssertEqual(Set(fetched.compactMap { $0["title"]?.stringValue }), ["t1", "t2", "t3"])

    // Upsert replaces; delete by ids and by filter.
    var changed = row(1)
    changed["title"] = "changed"
    let upserted = try await client.perform(.upsert(into: "items", rows: [changed]))
    XCTAssertEqual(upserted.upsertCount, 1)
    XCTAssertEqual(upserted.ids, [1])
    let afterUpsert = try await client.perform(
      .get("items", ids: [1], outputFields: ["title"], consistencyLevel: strong))
    XCTAssertEqual(afterUpsert.first?["title"], "changed")
    let deleted = try await client.perform(.delete(from: "items", ids: [2, 3]))
    XCTAssertEqual(deleted.deleteCount, 2)
    let deletedByFilter = try await client.perform(.delete(from: "items", filter: "id >= 9990"))
    XCTAssertEqual(deletedByFilter.deleteCount, 10)
    let remaining = try await client.perform(
      .get("items", ids: [1, 2, 3], outputFields: ["title"], consistencyLevel: strong))
    XCTAssertEqual(remaining.compactMap { $0["id"]?.intValue }, [1])
    let countAfter = try await client.perform(
      .query("items", filter: "", outputFields: ["count(*)"], consistencyLevel: strong))
    XCTAssertEqual(countAfter.first?["count(*)"], .int(9_988))

    // Hybrid search over both vector fields: the probe's own row wins under either ranker.
    // (milvus-lite; Milvus 2.3.5 has neither several vector fields nor HybridSearch.)
    if server.hasSeveralVectorFields {
      let searches = [
        AnnSearch(vectors: [TestData.vector(4_242)], annsField: "vec", limit: 10),
        AnnSearch(
          vectors: [TestData.vector(4_242, dimension: 2, salt: 7)], annsField: "vec2", limit: 10),
      ]
      let rrf = try await client.perform(
        .hybridSearch("items", searches, ranker: .rrf(k: 60), limit: 3, outputFields: ["title"]))
      XCTAssertEqual(rrf.first?.count, 3)
      // RRF by hand from the two searches alone: score = Σ 1 / (k + rank), rank from 1.
      var fused: [PrimaryKey: Double] = [:]
      for search in searches {
        let hits = try await client.perform(.search("items", search, consistencyLevel: strong))
        for (rank, hit) in hits[0].enumerated() {
          fused[hit.id, default: 0] += 1 / Double(60 + rank + 1)
        }
      }
      let expectedTop = fused.sorted { $0.value > $1.value }.prefix(3)
      // Equal scores may come in either order: compare each hit's score with its own fused score.
      for (hit, expected) in zip(rrf[0], expectedTop) {
        XCTAssertEqual(Double(hit.distance), expected.value, accuracy: 1e-6)
        XCTAssertEqual(Double(hit.distance), fused[hit.id] ?? -1, accuracy: 1e-6, "\(hit.id)")
        XCTAssertEqual(hit.fields["title"], .string("t\(hit.id)"))
      }
      let weighted = try await client.perform(
        .hybridSearch("items", searches, ranker: .weighted([0.9, 0.1]), limit: 3))
      XCTAssertEqual(weighted.first?.first?.id, 4_242)
    } else {
      let searches = [AnnSearch(vectors: [TestData.vector(4_242)], annsField: "vec", limit: 10)]
      await assertMilvexError({
        try await client.perform(.hybridSearch("items", searches, ranker: .rrf(k: 60), limit: 3))
      }) {
        if case .grpcStatus(let status) = $0 { return status.code == .unimplemented }
        return false
      }
    }

    // Partitions.
    try await client.perform(.createPartition("recent", in: "items"))
    let partitions = try await client.perform(.listPartitions(in: "items"))
    XCTAssertEqual(Set(partitions), ["_default", "recent"])
    let hasRecent = try await client.perform(.hasPartition("recent", in: "items"))
    XCTAssertTrue(hasRecent)
    let inPartition = try await client.perform(
      .insert(into: "items", rows: [row(20_000), row(20_001)], partition: "recent"))
    XCTAssertEqual(inPartition.insertCount, 2)
    let partitionHits = try await client.perform(
      .search(
        "items", vectors: [TestData.vector(17)], annsField: "vec", limit: 5, partitions: ["recent"],
        consistencyLevel: strong))
    XCTAssertEqual(
      Set(partitionHits[0].map(\.id)), [20_000, 20_001], "only the partition's entities")
    switch server {
    case .milvusLite:
      // milvus-lite loads and releases whole collections only; the refusal surfaces as gRPC UNIMPLEMENTED.
      await assertMilvexError({ try await client.perform(.loadPartitions(["recent"], in: "items")) }
      ) {
        if case .grpcStatus(let status) = $0 { return status.code == .unimplemented }
        return false
      }
      await assertMilvexError({
        try await client.perform(.releasePartitions(["recent"], in: "items"))
      }) {
        if case .grpcStatus(let status) = $0 { return status.code == .unimplemented }
        return false
      }
    case .milvus235:
      // The real server loads and releases partitions (proved here, not by milvus-lite).
      try await client.perform(.releasePartitions(["recent"], in: "items"))
      try await client.perform(.loadPartitions(["recent"], in: "items"))
    }

    // Aliases: search through one, move it to another collection, drop it.
    try await client.perform(.createAlias("current", for: "items"))
    let aliases = try await client.perform(.listAliases(of: "items"))
    XCTAssertEqual(aliases, ["current"])
    let viaAlias = try await client.perform(
      .search(
        "current", vectors: [TestData.vector(17)], annsField: "vec", limit: 1,
        consistencyLevel: strong))
    XCTAssertEqual(viaAlias.first?.first?.id, 17)
    try await client.perform(.createCollection("items_v2", schema: schema))
    try await client.perform(.alterAlias("current", to: "items_v2"))
    let movedAliases = try await client.perform(.listAliases(of: "items_v2"))
    XCTAssertEqual(movedAliases, ["current"])
    try await client.perform(.dropAlias("current"))
    let noAliases = try await client.perform(.listAliases(of: "items_v2"))
    XCTAssertEqual(noAliases, [])

    // Rename, release, drop index, drop partition, drop collections and the database.
    try await client.perform(.renameCollection("items_v2", to: "items_v3"))
    let renamed = try await client.perform(.hasCollection("items_v3"))
    XCTAssertTrue(renamed)
    try await client.perform(.releaseCollection("items"))
    let released = try await client.perform(.loadState(of: "items"))
    XCTAssertEqual(released, .notLoaded)
    if server.hasSeveralVectorFields {
      try await client.perform(.dropIndex(on: "items", fieldName: "vec2"))
      let indexesAfterDrop = try await client.perform(.describeIndex(on: "items"))
      XCTAssertEqual(indexesAfterDrop.map(\.fieldName), ["vec"])
    }
    try await client.perform(.dropPartition("recent", in: "items"))
    let partitionsAfterDrop = try await client.perform(.listPartitions(in: "items"))
    XCTAssertEqual(partitionsAfterDrop, ["_default"])
    try await client.perform(.dropCollection("items"))
    try await client.perform(.dropCollection("items_v3"))
    let empty = try await client.perform(.listCollections())
    XCTAssertEqual(empty, [])
    try await client.useDatabase("default")
    try await client.perform(.dropDatabase(database))
    let databasesAfter = try await client.perform(.listDatabases())
    XCTAssertFalse(databasesAfter.contains(database))
  }

  /// The callback form delivers exactly once, on the loop thread.
  func testCallbackForm() async throws {
    let fixture = try MilvusFixture()
    let delivered = Locked<[Result<[String], MilvexError>]>([])
    let done = Latch()
    let loop = fixture.loop
    fixture.client.perform(.listDatabases()) { result in
      XCTAssertTrue(loop.inLoopThread, "completion on the loop thread")
      delivered.withLock { $0.append(result) }
      done.open()
    }
    done.waitOrFail("the callback", timeout: .seconds(30))
    // Anything delivered twice would have arrived by the time a second call has come back.
    _ = try await fixture.client.perform(.listDatabases())
    let results = delivered.withLock { $0 }
    XCTAssertEqual(results.count, 1)
    XCTAssertEqual(try results.first?.get().contains("default"), true)
    await fixture.stop()
  }
}
