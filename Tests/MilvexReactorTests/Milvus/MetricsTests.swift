import Foundation
import MetricsTestKit
import XCTest

@testable import MilvexReactor

/// The metrics a client and its connection emit, read back from swift-metrics' TestMetrics.
final class MetricsTests: XCTestCase {
  func testCallOutcomesRetriesAndDurationsPerMethod() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "milvus-flaky"])
    defer { server.stop() }
    let loop = try EventLoop(threadName: "metrics-test")
    defer { loop.shutdown() }
    let metrics = TestMetrics()
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: server.port), on: loop, metrics: metrics)

    _ = try await client.perform(.serverVersion())  // two rate-limited answers, then OK
    await assertMilvexError({ try await client.perform(.describeIndex(on: "c")) }) {
      $0.milvusCode == 1100
    }
    await assertMilvexError({ try await client.perform(.hasCollection("")) }) {
      $0.invalidField == "collection"
    }
    // A round trip: everything above has been recorded.
    _ = try await client.perform(.listDatabases())

    func calls(_ method: String, _ outcome: String) throws -> Int64? {
      try metrics.expectCounter(
        "milvex_milvus_calls_total", [("method", method), ("outcome", outcome)]
      ).lastValue
    }
    XCTAssertEqual(try calls("GetVersion", "ok"), 1)
    XCTAssertEqual(
      try metrics.expectCounter("milvex_milvus_retries_total", [("method", "GetVersion")])
        .totalValue, 2)
    XCTAssertEqual(try calls("DescribeIndex", "milvus"), 1)
    XCTAssertEqual(try calls("HasCollection", "invalid_argument"), 1)
    let durations = try metrics.expectTimer(
      "milvex_milvus_call_duration", [("method", "GetVersion")]
    ).values
    XCTAssertEqual(durations.count, 1)
    XCTAssertGreaterThan(
      durations[0], 250_000_000, "two retry delays (about 100 + 200 ms) included")

    // The connection's own metrics, from the same factory.
    let dimensions = [("host", "127.0.0.1"), ("port", "\(server.port)")]
    XCTAssertEqual(
      try metrics.expectCounter("milvex_connection_attempts_total", dimensions).totalValue, 1)
    XCTAssertEqual(
      try metrics.expectCounter("milvex_connection_connected_total", dimensions).totalValue, 1)
    await client.close()
    XCTAssertEqual(
      try metrics.expectCounter("milvex_connection_disconnects_total", dimensions).totalValue, 1)
  }

  func testFailedConnectAttemptsAndRetryDelays() async throws {
    let loop = try EventLoop(threadName: "metrics-test")
    defer { loop.shutdown() }
    let metrics = TestMetrics()
    let port = freeLocalPort()  // nothing listens
    let connection = try Connection.start(
      config: ConnectionConfig(
        host: "127.0.0.1", port: port, reconnectBaseDelay: .milliseconds(20),
        allowTestingTimings: true),
      on: loop, metrics: metrics)
    // Delays: the first drawn from 0 to 40 ms (twice the base), then 40 and 80 ms ± 10 %:
    // attempts start by 0, 40, 84 and 172 ms at the latest, so waiting 300 ms for a channel
    // that never comes sees at least three of them fail.
    await assertMilvexError({ try await connection.waitForChannel(timeout: .milliseconds(300)) }) {
      if case .notConnected = $0 { return true }
      return false
    }
    await connection.disconnect()
    let dimensions = [("host", "127.0.0.1"), ("port", "\(port)")]
    let attempts = try metrics.expectCounter("milvex_connection_attempts_total", dimensions)
      .totalValue
    let failures = try metrics.expectCounter("milvex_connection_attempt_failures_total", dimensions)
      .totalValue
    XCTAssertGreaterThanOrEqual(attempts, 3)
    XCTAssertGreaterThanOrEqual(failures, attempts - 1)
    let delays = try metrics.expectTimer("milvex_connection_retry_delay", dimensions).values
    XCTAssertGreaterThanOrEqual(delays.count, 2)
    XCTAssertTrue(
      (1_000_000...40_000_000).contains(delays[0]), "the first within 0 to 2 × base: \(delays)")
    XCTAssertTrue(
      delays.dropFirst().allSatisfy { $0 >= 36_000_000 },
      "the later ones at least 2 × base less the jitter: \(delays)")
  }
}
