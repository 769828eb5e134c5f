import Foundation
import XCTest

@testable import MilvexReactor

/// The query and search iterators against real servers (issue 14, item 1): milvus-lite 3.2.2
/// for the 50,000-row run and the features (filter, limit, offset, varchar keys, metrics),
/// cross-checked against pymilvus 3.0.2's iterators (Tests/Peers/pymilvus_iterators.py); the
/// real Milvus 2.3.5 for a smaller run of both iterators while rows are inserted.
///
/// The guarantee asserted (``MilvusIterator``): every row that exists when the iteration
/// starts comes exactly once; rows inserted meanwhile come at most once. Neither server
/// reports a read timestamp to pin (`session_ts`), so here rows inserted during the
/// iteration may appear; a pinning server (Milvus 2.4+) would leave them out.
final class IteratorWorkflowTests: XCTestCase {
  private static let query: [Float] = [0.5, 0.5, 0.5, 0.5]

  /// 50,000 rows in batches of 1,000, through the AsyncSequence and the callbacks at the same
  /// time, while another task inserts rows: the query iterator returns each of the 50,100
  /// rows that existed at the start exactly once in each form, keys ascending, and nothing
  /// else but inserted rows, at most once. The search iterator, in both forms at the same
  /// time, up to 10,000 hits: no hit twice, distances never decreasing, and every existing
  /// row nearer than the last hit among them (milvus-lite's range search sees only the 50,000
  /// nearest rows, see ``MilvusIterator``, hence the limit while rows are added).
  func testIteratorsPageFiftyThousandRowsOnceInBothFormsWhileRowsAreInserted() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await Self.makeCollection(client, "pages", rows: 0..<50_000)
    // Rows that exist when the iteration starts: 50,000, and 100 above all of them.
    try await Self.insert(client, "pages", ids: 1_000_000..<1_000_100)
    let existing = Set((0..<50_000).map(Int64.init)).union((1_000_000..<1_000_100).map(Int64.init))
    let inserter = Inserter(client: client, collection: "pages", from: 1_000_100)

    let started = ContinuousClock.now
    async let queryRows = Self.collect(
      client.queryIterator(
        "pages", outputFields: ["id"], batchSize: 1_000, consistencyLevel: .strong))
    async let queryCallbacks = Self.drainByCallbacks(
      client.queryIterator(
        "pages", outputFields: ["id"], batchSize: 1_000, consistencyLevel: .strong),
      loop: fixture.loop)
    async let searchHits = Self.collect(
      client.searchIterator(
        "pages", vector: Self.query, annsField: "vec", batchSize: 1_000, limit: 10_000))
    async let searchCallbacks = Self.drainByCallbacks(
      client.searchIterator(
        "pages", vector: Self.query, annsField: "vec", batchSize: 1_000, limit: 10_000),
      loop: fixture.loop)
    let queries = try await [("AsyncSequence", queryRows), ("callbacks", queryCallbacks)]
    let searches = try await [("AsyncSequence", searchHits), ("callbacks", searchCallbacks)]
    let elapsed = ContinuousClock.now - started
    let inserted = try await inserter.stop()
    XCTAssertGreaterThan(inserted.count, 0, "no row was inserted during the iteration")

