import Foundation
import MilvexProtos
import XCTest

@testable import MilvexReactor

/// The iterators' paging logic without a server (issue 14, item 1): the cursors driven by a
/// virtual Milvus that answers pages and range searches the way Milvus does (and, for the
/// search cursor, the way milvus-lite rounds), with rows inserted between pages; and the
/// iterator machinery (``MilvusIterator``) over a scripted source on a real loop.
final class IteratorTests: XCTestCase {
  // MARK: - Query cursor

  func testQueryExpressionsPutTheKeyCursorFirst() throws {
    var cursor = QueryIteratorCursor(
      keyName: "id", keyKind: .int64, filter: "year > 2000", batchSize: 2, limit: nil, offset: 0)
    XCTAssertEqual(cursor.next(), .fetch(page("year > 2000", limit: 2)))
    XCTAssertEqual(try cursor.received(keys: [3, 41], readTimestamp: 0), .deliver(count: 2))
    XCTAssertEqual(cursor.next(), .fetch(page("id > 41 and (year > 2000)", limit: 2)))

    var names = QueryIteratorCursor(
      keyName: "name", keyKind: .varChar, filter: "", batchSize: 5, limit: nil, offset: 0)
    XCTAssertEqual(names.next(), .fetch(page("", limit: 5)))
    _ = try names.received(keys: ["a", "say \"hi\"\\"], readTimestamp: 0)
    XCTAssertEqual(names.next(), .fetch(page(#"name > "say \"hi\"\\""#, limit: 5)))
  }

  /// 50,000 keys in batches of 1,000, answered as Milvus does with `iterator` and
  /// `reduce_stop_for_best` (the smallest keys above the cursor, sometimes fewer than asked),
  /// while 20 keys are inserted between pages (some below the cursor, some above, one at it):
  /// every first key exactly once, ascending, no key twice, each inserted key above the cursor
  /// when it was inserted delivered, and those below it not.
  func testQueryPagesEveryRowExactlyOnceWhileRowsAreInserted() throws {
    var random = SplitMix(seed: 14)
    var table = VirtualTable(keys: (0..<50_000).map { Int64($0) * 3 })
    let initial = Set(table.keys)
    var cursor = QueryIteratorCursor(
      keyName: "id", keyKind: .int64, filter: "", batchSize: 1_000, limit: nil, offset: 0)
    var delivered: [Int64] = []
    var insertedAbove: Set<Int64> = []
    var insertedBelow: Set<Int64> = []
    var pages = 0
    while case .fetch(let page) = cursor.next() {
      pages += 1
      XCTAssertFalse(page.isSeek)
      XCTAssertLessThan(pages, 200, "no progress")
      let keys = table.answer(page, shortBy: Int(random.next() % 300))
      guard case .deliver(let count) = try cursor.received(keys: keys, readTimestamp: 0) else {
        XCTAssertTrue(keys.isEmpty)
        break
      }
      delivered += keys.prefix(count).map { $0.int! }
      let last = delivered.last!
      for _ in 0..<20 {
        let key = Int64(random.next() % 160_000)
        guard table.insert(key) else { continue }
        if key > last { insertedAbove.insert(key) } else { insertedBelow.insert(key) }
      }
    }
    XCTAssertEqual(delivered, delivered.sorted())
    XCTAssertEqual(Set(delivered).count, delivered.count, "a key came twice")
    XCTAssertTrue(initial.isSubset(of: Set(delivered)), "a first key was skipped")
    XCTAssertTrue(insertedAbove.isSubset(of: Set(delivered)))
    XCTAssertTrue(insertedBelow.isDisjoint(with: Set(delivered)))
    XCTAssertGreaterThan(insertedAbove.count, 100)
  }

  /// Limit and offset: the offset is skipped by seek pages of keys only (at most 16,384 a
  /// page), then batches of at most `batchSize`, the last one cut at the limit.
  func testQueryOffsetSeeksThenLimitCutsTheLastBatch() throws {
    let table = VirtualTable(keys: (0..<60_000).map { Int64($0) })
    var cursor = QueryIteratorCursor(
      keyName: "id", keyKind: .int64, filter: "", batchSize: 1_000, limit: 2_500,
      offset: 40_000)
    var seeks: [Int] = []
    var batches: [[Int64]] = []
    while case .fetch(let page) = cursor.next() {
      let keys = table.answer(page, shortBy: 0)
      switch try cursor.received(keys: keys, readTimestamp: 0) {
      case .skipped:
        XCTAssertTrue(page.isSeek)
        seeks.append(page.limit)
      case .deliver(let count):
        XCTAssertFalse(page.isSeek)
        batches.append(keys.prefix(count).map { $0.int! })
      case .finished: XCTFail("finished early")
      }
    }
    XCTAssertEqual(seeks, [16_384, 16_384, 7_232])
    XCTAssertEqual(batches.map(\.count), [1_000, 1_000, 500])
    XCTAssertEqual(batches.joined().map { $0 }, Array(40_000..<42_500))
    XCTAssertEqual(cursor.next(), .finished, "the limit ends it without another page")
  }

  func testQueryOffsetBeyondTheLastRowEnds() throws {
    let table = VirtualTable(keys: [1, 2, 3])
    var cursor = QueryIteratorCursor(
      keyName: "id", keyKind: .int64, filter: "", batchSize: 10, limit: nil, offset: 5)
    guard case .fetch(let seek) = cursor.next() else { return XCTFail() }
    XCTAssertEqual(
      try cursor.received(keys: table.answer(seek, shortBy: 0), readTimestamp: 0), .skipped)
    guard case .fetch(let second) = cursor.next() else { return XCTFail() }
    XCTAssertEqual(second, page("id > 3", limit: 2, isSeek: true))
    XCTAssertEqual(try cursor.received(keys: [], readTimestamp: 0), .finished)
    XCTAssertEqual(cursor.next(), .finished)
  }

  /// The first answer's read timestamp pins every later page; a later one changes nothing;
  /// a server that reports none leaves the pages at the caller's consistency.
  func testQuerySnapshotIsTheFirstAnswersReadTimestamp() throws {
    var cursor = QueryIteratorCursor(
      keyName: "id", keyKind: .int64, filter: "", batchSize: 1, limit: nil, offset: 0)
    XCTAssertEqual(cursor.next(), .fetch(page("", limit: 1)))
    _ = try cursor.received(keys: [1], readTimestamp: 77)
    XCTAssertEqual(cursor.next(), .fetch(page("id > 1", limit: 1, snapshot: 77)))
    _ = try cursor.received(keys: [2], readTimestamp: 99)
    XCTAssertEqual(cursor.next(), .fetch(page("id > 2", limit: 1, snapshot: 77)))

    var unpinned = QueryIteratorCursor(
      keyName: "id", keyKind: .int64, filter: "", batchSize: 1, limit: nil, offset: 0)
    _ = try unpinned.received(keys: [1], readTimestamp: 0)
    _ = try unpinned.received(keys: [2], readTimestamp: 5)
    XCTAssertNil(unpinned.snapshot)
  }

  /// Keys that do not ascend above the cursor would make the cursor skip or repeat rows: they
  /// are a protocol violation, and the cursor stays where it was.
  func testQueryKeysOutOfOrderAreRefusedAndLeaveTheCursor() throws {
    var cursor = QueryIteratorCursor(
      keyName: "id", keyKind: .int64, filter: "", batchSize: 10, limit: nil, offset: 0)
    _ = try cursor.received(keys: [5, 9], readTimestamp: 0)
    for bad: [PrimaryKey] in [[10, 10], [9], [12, 11], ["a"]] {
      XCTAssertThrowsError(try cursor.received(keys: bad, readTimestamp: 0), "\(bad)") {
        guard case .protocolViolation(let words) = $0 as? MilvexError else {
          return XCTFail("\($0)")
        }
        XCTAssertTrue(words.contains("primary key"), words)
      }
      XCTAssertEqual(cursor.lastKey, 9)
      XCTAssertEqual(cursor.delivered, 2)
    }
  }

  /// Milvus orders varchar keys by their UTF-8 bytes, not by Swift's canonical equivalence.
  func testVarcharKeysAscendByUTF8Bytes() {
    XCTAssertTrue(QueryIteratorCursor.ascending("Z", "a"))
    XCTAssertTrue(QueryIteratorCursor.ascending("e\u{301}", "\u{e9}"), "decomposed first")
    XCTAssertFalse(QueryIteratorCursor.ascending("\u{e9}", "e\u{301}"))
    XCTAssertTrue(QueryIteratorCursor.ascending("z", "\u{e9}"))
  }

  // MARK: - Search cursor

  /// 20,000 hits with distances on a coarse grid (runs of up to ~40 equal distances), in
  /// batches of 1, 7 and 1,000, ascending and descending: each hit exactly once, in order,
  /// the iteration over right after the last.
  func testSearchReturnsEveryHitExactlyOnceInOrderAcrossTies() throws {
    for order in [SearchIteratorCursor.Order.ascending, .descending] {
      for batchSize in [1, 7, 1_000] {
        var random = SplitMix(seed: UInt64(batchSize))
        let count = batchSize == 1 ? 2_000 : 20_000
        let index = VirtualIndex(
          order: order,
          rows: (0..<count).map {
            (.int(Int64($0)), Double(random.next() % 500) / 64 * (order == .ascending ? 1 : -1))
          })
        let run = try iterate(index, batchSize: batchSize)
        XCTAssertEqual(run.ids.count, count, "\(order) \(batchSize)")
        XCTAssertEqual(Set(run.ids).count, count, "\(order) \(batchSize): a hit came twice")
        XCTAssertEqual(run.distances, run.distances.sorted(by: order == .ascending ? (<=) : (>=)))
        XCTAssertTrue(run.batches.dropLast().allSatisfy { $0 == batchSize })
      }
    }
  }

  /// 3,000 hits at one distance, batches of 100: the searches exclude the keys returned at
  /// that distance (`id not in [...]`), so every one comes once.
  func testSearchPagesThroughManyHitsAtOneDistance() throws {
    let index = VirtualIndex(
      order: .ascending,
      rows: (0..<3_000).map { (.int(Int64($0)), 1.0) } + [(.int(9_999), 2.0)])
    let run = try iterate(index, batchSize: 100)
    XCTAssertEqual(Set(run.ids).count, 3_001)
    XCTAssertEqual(run.ids.count, 3_001)
    XCTAssertEqual(run.ids.last, 9_999)
    XCTAssertTrue(run.filters.contains { $0.hasPrefix("id not in [0,1,2,") })
  }

  /// A server that compares its double-precision distance with the range filter but reports
  /// float32 (milvus-lite): rows whose distances round to the tail's float32 would fall just
  /// before an exact `range_filter`; the filter one float32 step back finds them.
  func testSearchFindsRowsARoundingServerPutsBeforeTheTail() throws {
    var rows: [(PrimaryKey, Double)] = []
    for group in 0..<400 {
      // Three distinct doubles that all round to one float32.
      let base = Double(Float(1 + Double(group) / 512))
      let step = Double(base.ulp) * 1_000
      rows += (0..<3).map { (.int(Int64(group * 3 + $0)), base + Double($0 - 1) * step) }
    }
    XCTAssertEqual(Set(rows.map { Float($0.1) }).count, 400)
    let index = VirtualIndex(order: .ascending, rows: rows, comparesInDouble: true)
    for batchSize in [1, 2, 5, 50] {
      let run = try iterate(index, batchSize: batchSize)
      XCTAssertEqual(run.ids.count, 1_200, "batch \(batchSize)")
      XCTAssertEqual(Set(run.ids).count, 1_200, "batch \(batchSize)")
    }
  }

  /// Two clusters far apart: empty bands double the coefficient, and after four empty bands
  /// the search reaches the outer bound, which finds the far cluster; a short answer to an
  /// outer search ends the iteration.
  func testSearchCrossesGapsAndEndsOnlyAfterAnOuterSearch() throws {
    let near = (0..<500).map { (PrimaryKey.int(Int64($0)), Double($0) / 1_000) }
    let far = (0..<500).map { (PrimaryKey.int(Int64(1_000 + $0)), 1e6 + Double($0)) }
    let index = VirtualIndex(order: .ascending, rows: near + far)
    let run = try iterate(index, batchSize: 100)
    XCTAssertEqual(run.ids, (0..<500).map { Int64($0) } + (1_000..<1_500).map { Int64($0) })
    let outer = run.probes.filter(\.isOuter)
    XCTAssertEqual(outer.first?.radius, nil, "the first search is outer (unbounded)")
    XCTAssertEqual(
      outer.dropFirst().map(\.radius), [Double(Float.greatestFiniteMagnitude)],
      "\(run.probes.map { ($0.radius ?? 0, $0.isOuter) })")
    XCTAssertLessThan(run.probes.count, 30)

    let descending = VirtualIndex(
      order: .descending, rows: near.map { ($0.0, -$0.1) } + far.map { ($0.0, -$0.1) })
    let down = try iterate(descending, batchSize: 100)
    XCTAssertEqual(down.ids.count, 1_000)
    XCTAssertEqual(
      down.probes.filter(\.isOuter).last?.radius, -Double(Float.greatestFiniteMagnitude))
  }

  /// The caller's radius and range filter bound the iteration: the first search uses them,
  /// no band reaches beyond the radius, and the outer search is at it.
  func testSearchStaysInTheCallersRange() throws {
    let index = VirtualIndex(
      order: .ascending, rows: (0..<2_000).map { (.int(Int64($0)), Double($0) / 1_000) })
    let run = try iterate(index, batchSize: 64, radius: 1.5, rangeFilter: 0.25)
    XCTAssertEqual(run.ids, (250..<1_500).map { Int64($0) })
    XCTAssertEqual(run.probes.first?.radius, 1.5)
    XCTAssertEqual(run.probes.first?.rangeFilter, 0.25)
    XCTAssertTrue(run.probes.allSatisfy { ($0.radius ?? 0) <= 1.5 })
    XCTAssertEqual(run.probes.last?.radius, 1.5)
  }

  func testSearchLimitAndOffset() throws {
    let index = VirtualIndex(
      order: .descending, rows: (0..<5_000).map { (.int(Int64($0)), -Double($0)) })
    let run = try iterate(index, batchSize: 300, limit: 1_000, offset: 2_100)
    XCTAssertEqual(run.ids, (2_100..<3_100).map { Int64($0) })
    XCTAssertEqual(run.batches, [300, 300, 300, 100])
  }

  /// What later searches ask for: 10 batches, at most 16,384, at most `ef` (pymilvus's).
  func testSearchProbeLimit() {
    func limit(_ batchSize: Int, ef: Int? = nil) -> Int {
      SearchIteratorCursor(
        order: .ascending, keyName: "id", filter: "", batchSize: batchSize, limit: nil,
        offset: 0, ef: ef
      ).probeLimit
    }
    XCTAssertEqual(limit(1), 10)
    XCTAssertEqual(limit(1_000), 10_000)
    XCTAssertEqual(limit(2_000), 16_384)
    XCTAssertEqual(limit(100, ef: 256), 256)
  }

  /// The first answer's read timestamp pins every later search.
  func testSearchSnapshotIsTheFirstAnswersReadTimestamp() throws {
    var cursor = SearchIteratorCursor(
      order: .ascending, keyName: "id", filter: "", batchSize: 2, limit: nil, offset: 0)
    guard case .search(let first) = cursor.next() else { return XCTFail() }
    XCTAssertNil(first.snapshot)
    try cursor.received([hit(1, 0.1), hit(2, 0.2)], readTimestamp: 42)
    XCTAssertEqual(cursor.next(), .deliver([hit(1, 0.1), hit(2, 0.2)]))
    guard case .search(let second) = cursor.next() else { return XCTFail() }
    XCTAssertEqual(second.snapshot, 42)
    XCTAssertEqual(second.filter, "id not in [2]")
    XCTAssertEqual(second.rangeFilter, Double(Float(0.2).nextDown))
  }

  /// Hits against the metric's order mean the metric is not the index's: refused, the cursor
  /// unchanged; an answer of repeats only switches to the exact tail, a second one is refused.
  func testSearchRefusesHitsOutOfOrderAndAnswersWithoutProgress() throws {
    var cursor = SearchIteratorCursor(
      order: .ascending, keyName: "id", filter: "", batchSize: 2, limit: nil, offset: 0)
    _ = cursor.next()
    XCTAssertThrowsError(try cursor.received([hit(1, 0.5), hit(2, 0.1)], readTimestamp: 0))
    XCTAssertNil(cursor.tail)
    try cursor.received([hit(1, 0.1), hit(2, 0.5)], readTimestamp: 0)
    _ = cursor.next()
    guard case .search(let widened) = cursor.next() else { return XCTFail() }
    XCTAssertEqual(widened.rangeFilter, Double(Float(0.5).nextDown))
    let repeats = (0..<widened.limit).map { _ in hit(2, 0.5) }
    try cursor.received(repeats, readTimestamp: 0)
    guard case .search(let exact) = cursor.next() else { return XCTFail() }
    XCTAssertEqual(exact.rangeFilter, 0.5)
    XCTAssertThrowsError(try cursor.received(repeats, readTimestamp: 0)) {
      guard case .protocolViolation = $0 as? MilvexError else { return XCTFail("\($0)") }
    }
  }

  func testMetricsThatCanBeIterated() {
    for name in ["L2", "HAMMING", "JACCARD", "TANIMOTO"] {
      XCTAssertEqual(SearchIteratorCursor.Order(metric: MetricType(rawValue: name)), .ascending)
    }
    for name in ["IP", "COSINE", "BM25", "cosine"] {
      XCTAssertEqual(SearchIteratorCursor.Order(metric: MetricType(rawValue: name)), .descending)
    }
    XCTAssertNil(SearchIteratorCursor.Order(metric: "MAX_SIM"))
    XCTAssertEqual(IteratorCheck.order("MAX_SIM")?.invalidField, "metricType")
  }

  // MARK: - The wire form

  /// A query page carries pymilvus's query parameters, the cursor expression, keys only for a
  /// seek page, and the pinned snapshot as the guarantee timestamp.
  func testQueryPageRequests() throws {
    let context = MilvusCallContext(database: "default", schema: schema, sessionTimestamp: 5)
    let page = QueryIteratorCursor.Page(
      expression: "id > 41 and (year > 2000)", limit: 1_000, isSeek: false, snapshot: nil)
    func request(_ page: QueryIteratorCursor.Page, _ level: ConsistencyLevel?) throws
      -> Milvus_Proto_Milvus_QueryRequest
    {
      let call = MilvusCall<IteratorRows>.iteratorQuery(
        "docs", page, keyName: "id", outputFields: ["year"], partitions: ["p"],
        collectionID: 77, consistencyLevel: level)
      return try Milvus_Proto_Milvus_QueryRequest(serializedBytes: call.encode(context))
    }
    let first = try request(page, .strong)
    XCTAssertEqual(first.expr, "id > 41 and (year > 2000)")
    XCTAssertEqual(first.outputFields, ["year"])
    XCTAssertEqual(first.partitionNames, ["p"])
    XCTAssertEqual(
      first.queryParams.dictionary,
      ["limit": "1000", "iterator": "True", "reduce_stop_for_best": "True", "collection_id": "77"])
    XCTAssertEqual(first.consistencyLevel, .strong)
    XCTAssertEqual(first.guaranteeTimestamp, 0, "strong: the server's clock")
    XCTAssertEqual(try request(page, nil).guaranteeTimestamp, 5, "the default: the session's")

    var pinned = page
    pinned.snapshot = 1234
    pinned.isSeek = true
    let later = try request(pinned, .strong)
    XCTAssertEqual(later.guaranteeTimestamp, 1234)
    XCTAssertEqual(later.outputFields, ["id"], "a seek page asks for keys only")
  }

  /// A search carries the probe's band inside `params` (as pymilvus), its limit as `topk`,
  /// the exclusion in the filter, `iterator` and `collection_id`, and the pinned snapshot.
  func testSearchProbeRequests() throws {
    let context = MilvusCallContext(database: "default", schema: schema)
    let probe = SearchIteratorCursor.Probe(
      limit: 10_000, filter: "(year > 2000) and id not in [4,7]", radius: 0.75,
      rangeFilter: Double(Float(0.5).nextDown), isOuter: false, snapshot: 99)
    let call = MilvusCall<IteratorHits>.iteratorSearch(
      "docs", probe, query: .floatVector([1, 2]), queryName: "vector", annsField: "vec",
      metricType: .l2, params: ["ef": 64], outputFields: [], partitions: [], collectionID: 77,
      consistencyLevel: .bounded)
    let request = try Milvus_Proto_Milvus_SearchRequest(serializedBytes: call.encode(context))
    let params = request.searchParams.dictionary
    XCTAssertEqual(params["topk"], "10000")
    XCTAssertEqual(params["metric_type"], "L2")
    XCTAssertEqual(params["iterator"], "True")
    XCTAssertEqual(params["collection_id"], "77")
    // The float32 below 0.5, written as the double it is exactly (a double-precision server
    // compares with just that value).
    XCTAssertEqual(
      params["params"], #"{"ef":64,"radius":0.75,"range_filter":0.4999999701976776}"#)
    XCTAssertEqual(request.dsl, "(year > 2000) and id not in [4,7]")
    XCTAssertEqual(request.guaranteeTimestamp, 99)

    let wrong = MilvusCall<IteratorHits>.iteratorSearch(
      "docs", probe, query: .floatVector([1, 2, 3]), queryName: "vector", annsField: "vec",
      metricType: .l2, params: [:], outputFields: [], partitions: [], collectionID: 77,
      consistencyLevel: nil)
    XCTAssertThrowsError(try wrong.encode(context)) {
      XCTAssertEqual(($0 as? MilvexError)?.invalidField, "vector", "named as the caller gave it")
    }
  }

  /// Argument errors come from the first `next`, before any network call (the port is
  /// closed), naming the argument; and again from every later `next`.
  func testArgumentErrorsComeFromNextWithoutTheNetwork() async throws {
    let loop = try EventLoop(threadName: "iterator-test")
    defer { loop.shutdown() }
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: freeLocalPort(), timeout: .seconds(5)),
      on: loop)
    let queries: [(MilvusQueryIterator, String)] = [
      (client.queryIterator("docs", batchSize: 0), "batchSize"),
      (client.queryIterator("docs", batchSize: 16_385), "batchSize"),
      (client.queryIterator("docs", limit: 0), "limit"),
      (client.queryIterator("docs", offset: -3), "offset"),
      (client.queryIterator(""), "collection"),
      (client.queryIterator("docs", outputFields: ["id", "count(*)"]), "outputFields[1]"),
    ]
    let searches: [(MilvusSearchIterator, String)] = [
      (client.searchIterator("docs", vector: []), "vector"),
      (client.searchIterator("docs", query: .string("")), "query"),
      (client.searchIterator("docs", vector: [1], annsField: ""), "annsField"),
      (client.searchIterator("docs", vector: [1], metricType: "MAX_SIM"), "metricType"),
      (client.searchIterator("docs", vector: [1], params: ["ef": 10]), "params.ef"),
      (client.searchIterator("docs", vector: [1], params: ["ef": .double(.nan)]), "params.ef"),
      (client.searchIterator("docs", vector: [1], params: ["range_filter": 1]), "params"),
      (client.searchIterator("docs", vector: [1], rangeFilter: 0.5), "rangeFilter"),
      (
        client.searchIterator("docs", vector: [1], metricType: .ip, radius: 0.9, rangeFilter: 0.5),
        "rangeFilter"
      ),
    ]
    let started = ContinuousClock.now
    for (iterator, field) in queries {
      for _ in 0..<2 {
        await assertMilvexError({ try await iterator.next() }) { $0.invalidField == field }
      }
    }
    for (iterator, field) in searches {
      await assertMilvexError({ try await iterator.next() }) { $0.invalidField == field }
    }
    XCTAssertLessThan(ContinuousClock.now - started, .seconds(2), "no connection awaited")
    await client.close()
  }

  // MARK: - The iterator over a scripted source

  /// Every `next` completes exactly once, in the order called, on the loop thread; nil after
  /// the end; an error leaves the source where it was, so the next call retries.
  func testCallbacksCompleteOnceInOrderOnTheLoop() throws {
    let loop = try EventLoop(threadName: "iterator-test")
    defer { loop.shutdown() }
    let source = ScriptedSource(
      loop: loop,
      answers: [
        .success([1]), .failure(.milvus(code: 8, reason: "slow down")), .success([2]),
        .success(nil),
      ])
    let iterator = MilvusIterator<[Int]>(loop: loop, source: source)
    let results = Locked<[String]>([])
    let done = Latch()
    for index in 0..<6 {
      iterator.next { result in
        XCTAssertTrue(loop.inLoopThread)
        results.withLock { $0.append("\(index): \(result)") }
        if index == 5 { done.open() }
      }
    }
    done.waitOrFail("six completions", timeout: .seconds(10))
    XCTAssertEqual(
      results.withLock { $0 },
      [
        "0: success(Optional([1]))",
        "1: failure(Milvus error 8: slow down)",
        "2: success(Optional([2]))",
        "3: success(nil)", "4: success(nil)", "5: success(nil)",
      ])
  }

  /// The AsyncSequence form; cancelling the awaiting task closes the iterator: that `next`
  /// returns nil at once (the fetch in flight is cancelled) and later ones too.
  func testAsyncSequenceAndCancellation() async throws {
    let loop = try EventLoop(threadName: "iterator-test")
    defer { loop.shutdown() }
    let iterator = MilvusIterator<[Int]>(
      loop: loop,
      source: ScriptedSource(
        loop: loop, answers: [.success([1, 2]), .success([3]), .success(nil)]))
    var all: [Int] = []
    for try await batch in iterator { all += batch }
    XCTAssertEqual(all, [1, 2, 3])
    let again = try await iterator.next()
    XCTAssertNil(again, "single pass: the end stays the end")

    let source = ScriptedSource(loop: loop, answers: [])  // never answers
    let stuck = MilvusIterator<[Int]>(loop: loop, source: source)
    let task = Task { try await stuck.next() }
    try await Task.sleep(for: .milliseconds(100))
    task.cancel()
    let cancelled = try await task.value
    XCTAssertNil(cancelled)
    let afterwards = try await stuck.next()
    XCTAssertNil(afterwards)
    let cancels = try await loop.submit { source.cancels }
    XCTAssertEqual(cancels, 1)
  }

  /// `close()` from another thread answers a waiting callback with nil, exactly once.
  func testCloseEndsAWaitingCallback() throws {
    let loop = try EventLoop(threadName: "iterator-test")
    defer { loop.shutdown() }
    let iterator = MilvusIterator<[Int]>(
      loop: loop, source: ScriptedSource(loop: loop, answers: []))
    let calls = Locked<[String]>([])
    let done = Latch()
    iterator.next { result in
      calls.withLock { $0.append("\(result)") }
      done.open()
    }
    // The loop runs submitted work in order: once this barrier has run, the fetch has started.
    func drainLoop() throws {
      let barrier = Latch()
      try loop.execute { barrier.open() }
      barrier.waitOrFail("the loop barrier", timeout: .seconds(10))
    }
    try drainLoop()
    iterator.close()
    iterator.close()
    done.waitOrFail("the close", timeout: .seconds(10))
    // Anything else the close queued has run by now: still exactly one answer.
    try drainLoop()
    try drainLoop()
    XCTAssertEqual(calls.withLock { $0 }, ["success(nil)"])
  }

  /// After the loop shut down, `next` completes at once on the calling thread.
  func testNextAfterTheLoopShutDownFailsAtOnce() throws {
    let loop = try EventLoop(threadName: "iterator-test")
    let iterator = MilvusIterator<[Int]>(
      loop: loop, source: ScriptedSource(loop: loop, answers: []))
    loop.shutdown()
    let result = Locked<String?>(nil)
    iterator.next { outcome in result.withLock { $0 = "\(outcome)" } }
    XCTAssertTrue(
      result.withLock { $0 }?.contains("shut down") ?? false,
      "\(String(describing: result.withLock { $0 }))")
  }

  // MARK: - Helpers

  private let schema = CollectionSchema(fields: [
    .primaryKey("id"), .field("year", .int64), .vector("vec", dimension: 2),
  ])

  private func page(
    _ expression: String, limit: Int, isSeek: Bool = false, snapshot: UInt64? = nil
  ) -> QueryIteratorCursor.Page {
    .init(expression: expression, limit: limit, isSeek: isSeek, snapshot: snapshot)
  }

  private func hit(_ id: Int64, _ distance: Float) -> SearchHit {
    SearchHit(id: .int(id), distance: distance, fields: [:])
  }

  private struct Run {
    var ids: [Int64] = []
    var distances: [Float] = []
    var batches: [Int] = []
    var probes: [SearchIteratorCursor.Probe] = []
    var filters: [String] { probes.map(\.filter) }
  }

  private func iterate(
    _ index: VirtualIndex, batchSize: Int, limit: Int? = nil, offset: Int = 0,
    radius: Double? = nil, rangeFilter: Double? = nil
  ) throws -> Run {
    var cursor = SearchIteratorCursor(
      order: index.order, keyName: "id", filter: "", batchSize: batchSize, limit: limit,
      offset: offset, radius: radius, rangeFilter: rangeFilter)
    var run = Run()
    while true {
      switch cursor.next() {
      case .finished: return run
      case .deliver(let hits):
        run.ids += hits.map { $0.id.int! }
        run.distances += hits.map(\.distance)
        run.batches.append(hits.count)
      case .search(let probe):
        run.probes.append(probe)
        guard run.probes.count < 10_000 else {
          XCTFail("no end")
          return run
        }
        try cursor.received(index.answer(probe), readTimestamp: 0)
      }
    }
  }
}

/// Keys answered as Milvus answers an iterator page: the smallest keys above the cursor in
/// the expression (`id > N…`), at most the page's limit, `shortBy` fewer when asked.
private struct VirtualTable {
  private(set) var keys: [Int64]

  init(keys: [Int64]) { self.keys = keys.sorted() }

  mutating func insert(_ key: Int64) -> Bool {
    let position = keys.firstIndex(notBelow: key)
    guard position == keys.count || keys[position] != key else { return false }
    keys.insert(key, at: position)
    return true
  }

  func answer(_ page: QueryIteratorCursor.Page, shortBy: Int) -> [PrimaryKey] {
    var start = 0
    if page.expression.hasPrefix("id > ") {
      let number = page.expression.dropFirst(5).prefix { $0 == "-" || $0.isNumber }
      let cursor = Int64(number)!
      start = keys.firstIndex(notBelow: cursor, strictly: true)
    }
    let count = max(1, page.limit - shortBy)
    return keys[start...].prefix(count).map { .int($0) }
  }
}

/// Rows with distances, answered as Milvus answers a search: the nearest `limit` for an
/// ordinary search, those in the range (`range_filter` inclusive, `radius` exclusive) for a
/// range search, minus `id not in [...]`. `comparesInDouble`: milvus-lite, which compares the
/// double distance with the bounds but reports it as float32.
private struct VirtualIndex {
  let order: SearchIteratorCursor.Order
  let rows: [(id: PrimaryKey, distance: Double)]
  var comparesInDouble = false

  init(
    order: SearchIteratorCursor.Order, rows: [(PrimaryKey, Double)], comparesInDouble: Bool = false
  ) {
    self.order = order
    self.comparesInDouble = comparesInDouble
    let exact = rows.map { (id: $0.0, distance: comparesInDouble ? $0.1 : Double(Float($0.1))) }
    self.rows = exact.sorted {
      order == .ascending ? $0.distance < $1.distance : $0.distance > $1.distance
    }
  }

  func answer(_ probe: SearchIteratorCursor.Probe) -> [SearchHit] {
    var excluded: Set<Int64> = []
    if let range = probe.filter.range(of: "id not in [") {
      let list = probe.filter[range.upperBound...].prefix { $0 != "]" }
      excluded = Set(list.split(separator: ",").map { Int64($0)! })
    }
    let ascending = order == .ascending
    let matching = rows.lazy.filter { row in
      if case .int(let id) = row.id, excluded.contains(id) { return false }
      if let radius = probe.radius, ascending ? row.distance >= radius : row.distance <= radius {
        return false
      }
      if let bound = probe.rangeFilter, ascending ? row.distance < bound : row.distance > bound {
        return false
      }
      return true
    }
    return matching.prefix(probe.limit).map {
      SearchHit(id: $0.id, distance: Float($0.distance), fields: [:])
    }
  }
}

/// A source answering fetches with a script, one loop turn later; nothing once it runs out.
private final class ScriptedSource: IteratorSource, @unchecked Sendable {
  // @unchecked: touched only on the loop thread (fetch, cancel and the scheduled answers),
  // and by the test through loop.submit.
  let loop: EventLoop
  var answers: [Result<[Int]?, MilvexError>]
  var cancels = 0
  private var pending: ((Result<[Int]?, MilvexError>) -> Void)?

  init(loop: EventLoop, answers: [Result<[Int]?, MilvexError>]) {
    self.loop = loop
    self.answers = answers
  }

  var snapshot: UInt64? { nil }

  func fetch(_ completion: @escaping (Result<[Int]?, MilvexError>) -> Void) {
    guard !answers.isEmpty else {
      pending = completion
      return
    }
    let answer = answers.removeFirst()
    let bound = LoopBound(completion, loop: loop)
    try? loop.execute { bound.value(answer) }
  }

  func cancel() {
    cancels += 1
    pending?(.failure(.status(.cancelled, "cancelled")))
    pending = nil
  }
}

/// A small deterministic random source (SplitMix64).
private struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

extension PrimaryKey {
  fileprivate var int: Int64? {
    if case .int(let value) = self { return value }
    return nil
  }
}

extension Array where Element: Comparable {
  /// The first index whose element is not before `bound`, in a sorted array.
  fileprivate func firstIndex(notBelow bound: Element, strictly: Bool = false) -> Int {
    var low = 0
    var high = count
    while low < high {
      let middle = (low + high) / 2
      if strictly ? self[middle] <= bound : self[middle] < bound {
        low = middle + 1
      } else {
        high = middle
      }
    }
    return low
  }
}
