import Foundation
import XCTest

@testable import MilvexReactor

/// The retry policy as a pure function, and the client following it against the h2
/// `milvus-flaky` server (which counts the calls it receives).
final class RetryPolicyTests: XCTestCase {
  let unavailable = MilvexError.status(.unavailable, "gone")
  let rateLimited = MilvexError.milvus(code: 8, reason: "rate limit exceeded")

  func testDelaysGrowFromBaseToMax() {
    let policy = RetryPolicy()
    XCTAssertEqual(
      (1...7).map(policy.delay(afterAttempt:)),
      [
        .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
        .milliseconds(1_600),
        .seconds(3), .seconds(3),
      ])
    // The middle of the jitter (random 0.5) is the plain delay; the ends are ±10 %.
    XCTAssertEqual(
      policy.decide(
        attempt: 2, error: unavailable, isWrite: false, remaining: .seconds(10), random: 0.5),
      .retry(after: .milliseconds(200)))
    XCTAssertEqual(
      policy.decide(
        attempt: 2, error: unavailable, isWrite: false, remaining: .seconds(10), random: 0),
      .retry(after: .milliseconds(180)))
    XCTAssertEqual(
      policy.decide(
        attempt: 4, error: rateLimited, isWrite: false, remaining: .seconds(10), random: 1),
      .retry(after: .milliseconds(880)))
  }

  func testOnlyRetriableErrorsWithinAttemptsAndDeadline() {
    let policy = RetryPolicy()
    func decide(
      _ error: MilvexError, attempt: Int = 1, write: Bool = false,
      remaining: Duration = .seconds(30)
    ) -> RetryPolicy.Decision {
      policy.decide(
        attempt: attempt, error: error, isWrite: write, remaining: remaining, random: 0.5)
    }
    XCTAssertEqual(decide(unavailable), .retry(after: .milliseconds(100)))
    XCTAssertEqual(decide(rateLimited), .retry(after: .milliseconds(100)))
    XCTAssertEqual(
      decide(.milvus(code: 49, reason: "legacy")), .retry(after: .milliseconds(100)),
      "the legacy RateLimit error code")
    XCTAssertEqual(decide(.notConnected(host: "h", port: 1)), .retry(after: .milliseconds(100)))
    for final in [
      MilvexError.milvus(code: 100, reason: "collection not found"),
      .status(.deadlineExceeded, "late"),
      .status(.internalError, "bug"), .invalidArgument(field: "x", message: "y"),
      .disconnected(reason: "closed"),
      .protocolViolation("garbage"), .status(.unimplemented, "no"),
    ] {
      XCTAssertEqual(decide(final), .fail, "\(final)")
    }
    XCTAssertEqual(decide(unavailable, attempt: 5), .fail, "5 attempts in all")
    XCTAssertEqual(decide(unavailable, attempt: 4), .retry(after: .milliseconds(800)))
    XCTAssertEqual(decide(unavailable, write: true), .fail, "writes only when allowed")
    var writes = policy
    writes.retryWrites = true
    XCTAssertEqual(
      writes.decide(
        attempt: 1, error: unavailable, isWrite: true, remaining: .seconds(1), random: 0.5),
      .retry(after: .milliseconds(100)))
    XCTAssertEqual(
      decide(unavailable, attempt: 3, remaining: .milliseconds(399)), .fail,
      "a delay past the deadline")
    XCTAssertEqual(
      decide(unavailable, attempt: 3, remaining: .milliseconds(401)),
      .retry(after: .milliseconds(400)))
    XCTAssertEqual(
      RetryPolicy.never.decide(
        attempt: 1, error: unavailable, isWrite: false, remaining: .seconds(9), random: 0.5), .fail)
  }

  func testValidationNamesTheSetting() {
    func field(_ policy: RetryPolicy) -> String? {
      do { try policy.validate() } catch { return error.invalidField }
      return nil
    }
    XCTAssertNil(field(RetryPolicy()))
    XCTAssertEqual(field(RetryPolicy(maxAttempts: 0)), "retryPolicy.maxAttempts")
    XCTAssertEqual(field(RetryPolicy(baseDelay: .zero)), "retryPolicy.baseDelay")
    XCTAssertEqual(
      field(RetryPolicy(baseDelay: .seconds(2), maxDelay: .seconds(1))), "retryPolicy.maxDelay")
    XCTAssertEqual(field(RetryPolicy(multiplier: 0.5)), "retryPolicy.multiplier")
    XCTAssertEqual(field(RetryPolicy(jitter: 1.5)), "retryPolicy.jitter")
  }

  // MARK: - Against the milvus-flaky server