    for (form, batches) in queries {
      XCTAssertTrue(batches.allSatisfy { (1...1_000).contains($0.count) }, form)
      let ids = Self.assertQueryGuarantee(batches, existing, inserted, form)
      print(
        "query iterator, \(form): \(ids.count) rows in \(batches.count) batches, "
          + "\(Set(ids).subtracting(existing).count) of \(inserted.count) concurrent inserts")
    }
    let nearness = Dictionary(uniqueKeysWithValues: existing.map { ($0, Self.distance(Int($0))) })
    for (form, batches) in searches {
      XCTAssertEqual(batches.map(\.count), [Int](repeating: 1_000, count: 10), form)
      let hits = batches.flatMap { $0 }
      // Computed here in float32: a margin for the server's own rounding.
      let within = hits.last!.distance - 1e-4
      let nearer = Set(nearness.filter { $0.value < within }.keys)
      let ids = Self.assertSearchGuarantee(batches, nearer, inserted.union(existing), form)
      print(
        "search iterator, \(form): \(ids.count) hits, \(nearer.count) existing rows nearer "
          + "than the last, \(Set(ids).subtracting(existing).count) concurrent inserts")
    }
    print("all four runs on milvus-lite: \(elapsed)")
    let pinned = try await client.queryIterator("pages").pinnedSnapshotAfterFirstBatch()
    XCTAssertNil(pinned, "milvus-lite reports no session_ts")
    await fixture.stop()
  }

  /// A filter with limit and offset, and varchar keys (quotes, backslashes, non-ASCII, ties):
  /// the batches pymilvus's query iterator returns, keys in UTF-8 byte order.
  func testQueryIteratorFilterLimitOffsetAndVarcharKeysMatchPymilvus() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await Self.makeCollection(client, "small", rows: 0..<3_000)

    let iterator = client.queryIterator(
      "small", filter: "group == 3", outputFields: ["group"], batchSize: 64, limit: 250,
      offset: 100)
    var batches: [[Int64]] = []
    for try await rows in iterator {
      XCTAssertTrue(rows.allSatisfy { $0["group"] == 3 })
      batches.append(rows.map { $0["id"]!.intValue! })
    }
    let expected = (0..<3_000).filter { $0 % 7 == 3 }.dropFirst(100).prefix(250).map(Int64.init)
    XCTAssertEqual(batches.map(\.count), [64, 64, 64, 58])
    XCTAssertEqual(batches.flatMap { $0 }, expected)
    let theirs = try Self.runPymilvus([
      "uri": "http://127.0.0.1:\(fixture.server.port)", "collection": "small",
      "query": ["filter": "group == 3", "batch_size": 64, "limit": 250, "offset": 100],
    ])
    XCTAssertEqual(theirs["query"].map(Self.intBatches), batches, "pymilvus's batches")

    // Cancelling the task ends the sequence after the batch it is in.
    let partial = Task {
      var count = 0
      for try await _ in client.queryIterator("small", batchSize: 10) {
        count += 1
        if count == 3 { withUnsafeCurrentTask { $0?.cancel() } }
      }
      return count
    }
    let batchesBeforeCancel = try await partial.value
    XCTAssertEqual(batchesBeforeCancel, 3)
    // Closing answers a waiting callback with the end, once (twice would trap here).
    let closing = client.queryIterator("small", batchSize: 10)
    let answer = await withCheckedContinuation { continuation in
      closing.next { continuation.resume(returning: "\($0)") }
      closing.close()
    }
    XCTAssertEqual(answer, "success(nil)")

    let names =
      [
        "say \"hi\"", "back\\slash", "ünïcödé", "e\u{301}", "\u{e9}", "日本", "Z", "a b",
      ] + (0..<392).map { "n\($0)" }
    let schema = CollectionSchema(fields: [
      .primaryKey("name", .varChar(maxLength: 64)), .vector("vec", dimension: 4),
    ])
    try await client.perform(.createCollection("names", schema: schema, consistencyLevel: .strong))
    _ = try await client.perform(
      .insert(
        into: "names",
        .columns([
          "name": .string(names),
          // 300 rows at one distance: the search iterator must page through the tie.
          "vec": .floatVectors(
            names.indices.map { $0 < 300 ? [0.1, 0.1, 0.1, 0.1] : Self.vector($0) }),
        ])))
    try await client.perform(
      .createIndex(on: "names", IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))
    try await client.loadCollection("names")
    let keys = try await Self.collect(client.queryIterator("names", batchSize: 37))
      .flatMap { $0.map { $0["name"]!.stringValue! } }
    XCTAssertEqual(keys, names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    let hits = try await Self.collect(
      client.searchIterator("names", vector: Self.query, batchSize: 50)
    )
    .flatMap { $0 }
    XCTAssertEqual(hits.count, names.count)
    XCTAssertEqual(Set(hits.map(\.id)), Set(names.map { PrimaryKey.string($0) }))
    await fixture.stop()
  }

  /// The search iterator on milvus-lite: L2 with a filter up to a limit (distances never
  /// decrease, each hit once, the same as one search of 2,500 and as pymilvus's iterator),
  /// COSINE over every row (scores never increase), an offset, and argument errors.
  func testSearchIteratorOrderLimitAndOffsetMatchOneSearchAndPymilvus() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await Self.makeCollection(client, "small", rows: 0..<3_000)

    let nearest = client.searchIterator(
      "small", vector: Self.query, annsField: "vec", batchSize: 100, limit: 2_500,
      filter: "group != 5")
    let ours = try await Self.collect(nearest).flatMap { $0 }
    XCTAssertEqual(ours.count, 2_500)
    XCTAssertEqual(Set(ours.map(\.id)).count, 2_500, "a hit came twice")
    XCTAssertEqual(ours.map(\.distance), ours.map(\.distance).sorted())
    let one = try await client.perform(
      .search(
        "small", vectors: [Self.query], annsField: "vec", limit: 2_500, filter: "group != 5"))
    Self.assertSameHits(ours, one[0], "one search of 2,500")

    let theirs = try Self.runPymilvus([
      "uri": "http://127.0.0.1:\(fixture.server.port)", "collection": "small",
      "search": [
        "vector": Self.query.map(Double.init), "anns_field": "vec", "metric_type": "L2",
        "batch_size": 100, "limit": 2_500, "filter": "group != 5",
      ],
    ])
    let pymilvus = (theirs["search"]?.arrayValue ?? []).flatMap { $0.arrayValue ?? [] }.map {
      SearchHit(
        id: .int($0.arrayValue![0].intValue!),
        distance: Float($0.arrayValue![1].doubleValue!), fields: [:])
    }
    Self.assertSameHits(ours, pymilvus, "pymilvus's search iterator")

    let cosine = try await Self.collect(
      client.searchIterator("small", vector: Self.query, annsField: "cos", batchSize: 250)
    ).flatMap { $0 }
    XCTAssertEqual(Set(cosine.map(\.id)).count, 3_000)
    XCTAssertEqual(cosine.count, 3_000)
    XCTAssertEqual(cosine.map(\.distance), cosine.map(\.distance).sorted(by: >))

    let all = try await client.perform(
      .search("small", vectors: [Self.query], annsField: "vec", limit: 3_000))
    let window = try await Self.collect(
      client.searchIterator(
        "small", vector: Self.query, annsField: "vec", batchSize: 128, limit: 300, offset: 500,
        outputFields: ["group"]))
    XCTAssertEqual(window.map(\.count), [128, 128, 44])
    Self.assertSameHits(window.flatMap { $0 }, Array(all[0][500..<800]), "hits 500..<800")
    XCTAssertTrue(window.joined().allSatisfy { $0.fields["group"]?.intValue != nil })

    try await assertErrors(client)
    await fixture.stop()
  }

  private func assertErrors(_ client: MilvusClient) async throws {
    let wrong: [(MilvusIterator<[Row]>, String)] = [
      (client.queryIterator("small", batchSize: 0), "batchSize"),
      (client.queryIterator("small", batchSize: 16_385), "batchSize"),
      (client.queryIterator("small", limit: 0), "limit"),
      (client.queryIterator("small", offset: -1), "offset"),
      (client.queryIterator("", batchSize: 10), "collection"),
      (client.queryIterator("small", outputFields: ["nope"]), "outputFields[0]"),
    ]
    for (iterator, field) in wrong {
      await assertMilvexError({ try await iterator.next() }) { $0.invalidField == field }
    }
    let wrongSearches: [(MilvusIterator<[SearchHit]>, String)] = [
      (client.searchIterator("small", vector: Self.query), "annsField"),  // two vector fields
      (client.searchIterator("small", vector: [], annsField: "vec"), "vector"),
      (client.searchIterator("small", vector: [1, 2], annsField: "vec"), "vector"),
      (client.searchIterator("small", query: [1, 2, 3], annsField: "vec"), "query"),
      (
        client.searchIterator("small", vector: Self.query, annsField: "vec", metricType: "MAX_SIM"),
        "metricType"
      ),
      (
        client.searchIterator(
          "small", vector: Self.query, annsField: "vec", radius: 0.1, rangeFilter: 0.5),
        "rangeFilter"  // L2 (the index's metric): rangeFilter ≤ distance < radius
      ),
      (
        client.searchIterator("small", vector: Self.query, annsField: "vec", params: ["radius": 1]),
        "params"
      ),
      (
        client.searchIterator(
          "small", vector: Self.query, annsField: "vec", batchSize: 100, params: ["ef": 64]),
        "params.ef"
      ),
    ]
    for (iterator, field) in wrongSearches {
      await assertMilvexError({ try await iterator.next() }) { $0.invalidField == field }
    }
    // A Milvus error fails that next; the iterator stays usable (here it fails again).
    let badFilter = client.queryIterator("small", filter: "id >>> 3")
    await assertMilvexError({ try await badFilter.next() }) { $0.milvusCode != nil }
    await assertMilvexError({ try await badFilter.next() }) { $0.milvusCode != nil }
  }

  /// The real Milvus 2.3.5: 5,000 rows (and 100 above them), both iterators in both forms at
  /// once while another client inserts rows spread among them (also nearer to the query than
  /// existing rows): every existing row once in every run, inserted rows at most once, keys
  /// ascending, distances never decreasing; and an IP collection, scores never increasing.
  func testBothIteratorsOnTheRealServerWhileRowsAreInserted() async throws {
    let server = try MilvusServers.plain
    let loop = try EventLoop(threadName: "iterator-test")
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: server.host, port: server.port, timeout: .seconds(60)),
      on: loop)
    let name = "iterate_\(UUID().uuidString.prefix(8).lowercased())"
    let scores = "\(name)_ip"
    addTeardownBlock {
      // The server is shared: drop what this test made, also when it failed.
      _ = try? await client.perform(.dropCollection(name))
      _ = try? await client.perform(.dropCollection(scores))
      await client.close()
      loop.shutdown()
    }
    try await Self.makeCollection(client, name, rows: 0..<5_000, oneVector: true)
    try await Self.insert(client, name, ids: 1_000_000..<1_000_100, oneVector: true)
    let existing = Set((0..<5_000).map(Int64.init)).union((1_000_000..<1_000_100).map(Int64.init))
    let inserter = Inserter(client: client, collection: name, from: 1_000_100, oneVector: true)

    let started = ContinuousClock.now
    async let queryRows = Self.collect(
      client.queryIterator(name, batchSize: 1_000, consistencyLevel: .strong))
    async let queryCallbacks = Self.drainByCallbacks(
      client.queryIterator(name, batchSize: 1_000, consistencyLevel: .strong), loop: loop)
    async let searchHits = Self.collect(
      client.searchIterator(name, vector: Self.query, batchSize: 500, consistencyLevel: .strong))
    async let searchCallbacks = Self.drainByCallbacks(
      client.searchIterator(name, vector: Self.query, batchSize: 500, consistencyLevel: .strong),
      loop: loop)
    let queries = try await [queryRows, queryCallbacks]
    let searches = try await [searchHits, searchCallbacks]
    let elapsed = ContinuousClock.now - started
    let inserted = try await inserter.stop()
    XCTAssertGreaterThan(inserted.count, 0)

    for (form, batches) in zip(["AsyncSequence", "callbacks"], queries) {
      _ = Self.assertQueryGuarantee(batches, existing, inserted, form)
    }
    for (form, batches) in zip(["AsyncSequence", "callbacks"], searches) {
      let ids = Self.assertSearchGuarantee(batches, existing, inserted.union(existing), form)
      print(
        "search iterator on Milvus 2.3.5, \(form): \(ids.count) hits, "
          + "\(Set(ids).subtracting(existing).count) of \(inserted.count) concurrent inserts, "
          + "\(elapsed) for all four runs")
    }
    let pinned = try await client.searchIterator(name, vector: Self.query)
      .pinnedSnapshotAfterFirstBatch()
    XCTAssertNil(pinned, "Milvus 2.3.5 reports no session_ts")

    let schema = CollectionSchema(fields: [.primaryKey("id"), .vector("vec", dimension: 4)])
    try await client.perform(.createCollection(scores, schema: schema, consistencyLevel: .strong))
    _ = try await client.perform(
      .insert(
        into: scores,
        .columns([
          "id": .int((0..<1_000).map(Int64.init)),
          "vec": .floatVectors((0..<1_000).map { Self.vector($0) }),
        ])))
    try await client.perform(
      .createIndex(on: scores, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .ip)))
    try await client.loadCollection(scores)
    let byScore = try await Self.collect(
      client.searchIterator(scores, vector: Self.query, batchSize: 150, consistencyLevel: .strong)
    ).flatMap { $0 }
    XCTAssertEqual(Set(byScore.map(\.id)).count, 1_000)
    XCTAssertEqual(byScore.count, 1_000)
    XCTAssertEqual(byScore.map(\.distance), byScore.map(\.distance).sorted(by: >))
  }

  /// The example for Docs/milvus-api.md, run as written.
  func testGuideExample() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await Self.makeCollection(client, "docs", rows: 0..<2_500)
    let printed = Locked<[String]>([])
    @Sendable func print(_ value: Any) { printed.withLock { $0.append("\(value)") } }

    // --- the example ---
    var seen = 0
    for try await rows in client.queryIterator(
      "docs", filter: "group == 3", outputFields: ["group"], batchSize: 100)
    {
      seen += rows.count  // at most 100 rows a batch, in ascending key order
    }

    let nearest = client.searchIterator(
      "docs", vector: [0.5, 0.5, 0.5, 0.5], annsField: "vec", batchSize: 200)
    while let hits = try await nearest.next() {
      print(hits.map(\.distance))  // nearest first, also from batch to batch (L2)
      if hits.contains(where: { $0.distance > 0.2 }) { break }
    }
    nearest.close()  // stopped early: ends the iteration (so does cancelling the task)

    let pages = client.queryIterator("docs", batchSize: 500)
    pages.next { result in  // on the loop thread; .success(nil) at the end
      if case .success(let rows?) = result { print(rows.count) }
    }
    // --- end of the example ---

    XCTAssertEqual(seen, (0..<2_500).filter { $0 % 7 == 3 }.count)
    let stopped = try await nearest.next()
    XCTAssertNil(stopped, "closed")
    let deadline = ContinuousClock.now + .seconds(10)
    while printed.withLock({ $0.last }) != "500" && ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(20))
    }
    let lines = printed.withLock { $0 }
    XCTAssertEqual(lines.last, "500")
    XCTAssertGreaterThan(lines.count, 1)
    await fixture.stop()
  }

  // MARK: - Helpers

  private static func vector(_ index: Int, salt: UInt64 = 0) -> [Float] {
    TestData.vector(index, dimension: 4, salt: salt)
  }

  /// Row `index`'s squared L2 distance to ``query``, as Milvus reports L2.
  private static func distance(_ index: Int) -> Float {
    zip(vector(index), query).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
  }

  /// A collection of `id`, `group` (id % 7), `vec` (L2) and `cos` (COSINE; not with
  /// `oneVector`, as Milvus 2.3 allows one vector field), rows inserted in batches of 5,000
  /// in a shuffled order, FLAT indexes, loaded.
  static func makeCollection(
    _ client: MilvusClient, _ name: String, rows: Range<Int>, oneVector: Bool = false
  ) async throws {
    var fields: [FieldSchema] = [
      .primaryKey("id"), .field("group", .int64), .vector("vec", dimension: 4),
    ]
    if !oneVector { fields.append(.vector("cos", dimension: 4)) }
    try await client.perform(
      .createCollection(name, schema: CollectionSchema(fields: fields), consistencyLevel: .strong))
    var ids = Array(rows)
    var generator = SystemRandomNumberGenerator()
    ids.shuffle(using: &generator)
    for start in stride(from: 0, to: ids.count, by: 5_000) {
      let batch = ids[start..<min(start + 5_000, ids.count)]
      var columns: [String: FieldColumn] = [
        "id": .int(batch.map(Int64.init)), "group": .int(batch.map { Int64($0 % 7) }),
        "vec": .floatVectors(batch.map { vector($0) }),
      ]
      if !oneVector { columns["cos"] = .floatVectors(batch.map { vector($0, salt: 9) }) }
      _ = try await client.perform(.insert(into: name, .columns(columns)))
    }
    try await client.perform(
      .createIndex(on: name, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))
    if !oneVector {
      try await client.perform(
        .createIndex(on: name, IndexSpec(fieldName: "cos", indexType: .flat, metricType: .cosine)))
    }
    try await client.loadCollection(name)
  }

  /// Rows of ``makeCollection(_:_:rows:oneVector:)``'s collection.
  static func insert(
    _ client: MilvusClient, _ name: String, ids: Range<Int>, oneVector: Bool = false
  ) async throws {
    var columns: [String: FieldColumn] = [
      "id": .int(ids.map(Int64.init)), "group": .int(ids.map { Int64($0 % 7) }),
      "vec": .floatVectors(ids.map { vector($0) }),
    ]
    if !oneVector { columns["cos"] = .floatVectors(ids.map { vector($0, salt: 9) }) }
    _ = try await client.perform(.insert(into: name, .columns(columns)))
  }

  /// Inserts 100 rows every 50 ms (at most 5,000), keys from `from` up, vectors spread among
  /// the existing ones, until stopped; returns the keys it inserted.
  final class Inserter: Sendable {
    private let task: Task<Set<Int64>, any Error>
    private let stopped = Locked(false)

    init(client: MilvusClient, collection: String, from first: Int, oneVector: Bool = false) {
      let stopped = stopped
      task = Task {
        var inserted: Set<Int64> = []
        var next = first
        while !stopped.withLock({ $0 }) && inserted.count < 5_000 {
          try await IteratorWorkflowTests.insert(
            client, collection, ids: next..<(next + 100), oneVector: oneVector)
          inserted.formUnion((next..<(next + 100)).map(Int64.init))
          next += 100
          try await Task.sleep(for: .milliseconds(50))
        }
        return inserted
      }
    }

    func stop() async throws -> Set<Int64> {
      stopped.withLock { $0 = true }
      return try await task.value
    }
  }

  static func collect<Batch>(_ iterator: MilvusIterator<Batch>) async throws -> [Batch] {
    var batches: [Batch] = []
    for try await batch in iterator { batches.append(batch) }
    return batches
  }

  /// Drains an iterator through `next(completion:)`, each completion on the loop thread and
  /// run once (a second resume of the continuation would trap).
  static func drainByCallbacks<Batch: Sendable>(
    _ iterator: MilvusIterator<Batch>, loop: EventLoop
  ) async throws -> [Batch] {
    let batches = Locked<[Batch]>([])
    return try await withCheckedThrowingContinuation { continuation in
      @Sendable func step() {
        iterator.next { result in
          XCTAssertTrue(loop.inLoopThread, "a completion off the loop thread")
          switch result {
          case .success(let batch?):
            batches.withLock { $0.append(batch) }
            step()
          case .success(nil): continuation.resume(returning: batches.withLock { $0 })
          case .failure(let error): continuation.resume(throwing: error)
          }
        }
      }
      step()
    }
  }

  /// The query iterator's guarantee: keys ascending (so none twice), every `existing` row, and
  /// no row but existing or `inserted` ones. Returns the keys.
  @discardableResult
  static func assertQueryGuarantee(
    _ batches: [[Row]], _ existing: Set<Int64>, _ inserted: Set<Int64>, _ form: String,
    file: StaticString = #filePath, line: UInt = #line
  ) -> [Int64] {
    let ids = batches.flatMap { $0.map { $0["id"]!.intValue! } }
    XCTAssertTrue(
      zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "\(form): keys not ascending",
      file: file, line: line)
    XCTAssertTrue(
      existing.isSubset(of: ids), "\(form): an existing row was skipped", file: file, line: line)
    XCTAssertTrue(
      Set(ids).subtracting(existing).isSubset(of: inserted), "\(form): a row nobody inserted",
      file: file, line: line)
    return ids
  }

  /// The search iterator's guarantee (L2): no hit twice, distances never decreasing, every
  /// row of `required`, and none but `known` ones. Returns the keys.
  static func assertSearchGuarantee(
    _ batches: [[SearchHit]], _ required: Set<Int64>, _ known: Set<Int64>, _ form: String,
    file: StaticString = #filePath, line: UInt = #line
  ) -> [Int64] {
    let hits = batches.flatMap { $0 }
    let ids = hits.map { $0.id.intValue! }
    XCTAssertEqual(Set(ids).count, ids.count, "\(form): a hit came twice", file: file, line: line)
    XCTAssertEqual(
      hits.map(\.distance), hits.map(\.distance).sorted(), "\(form): out of order", file: file,
      line: line)
    XCTAssertTrue(
      required.isSubset(of: ids), "\(form): an existing row was skipped", file: file, line: line)
    XCTAssertTrue(
      Set(ids).isSubset(of: known), "\(form): a row nobody inserted", file: file, line: line)
    return ids
  }

  /// The same hits in the same order, except that hits at one distance may come in any order.
  static func assertSameHits(
    _ ours: [SearchHit], _ theirs: [SearchHit], _ what: String, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertEqual(ours.map(\.distance), theirs.map(\.distance), what, file: file, line: line)
    let ourGroups = Dictionary(grouping: ours, by: \.distance).mapValues { Set($0.map(\.id)) }
    let theirGroups = Dictionary(grouping: theirs, by: \.distance).mapValues { Set($0.map(\.id)) }
    XCTAssertEqual(ourGroups, theirGroups, what, file: file, line: line)
  }

  static func intBatches(_ value: FieldValue) -> [[Int64]] {
    (value.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.intValue) }
  }

  static func runPymilvus(_ request: [String: Any]) throws -> [String: FieldValue] {
    try PeerProcess.runJSONScript("pymilvus_iterators.py", request)
  }

}

extension MilvusIterator {
  /// The pinned read timestamp once the first batch has been read (then closes).
  fileprivate func pinnedSnapshotAfterFirstBatch() async throws -> UInt64? {
    _ = try await next()
    defer { close() }
    return try await pinnedSnapshot()
  }
}

extension PrimaryKey {
  fileprivate var intValue: Int64? {
    if case .int(let value) = self { return value }
    return nil
  }
}
