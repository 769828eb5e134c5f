import Foundation
import XCTest

@testable import MilvexReactor

/// `isConnected(timeout:)` answers even when the loop does not: with the loop thread held up
/// by a closure, the question stays queued and the watchdog answers DEADLINE_EXCEEDED.
final class IsConnectedWatchdogTests: XCTestCase {
  func testAStalledLoopGetsDeadlineExceeded() async throws {
    let loop = try EventLoop(threadName: "stalled")
    let connection = try Connection.start(
      config: ConnectionConfig(host: "127.0.0.1", port: 1), on: loop)
    let release = Latch()
    let holding = Latch()
    try loop.execute {
      holding.open()
      _ = release.wait(timeout: .seconds(30))  // the loop is stuck until the test releases it
    }
    holding.waitOrFail("the loop to be held")
    let started = ContinuousClock.now
    await assertMilvexError({ try await connection.isConnected(timeout: .milliseconds(150)) }) {
      if case .grpcStatus(let status) = $0 { return status.code == .deadlineExceeded }
      return false
    }
    let elapsed = ContinuousClock.now - started
    XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(150))
    XCTAssertLessThan(elapsed, .seconds(3))
    release.open()
    await connection.disconnect()
    await Task.detached { loop.shutdown() }.value
  }
}
