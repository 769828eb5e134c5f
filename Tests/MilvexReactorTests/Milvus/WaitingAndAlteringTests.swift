import Foundation
import MilvexProtos
import SwiftProtobuf
import XCTest

@_spi(Benchmarks) @testable import MilvexReactor

/// Waiting until the server has finished (flush, index build, load, compaction) with progress,
/// and changing properties (issue 14, items 3 and 4). The real Milvus 2.3.5 server proves the
/// waits mean something: its row count counts only flushed segments, and its index builds and
/// loads take visible time; milvus-lite proves the property changes newer servers support.
final class WaitingAndAlteringTests: XCTestCase {
  private let schema = WaitTestCollection.schema

  private func rows(_ range: Range<Int>) -> Entities { WaitTestCollection.rows(range) }

  /// Locked counters for progress callbacks.
  private final class Seen<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Value] = []
    func add(_ value: Value) { lock.withLock { values.append(value) } }
    var all: [Value] { lock.withLock { values } }
  }

  func testWaitsOnTheRealServer() async throws {
    let loop = try EventLoop(threadName: "waits")
    defer { loop.shutdown() }
    let (client, name) = try await WaitTestCollection.create(prefix: "waits", on: loop)
    do {
      // 2.3.5 counts only flushed rows: after the waiting flush, all of them, at once.
      try await client.flush([name])
      let statistics = try await client.perform(.collectionStatistics(name))
      XCTAssertEqual(statistics.rowCount, 20_500)

      let indexProgress = Seen<IndexDescription>()
      let built = try await client.createIndex(
        on: name,
        IndexSpec(fieldName: "vec", indexType: .ivfFlat, metricType: .l2, params: ["nlist": 64]),
        progress: { indexProgress.add($0) })
      XCTAssertEqual(built.state, .finished)
      XCTAssertEqual(built.indexedRows, built.totalRows)
      XCTAssertEqual(built.totalRows, 20_500)
      XCTAssertEqual(indexProgress.all.last, built)

      let loadProgress = Seen<Int>()
      try await client.loadPartitions(["p1"], in: name, progress: { loadProgress.add($0) })
      let partitionState = try await client.perform(.loadState(of: name, partitions: ["p1"]))
      XCTAssertEqual(partitionState, .loaded)
      XCTAssertEqual(loadProgress.all.last, 100)
      XCTAssertEqual(loadProgress.all, loadProgress.all.sorted(), "progress never goes back")
      try await client.perform(.releasePartitions(["p1"], in: name))
      let collectionProgress = Seen<Int>()
      try await client.loadCollection(name, progress: { collectionProgress.add($0) })
      XCTAssertEqual(collectionProgress.all.last, 100)
      let loaded = try await client.perform(.loadingProgress(of: name))
      XCTAssertEqual(loaded, 100)

      _ = try await client.perform(.delete(from: name, filter: "id < 1000"))
      try await client.flush([name])
      let compaction = try await client.compact(name)
      XCTAssertEqual(compaction.state, .completed)
      XCTAssertEqual(compaction.failedPlans, 0)

      // Collection properties on 2.3.5: set, described, removed.
      try await client.perform(.alterCollection(name, set: ["collection.ttl.seconds": "3600"]))
      let altered = try await client.perform(.describeCollection(name))
      XCTAssertEqual(altered.properties["collection.ttl.seconds"], "3600")
    } catch {
      _ = try? await client.perform(.dropCollection(name))
      await client.close()
      throw error
    }
    try await client.perform(.dropCollection(name))
    await client.close()
  }

  func testPropertyChangesOnMilvusLite() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await client.perform(.createCollection("props", schema: schema))
    _ = try await client.perform(.insert(into: "props", rows(0..<100)))
    try await client.flush(["props"])
    try await client.createIndex(
      on: "props", IndexSpec(fieldName: "vec", indexType: .hnsw, metricType: .l2, indexName: "v"))

    try await client.perform(
      .alterCollection("props", set: ["collection.ttl.seconds": "60", "mmap.enabled": "false"]))
    var described = try await client.perform(.describeCollection("props"))
    XCTAssertEqual(described.properties["collection.ttl.seconds"], "60")
    try await client.perform(.alterCollection("props", remove: ["collection.ttl.seconds"]))
    described = try await client.perform(.describeCollection("props"))
    XCTAssertNil(described.properties["collection.ttl.seconds"])

    // milvus-lite and 2.3.5 lack AlterCollectionField and AlterIndex (Milvus 2.5 and 2.4): the
    // server's refusal arrives as UNIMPLEMENTED, and the requests are the bytes pymilvus sends.
    await assertMilvexError({
      try await client.perform(.alterField("title", of: "props", set: ["max_length": "128"]))
    }) { if case .grpcStatus(let status) = $0 { status.code == .unimplemented } else { false } }
    try Self.assertSameRequest(
      MilvusCall<Void>.alterField("title", of: "props", set: ["max_length": "128"]),
      as: Milvus_Proto_Milvus_AlterCollectionFieldRequest.self,
      pymilvus: "alter_collection_field_request", ["props", "title", ["max_length": "128"]])
    try Self.assertSameRequest(
      MilvusCall<Void>.alterIndex("v", on: "props", set: ["mmap.enabled": "true"]),
      as: Milvus_Proto_Milvus_AlterIndexRequest.self,
      pymilvus: "alter_index_properties_request", ["props", "v", ["mmap.enabled": "true"]])
    try Self.assertSameRequest(
      MilvusCall<Void>.alterDatabase("props_db", set: ["database.max.collections": "7"]),
      as: Milvus_Proto_Milvus_AlterDatabaseRequest.self,
      pymilvus: "alter_database_properties_req", ["props_db", ["database.max.collections": "7"]])

    try await client.perform(.createDatabase("props_db"))
    try await client.perform(.alterDatabase("props_db", set: ["database.max.collections": "7"]))
    let database = try await client.perform(.describeDatabase("props_db"))
    XCTAssertEqual(database.properties["database.max.collections"], "7")
    try await client.perform(.dropDatabase("props_db"))

    try await client.loadCollection("props")
    let compaction = try await client.compact("props")
    XCTAssertEqual(compaction.state, .completed)
    try await client.perform(.dropCollection("props"))
    await fixture.stop()
  }

  /// This library's request for `call` equals the one pymilvus builds with `function(args)`.
  private static func assertSameRequest<Request: SwiftProtobuf.Message & Equatable>(
    _ call: MilvusCall<Void>, as type: Request.Type, pymilvus function: String, _ args: [Any],
    line: UInt = #line
  ) throws {
    let json = String(decoding: try JSONSerialization.data(withJSONObject: args), as: UTF8.self)
    let data = try PeerProcess.runScript("pymilvus_prepare.py", [function, json])
    let hex = Array((try JSONText.parse(data).objectValue?["hex"]?.stringValue ?? "").utf8)
    let bytes = stride(from: 0, to: hex.count - 1, by: 2).compactMap {
      UInt8(String(decoding: hex[$0...($0 + 1)], as: UTF8.self), radix: 16)
    }
    let theirs = try Request(serializedBytes: bytes)
    let ours = try Request(serializedBytes: call.encodedRequest(schema: nil))
    XCTAssertEqual(ours, theirs, line: line)
  }

  func testBadChangesAreNamedBeforeSending() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    await assertMilvexError({ try await client.perform(.alterCollection("c")) }) {
      $0.invalidField == "properties" && "\($0)".contains("nothing to set or remove")
    }
    await assertMilvexError({
      try await client.perform(.alterCollection("c", set: ["a": "1"], remove: ["a"]))
    }) { $0.invalidField == "remove" && "\($0)".contains("'a' is both set and removed") }
    await assertMilvexError({
      try await client.perform(.alterIndex("", on: "c", set: ["mmap.enabled": "true"]))
    }) { $0.invalidField == "indexName" }
    await fixture.stop()
  }

  /// A wait that cannot finish ends at its deadline, naming what it waited for; a cancelled
  /// one ends at once; both poll on loop timers without holding a thread.
  func testWaitsEndAtTheDeadlineOrOnCancellation() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    let start = ContinuousClock.now
    let polls = Seen<Duration>()
    await assertMilvexError({
      try await client.awaitCompletion { cancellation, completion in
        client.submitWait(
          "test", cancellation: cancellation,
          plan: {
            ServerWaitPlan(
              machine: ServerWaitMachine<Int>(
                what: "the thing", timeout: .milliseconds(400), describe: { "\($0) of 4" })
            ) { wait, remaining in
              polls.add(remaining)
              wait.answer(.pending(3))
            }
          }, progress: nil, completion: completion)
      }
    }) { error in
      guard case .grpcStatus(let status) = error else { return false }
      return status.code == .deadlineExceeded
        && status.message == "the thing did not finish in time (3 of 4)"
    }
    let elapsed = ContinuousClock.now - start
    XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(400))
    XCTAssertLessThan(elapsed, .seconds(3))
    XCTAssertGreaterThan(polls.all.count, 2)
    XCTAssertEqual(polls.all, polls.all.sorted(by: >), "each try gets what is left")

    // (An untyped Task closure: a typed-throws one crashes this compiler's SIL pass.)
    let task = Task { () async throws -> Void in
      try await pollForever(client)
    }
    try await Task.sleep(for: .milliseconds(200))
    let cancelledAt = ContinuousClock.now
    task.cancel()
    let result = await task.result
    XCTAssertLessThan(ContinuousClock.now - cancelledAt, .seconds(2))
    guard case .failure(let error) = result, case .grpcStatus(let status)? = error as? MilvexError
    else { return XCTFail("\(result)") }
    XCTAssertEqual(status.code, .cancelled)
    XCTAssertTrue(status.message.contains("forever"))
    await fixture.stop()
  }
}

/// A wait that never finishes by itself.
private func pollForever(_ client: MilvusClient) async throws {
  _ = try await client.awaitCompletion { cancellation, completion in
    client.submitWait(
      "test", cancellation: cancellation,
      plan: {
        ServerWaitPlan(machine: ServerWaitMachine<Int>(what: "forever", timeout: .seconds(60))) {
          wait, _ in wait.answer(.pending(nil))
        }
      }, progress: nil, completion: completion)
  }
}
