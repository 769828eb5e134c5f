import MilvexReactor
import MilvexTesting
import XCTest

/// One `PinnedRandomSource` handed to `MilvusClient.connect` pins every jitter of the client
/// and its connection (issue 23, item 4): with the default jitter of 10 % left on, the retry
/// delays and the reconnect backoff fall due at their exact nominal instants.
final class PinnedJitterTests: XCTestCase {
  func testOneSourcePinsTheRetryDelaysAndTheReconnectBackoff() async throws {
    let server = try MilvusTestServer(name: "pinned")
    try server.start()
    defer { server.stop() }
    server.addCollection("docs", dimension: 4)
    let busy = TestServerAnswer.grpcStatus(.unavailable, "busy")
    server.answer("Search", with: [busy, busy])  // then the built-in answer

    let loop = try EventLoop.virtualTime(threadName: "pinned")
    defer { loop.shutdown() }
    var config = try ConnectionConfig(uri: server.uri)
    config.keepaliveTime = .seconds(86_400)  // no PING due while the clock moves
    XCTAssertEqual(config.reconnectJitter, 0.1)
    let policy = RetryPolicy(baseDelay: .milliseconds(100), multiplier: 2, jitter: 0.1)
    let client = try MilvusClient.connect(
      config: config, on: loop, retryPolicy: policy, random: PinnedRandomSource())
    try await client.connection.waitForState(.connected)

    // Two UNAVAILABLE answers: the retries wait exactly 100 ms, then 200 ms.
    let start = loop.now
    let search = Task { try await client.perform(.search("docs", vectors: [[0, 0, 0, 1]])) }
    for (attempt, delay) in [(1, Duration.milliseconds(100)), (2, .milliseconds(200))] {
      _ = try await server.waitForCalls(count: attempt, to: "Search", timeout: .seconds(10))
      let due = loop.now + delay
      try await waitUntil("a retry timer due at now + \(delay)") {
        try await loop.pendingTimerDeadlines().contains(due)
      }
      try await loop.advanceTime(to: due)
    }
    let hits = try await search.value
    XCTAssertEqual(hits.count, 1)
    XCTAssertEqual(loop.now - start, .milliseconds(300))
    XCTAssertEqual(server.calls(to: "Search").count, 3)

    // The server gone: the first reconnect delay is the base, 1 s, then 2 s, exactly.
    let refused = client.connection.expectTransition { $0.from == .reconnecting }
    server.stop()
    _ = try await refused.wait()
    for delay in [Duration.seconds(1), .seconds(2), .seconds(4)] {
      let next = try await loop.pendingTimerDeadlines().first
      XCTAssertEqual(next, loop.now + delay)
      let attempt = client.connection.expectTransition { $0.from == .reconnecting }
      try await loop.advanceTime(to: try XCTUnwrap(next))
      _ = try await attempt.wait()
    }
    await client.close()
  }

  /// Polls `condition` (wall time: it waits for real I/O) until it holds.
  private func waitUntil(
    _ what: String, within timeout: Duration = .seconds(10),
    _ condition: () async throws -> Bool
  ) async throws {
    let end = ContinuousClock.now + timeout
    while try await !condition() {
      guard ContinuousClock.now < end else { return XCTFail("no \(what) within \(timeout)") }
      try await Task.sleep(for: .milliseconds(2))
    }
  }
}
