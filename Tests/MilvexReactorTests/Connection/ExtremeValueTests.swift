import Foundation
import Logging
import XCTest

@testable import MilvexReactor

/// Issue 10, item 2: no caller-supplied number traps. Durations of centuries (or negative
/// ones), huge retry settings, NaN draws: each is refused with an error or saturates to
/// "practically never", and the process lives on.
final class ExtremeValueTests: XCTestCase {
  private let extremes: [Duration] = [
    .seconds(Int64.max), .seconds(Int64.min), .seconds(1 << 62), .seconds(-(1 << 62)), .zero,
    .nanoseconds(1),
  ]

  func testGRPCTimeoutHeaderSaturates() {
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.seconds(Int64.max)), "99999999H")
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.seconds(Int64.min)), "0n")
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.seconds(9_000_000_000)), "2500000H")
    XCTAssertEqual(GRPCWireFormat.timeoutHeader(.milliseconds(1500)), "1500000u")
    XCTAssertEqual(Duration.seconds(Int64.max).saturatingNanoseconds, .max)
    XCTAssertEqual(Duration.seconds(Int64.min).saturatingNanoseconds, .min)
    XCTAssertEqual(Duration.milliseconds(-1500).saturatingNanoseconds, -1_500_000_000)
  }

  func testLatchWaitWithExtremeTimeouts() {
    let open = Latch()
    open.open()
    for timeout in extremes { XCTAssertTrue(open.wait(timeout: timeout)) }
    let closed = Latch()
    XCTAssertFalse(closed.wait(timeout: .seconds(Int64.min)))
    XCTAssertFalse(closed.wait(timeout: .zero))
  }

  func testRetryPolicyNeverOverflows() {
    let huge = RetryPolicy(
      maxAttempts: 100, baseDelay: .seconds(1 << 62), maxDelay: .seconds(Int64.max), multiplier: 100
    )
    XCTAssertThrowsError(try huge.validate()) { error in
      guard case .invalidArgument(let field, _) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "retryPolicy.maxDelay")
    }
    for attempt in [0, 1, 2, 100, Int.max, Int.min] {
      XCTAssertLessThanOrEqual(huge.delay(afterAttempt: attempt), .seconds(Int64.max))
    }
    XCTAssertEqual(
      huge.decide(
        attempt: 3, error: .notConnected(host: "h", port: 1), isWrite: false,
        remaining: .seconds(10), random: .nan), .fail)
    let odd = RetryPolicy(
      baseDelay: .seconds(-5), maxDelay: .seconds(-10), multiplier: .nan, jitter: .infinity)
    for random in [Double.nan, .infinity, -.infinity, 2, -1] {
      _ = odd.decide(
        attempt: 1, error: .notConnected(host: "h", port: 1), isWrite: false,
        remaining: .seconds(1), random: random)
    }
    let normal = RetryPolicy()
    XCTAssertEqual(
      (1...7).map(normal.delay(afterAttempt:)),
      [
        .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
        .milliseconds(1600),
        .seconds(3), .seconds(3),
      ])
  }

  func testBackoffClampsWhatItCannotUse() {
    var odd = Backoff(
      baseDelay: .seconds(Int64.min), maxDelay: .seconds(Int64.max), multiplier: .nan, jitter: .nan)
    XCTAssertEqual(odd.baseDelay, Backoff.minimumDelay)
    XCTAssertEqual(odd.maxDelay, Backoff.longestDelay)
    XCTAssertEqual(odd.multiplier, 1)
    XCTAssertEqual(odd.jitter, 0)
    XCTAssertEqual(odd.next(), Backoff.minimumDelay)
    var inverted = Backoff(
      baseDelay: .seconds(5), maxDelay: .seconds(1), multiplier: 1e300, jitter: 7)
    XCTAssertEqual(inverted.maxDelay, .seconds(5), "never below the base delay")
    for _ in 0..<100 { XCTAssertLessThanOrEqual(inverted.next(), .seconds(5)) }
  }

  func testTooManyPingsDoublingIsCapped() {
    var configuration = GRPCChannelConfiguration(host: "h", port: 1)
    configuration.keepaliveTime = .seconds(10)
    for _ in 0..<200 { configuration = configuration.afterTooManyPings() }
    XCTAssertEqual(
      configuration.keepaliveTime, GRPCChannelConfiguration.maximumKeepaliveTimeAfterTooManyPings)
    configuration.keepaliveTime = .seconds(Int64.max)
    XCTAssertEqual(
      configuration.afterTooManyPings().keepaliveTime, .seconds(Int64.max), "never lowered")
  }

  /// The loop-side entry points with extreme timeouts: each completes (or stays pending
  /// until disconnect) without trapping.
  func testExtremeTimeoutsOnTheLoop() async throws {
    let loop = try EventLoop(threadName: "extreme-test")
    defer { loop.shutdown() }
    var logger = Logger(label: "extreme-test")
    logger.logLevel = .critical
    let connection = try Connection.start(
      config: ConnectionConfig(host: "127.0.0.1", port: freeLocalPort()), on: loop, logger: logger)
    for timeout in extremes {
      let connected = try await connection.isConnected(timeout: max(timeout, .seconds(5)))
      XCTAssertFalse(connected)
    }
    // Waits that have passed already fail at once; waits of centuries stay until disconnect.
    let ended = Locked(0)
    let done = DispatchGroup()
    for timeout in extremes {
      done.enter()
      connection.waitForChannel(timeout: timeout) { _ in
        ended.withLock { $0 += 1 }
        done.leave()
      }
    }
    try onLoop(loop) {
      for timeout in [Duration.seconds(Int64.max), .seconds(1 << 62)] {
        _ = try? loop.scheduleTimer(after: timeout) { XCTFail("a timer of centuries fired") }
      }
    }
    connection.disconnect(reason: "test over")
    XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
    XCTAssertEqual(ended.withLock { $0 }, extremes.count)
  }

  func testExtremeCallTimeoutsAreSentOrRefused() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "echo"])
    defer { server.stop() }
    let loop = try EventLoop(threadName: "extreme-call")
    defer { loop.shutdown() }
    let channel = try GRPCChannel.connect(
      configuration: GRPCChannelConfiguration(host: "127.0.0.1", port: server.port), loop: loop)
    defer { channel.close() }
    for timeout in extremes {
      do {
        let echoed = try await channel.unary(
          path: "/test.Echo/Call", request: [1, 2, 3], timeout: timeout)
        XCTAssertEqual(echoed, [1, 2, 3], "\(timeout)")
      } catch {
        // A deadline that has passed already is DEADLINE_EXCEEDED or an argument error,
        // never a trap.
        XCTAssertTrue(timeout <= .nanoseconds(1), "\(timeout): \(error)")
      }
    }
  }
}
