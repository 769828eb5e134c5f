import Foundation
import Logging
import XCTest

@testable import MilvexReactor

/// Loading and releasing partitions (issue 14, item 6) on the real Milvus 2.3.5 server
/// (``MilvusServers/plain``): milvus-lite refuses `LoadPartitions`, so only a real server can
/// show that a search or query sees the loaded partitions only, and what a query of a
/// released one says. Rows 0..<50 live in `p1`, 50..<100 in `p2`.
final class PartitionLoadingTests: XCTestCase {
  private var loop: EventLoop!
  private var cleanups: [() async -> Void] = []

  override func setUpWithError() throws {
    loop = try EventLoop(threadName: "partition-loading")
  }

  override func tearDown() async throws {
    for cleanup in cleanups.reversed() { await cleanup() }
    cleanups = []
    loop.shutdown()
  }

  private func plainClient() throws -> MilvusClient {
    let server = try MilvusServers.plain
    var logger = Logger(label: "partition-loading-test")
    logger.logLevel = .critical
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: server.host, port: server.port, timeout: .seconds(60)),
      on: loop, logger: logger)
    cleanups.append { await client.close() }
    return client
  }

  /// Polls the load state of `partitions` every 100 ms until it is `state` (60 s at most).
  private func waitFor(
    _ state: LoadState, _ client: MilvusClient, _ collection: String, _ partitions: [String],
    file: StaticString = #filePath, line: UInt = #line
  ) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    var seen = try await client.perform(.loadState(of: collection, partitions: partitions))
    while seen != state, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(100))
      seen = try await client.perform(.loadState(of: collection, partitions: partitions))
    }
    XCTAssertEqual(seen, state, "\(partitions)", file: file, line: line)
  }

  /// The sorted ids a query of every row returns (of `partitions` only, if given).
  private func ids(
    _ client: MilvusClient, _ collection: String, partitions: [String] = []
  ) async throws -> [Int64] {
    let rows = try await client.perform(
      .query(
        collection, filter: "id >= 0", limit: 1_000, partitions: partitions,
        consistencyLevel: .strong))
    return rows.compactMap { $0["id"]?.intValue }.sorted()
  }

  /// The Milvus error a call fails with (code 0 and what happened instead if it does not).
  private func milvusError<Output>(
    _ client: MilvusClient, _ call: MilvusCall<Output>
  ) async -> (code: Int32, reason: String) {
    do {
      return (0, "no error: \(try await client.perform(call))")
    } catch .milvus(let code, let reason) {
      return (code, reason)
    } catch {
      return (0, "not a Milvus error: \(error)")
    }
  }

  func testLoadingAndReleasingPartitionsOnTheRealServer() async throws {
    let client = try plainClient()
    let name = "parts_\(UUID().uuidString.prefix(8).lowercased())"
    let schema = CollectionSchema(fields: [
      .primaryKey("id", .int64), .vector("vec", dimension: TestData.dimension),
    ])
    cleanups.append { _ = try? await client.perform(.dropCollection(name)) }
    try await client.perform(.createCollection(name, schema: schema, consistencyLevel: .strong))
    try await client.perform(.createPartition("p1", in: name))
    try await client.perform(.createPartition("p2", in: name))
    let partitions = try await client.perform(.listPartitions(in: name))
    XCTAssertEqual(Set(partitions), ["_default", "p1", "p2"])
    for (partition, range) in [("p1", 0..<50), ("p2", 50..<100)] {
      let rows: [Row] = range.map {
        ["id": .int(Int64($0)), "vec": .floatVector(TestData.vector($0))]
      }
      _ = try await client.perform(.insert(into: name, rows: rows, partition: partition))
    }
    try await client.perform(.flush([name]))
    try await client.perform(
      .createIndex(on: name, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))

    // Only p1 loaded: queries and searches see p1's rows only; p2 is refused.
    try await client.perform(.loadPartitions(["p1"], in: name))
    try await waitFor(.loaded, client, name, ["p1"])
    try await waitFor(.notLoaded, client, name, ["p2"])
    let loadedIDs = try await ids(client, name)
    XCTAssertEqual(loadedIDs, Array(0..<50))
    let ofP1 = try await ids(client, name, partitions: ["p1"])
    XCTAssertEqual(ofP1, Array(0..<50))
    let hits = try await client.perform(
      .search(name, vectors: [TestData.vector(75)], limit: 10, consistencyLevel: .strong))
    XCTAssertEqual(hits.first?.count, 10)
    XCTAssertTrue(hits[0].allSatisfy { ($0.id.fieldValue.intValue ?? 99) < 50 }, "\(hits)")
    let notLoaded = await milvusError(
      client,
      .query(name, filter: "id >= 0", limit: 10, partitions: ["p2"], consistencyLevel: .strong))
    XCTAssertEqual(notLoaded.code, 65535)
    XCTAssertTrue(notLoaded.reason.contains("partition not loaded"), notLoaded.reason)
    let searchNotLoaded = await milvusError(
      client,
      .search(
        name, vectors: [TestData.vector(75)], limit: 3, partitions: ["p2"],
        consistencyLevel: .strong))
    XCTAssertTrue(searchNotLoaded.reason.contains("partition not loaded"), searchNotLoaded.reason)

    // p2 loaded too: everything, and the nearest hit of row 75's vector is row 75.
    try await client.perform(.loadPartitions(["p2"], in: name))
    try await waitFor(.loaded, client, name, ["p2"])
    let allIDs = try await ids(client, name)
    XCTAssertEqual(allIDs, Array(0..<100))
    let nearest = try await client.perform(
      .search(name, vectors: [TestData.vector(75)], limit: 1, consistencyLevel: .strong))
    XCTAssertEqual(nearest.first?.first?.id, .int(75))

    // p1 released: p2's rows only, and a query of p1 names the reason.
    try await client.perform(.releasePartitions(["p1"], in: name))
    try await waitFor(.notLoaded, client, name, ["p1"])
    let afterRelease = try await ids(client, name)
    XCTAssertEqual(afterRelease, Array(50..<100))
    let released = await milvusError(
      client,
      .query(name, filter: "id >= 0", limit: 10, partitions: ["p1"], consistencyLevel: .strong))
    XCTAssertEqual(released.code, 65535)
    XCTAssertTrue(released.reason.contains("partition not loaded"), released.reason)

    // Both released: the collection is not loaded.
    try await client.perform(.releasePartitions(["p2"], in: name))
    try await waitFor(.notLoaded, client, name, [])
    let unloaded = await milvusError(
      client, .query(name, filter: "id >= 0", limit: 10, consistencyLevel: .strong))
    XCTAssertEqual(unloaded.code, 101)
    XCTAssertTrue(unloaded.reason.contains("collection not loaded"), unloaded.reason)

    // A partition that does not exist.
    let missing = await milvusError(client, .loadPartitions(["nosuch"], in: name))
    XCTAssertEqual(missing.code, 200)
    XCTAssertEqual(missing.reason, "partition not found[partition=nosuch]")

    try await client.perform(.dropCollection(name))
  }
}
