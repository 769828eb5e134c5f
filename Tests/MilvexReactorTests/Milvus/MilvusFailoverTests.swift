import Foundation
import Logging
import XCTest

@testable import MilvexReactor

/// Issue 16, item 1, against Milvus servers: a client with two endpoints keeps answering reads
/// when one of them dies (a read that hit the dead one is retried on the other within its
/// deadline), and takes the endpoint back once it returns.
///
/// On real time (issue 23 left it there): nearly all of its wall time is milvus-lite starting,
/// three times, which no clock of ours shortens; its own timers (50 ms health checks, backoff up
/// to 300 ms, retries up to 100 ms) are short, and on virtual time each would have to be
/// advanced while a real process starts, with no instant worth asserting exactly.
final class MilvusFailoverTests: XCTestCase {
  func testReadsGoOnWhenOneEndpointDiesAndItReturnsToRotation() async throws {
    let first = try MilvusLite()
    let second = try MilvusLite()
    defer {
      first.stop()
      second.stop()
    }
    let loop = try EventLoop(threadName: "milvus-failover")
    defer { loop.shutdown() }
    var config = try ConnectionConfig(
      uris: ["milvus://127.0.0.1:\(first.port)", "milvus://127.0.0.1:\(second.port)"])
    config.reconnectBaseDelay = .milliseconds(100)
    config.reconnectMaxDelay = .milliseconds(300)
    config.allowTestingTimings = true
    // Milvus's CheckHealth on every connected endpoint, 20 times a second.
    config.healthCheckInterval = .milliseconds(50)
    var logger = Logger(label: "milvus-failover")
    logger.logLevel = .critical
    let retries = RetryPolicy(
      maxAttempts: 5, baseDelay: .milliseconds(20), maxDelay: .milliseconds(100), multiplier: 2,
      jitter: 0.1)
    let client = try MilvusClient.connect(
      config: config, on: loop, retryPolicy: retries, logger: logger)
    let endpoints = EventRecorder<StateTransition>()
    client.connection.onEndpointStateChange { endpoints.record($0) }
    let options = MilvusCallOptions(timeout: .seconds(5))

    for _ in 0..<10 { _ = try await client.perform(.serverVersion(), options: options) }

    // Kill the first endpoint: every later read still succeeds.
    kill(first.peer.process.processIdentifier, SIGKILL)
    first.peer.process.waitUntilExit()
    var failures: [MilvexError] = []
    for _ in 0..<30 {
      do {
        _ = try await client.perform(.listDatabases(), options: options)
      } catch {
        failures.append(error)
      }
    }
    XCTAssertEqual(failures, [], "reads are retried on the endpoint that is up")
    let lost = await endpoints.first(within: .seconds(10)) {
      $0.endpoint?.port == first.port && $0.to == .reconnecting
    }
    XCTAssertNotNil(lost, "the dead endpoint is noticed: \(endpoints.all)")
    XCTAssertEqual(client.connection.state, .connected)

    // It comes back on its port and serves again.
    let restarted = try MilvusLite(port: first.port, dataDirectory: first.dataDirectory)
    defer { restarted.stop() }
    let back = await endpoints.first(within: .seconds(15)) {
      $0.endpoint?.port == first.port && $0.from == .reconnecting && $0.to == .connected
    }
    XCTAssertNotNil(back, "back in rotation: \(endpoints.all)")
    var served: Set<Int> = []
    for _ in 0..<6 {
      let (_, used) = try await client.connection.channel()
      served.insert(used.port)
    }
    XCTAssertEqual(served, [first.port, second.port])
    // The surviving endpoint answered every CheckHealth healthy (a probe in flight on the
    // killed one may fail with it).
    XCTAssertFalse(
      endpoints.all.contains {
        $0.endpoint?.port == second.port && $0.reason.contains("health check failed")
      }, "\(endpoints.all)")
    await client.close()
  }
}