  private func flakyClient(_ policy: RetryPolicy = RetryPolicy()) throws -> (
    PeerProcess, EventLoop, MilvusClient
  ) {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "milvus-flaky"])
    let loop = try EventLoop(threadName: "retry-test")
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: server.port), on: loop, retryPolicy: policy)
    return (server, loop, client)
  }

  /// The server's call counts, as it reports them.
  private func counts(_ client: MilvusClient) async throws -> [String: Int] {
    let names = try await client.perform(.listDatabases())
    var counts: [String: Int] = [:]
    for name in names {
      let parts = name.split(separator: "=")
      counts[String(parts[0])] = Int(parts[1])
    }
    return counts
  }

  func testRateLimitAndUnavailableAreRetriedUntilSuccess() async throws {
    let (server, loop, client) = try flakyClient()
    defer { server.stop(); loop.shutdown() }
    let started = ContinuousClock.now
    let version = try await client.perform(.serverVersion())
    XCTAssertEqual(version, "flaky-3", "two rate-limited answers, then success")
    let health = try await client.perform(.checkHealth())
    XCTAssertTrue(health.isHealthy, "two UNAVAILABLE answers, then healthy")
    let elapsed = ContinuousClock.now - started
    // Each needed delays of about 100 + 200 ms (±10 %).
    XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(2 * 270))
    let counts = try await counts(client)
    XCTAssertEqual(counts["GetVersion"], 3)
    XCTAssertEqual(counts["CheckHealth"], 3)
    await client.close()
  }

  func testWritesAreRetriedOnlyWhenAllowedAndFinalErrorsNever() async throws {
    let (server, loop, client) = try flakyClient()
    defer { server.stop(); loop.shutdown() }
    await assertMilvexError({ try await client.perform(.delete(from: "c", filter: "id > 0")) }) {
      if case .grpcStatus(let status) = $0 { return status.code == .unavailable }
      return false
    }
    var after = try await counts(client)
    XCTAssertEqual(after["Delete"], 1, "a write is not retried by default")

    let writes = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(20), retryWrites: true)
    await assertMilvexError({
      try await client.perform(
        .delete(from: "c", filter: "id > 0"), options: MilvusCallOptions(retryPolicy: writes))
    }) { $0.isRetriable }
    after = try await counts(client)
    XCTAssertEqual(after["Delete"], 4, "3 more attempts when writes may be retried")

    await assertMilvexError({ try await client.perform(.describeIndex(on: "c")) }) {
      $0.milvusCode == 1100
    }
    after = try await counts(client)
    XCTAssertEqual(after["DescribeIndex"], 1, "a final Milvus error is not retried")

    // Retries stop at the deadline: with 400 ms doubling (no jitter) and 1 s in all, the first
    // delay fits (about 1,000 ms left) and the second does not (800 ms, about 600 left); wide
    // margins, so a slow machine gives the same count.
    let started = ContinuousClock.now
    let slow = RetryPolicy(baseDelay: .milliseconds(400), jitter: 0, retryWrites: true)
    await assertMilvexError({
      try await client.perform(
        .delete(from: "c", filter: "id > 0"),
        options: MilvusCallOptions(timeout: .seconds(1), retryPolicy: slow))
    }) { $0.isRetriable }
    XCTAssertLessThan(ContinuousClock.now - started, .seconds(1), "it gave up before the deadline")
    after = try await counts(client)
    XCTAssertEqual(after["Delete"], 6, "400 ms fits in 1 s, 400 + 800 ms does not")
    await client.close()
  }

  /// A write whose request never left cannot have applied: its schema lookup is retried even
  /// though writes are not, and the write itself is sent once.
  func testAWriteIsRetriedUntilItsRequestIsSent() async throws {
    let (server, loop, client) = try flakyClient()
    defer { server.stop(); loop.shutdown() }
    await assertMilvexError({ try await client.perform(.delete(from: "c", ids: [1, 2])) }) {
      if case .grpcStatus(let status) = $0 { return status.code == .unavailable }
      return false
    }
    let counts = try await counts(client)
    XCTAssertEqual(counts["DescribeCollection"], 2, "the failed schema lookup was retried")
    XCTAssertEqual(counts["Delete"], 1, "the sent write was not")
    await client.close()
  }

  /// The server says the write named an old schema: the client reads the schema again and
  /// resends once, with the new schema timestamp.
  func testSchemaMismatchRereadsTheSchemaAndResendsOnce() async throws {
    let (server, loop, client) = try flakyClient()
    defer { server.stop(); loop.shutdown() }
    let inserted = try await client.perform(
      .insert(into: "c", rows: [["id": 7, "vec": [0.1, 0.2]]]))
    XCTAssertEqual(inserted.ids, [7])
    XCTAssertEqual(inserted.insertCount, 1)
    var seen = try await counts(client)
    // Describe 1 UNAVAILABLE (retried: nothing sent), 2 (timestamp 100), 3 after the mismatch.
    XCTAssertEqual(seen["DescribeCollection"], 3)
    XCTAssertEqual(seen["Insert"], 2)
    _ = try await client.perform(.insert(into: "c", rows: [["id": 8, "vec": [0.3, 0.4]]]))
    seen = try await counts(client)
    XCTAssertEqual(seen["DescribeCollection"], 3, "the refreshed schema is cached")
    XCTAssertEqual(seen["Insert"], 3)
    await client.close()
  }
}
