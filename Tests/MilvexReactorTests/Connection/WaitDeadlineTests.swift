import Foundation
import Logging
import MilvexTesting
import XCTest

@testable import MilvexReactor

/// Issue 10, defect 1: while the server is down, every wait for the channel and every typed
/// call completes at its deadline, however the deadlines and the arrivals line up with the
/// backoff delay and with each other.
///
/// On virtual time (issue 23): the loop's clock moves only when the test advances it, and a
/// timer runs with the clock at its own deadline, so a wait that ends on time ends at exactly
/// its deadline: the completion instant, read from the loop's clock in the completion callback,
/// equals the deadline, not "within 50 ms of it". Every completion has run when the advance
/// past its deadline returns; nothing waits on the wall clock. Refused connects are real I/O and
/// complete between advances, in milliseconds.
final class WaitDeadlineTests: XCTestCase {
  private var loop: EventLoop!
  private var connection: Connection?

  override func setUpWithError() throws {
    loop = try EventLoop.virtualTime(threadName: "deadline-test")
  }

  override func tearDown() {
    connection?.disconnect()
    loop.shutdown()
  }

  /// A connection to a port where nothing listens: every attempt is refused. Returns once the
  /// first attempt was refused, so that every wait can name the connect error.
  private func downConnection(backoff: Duration) async throws -> Connection {
    let config = try ConnectionConfig(
      host: "127.0.0.1", port: freeLocalPort(), reconnectBaseDelay: backoff,
      reconnectMaxDelay: backoff,
      reconnectJitter: 0, allowTestingTimings: true)
    let capture = LogCapture()
    let connection = try Connection.start(
      config: config, on: loop, logger: Logger(label: "deadline-test") { _ in capture })
    self.connection = connection
    try await firstRefusal(capture)
    return connection
  }

  /// Waits (real I/O, bounded generously) until the first connect attempt was refused.
  private func firstRefusal(_ capture: LogCapture) async throws {
    let refused = await capture.failures.first(within: .seconds(10)) { $0 >= 1 }
    XCTAssertNotNil(refused, "the first attempt is refused")
    XCTAssertTrue(capture.messages.contains { $0.contains("refused") }, "\(capture.messages)")
  }

  /// One finished wait: how late it was against its deadline (negative: early) and its error.
  private struct Outcome: Sendable {
    var lateness: Duration
    var error: MilvexError?
  }

  private func assertAllOnTime(
    _ outcomes: [Outcome], expected count: Int, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(
      outcomes.count, count, "every wait completed exactly once, by its deadline", file: file,
      line: line)
    let late = outcomes.map(\.lateness).filter { $0 != .zero }
    XCTAssertEqual(late, [], "every wait ends at exactly its deadline", file: file, line: line)
    for outcome in outcomes {
      guard case .notConnected(_, _, let lastFailure)? = outcome.error else {
        return XCTFail(
          "expected notConnected, got \(String(describing: outcome.error))", file: file, line: line)
      }
      XCTAssertTrue(
        lastFailure?.contains("refused") == true, "\(String(describing: lastFailure))", file: file,
        line: line)
    }
  }

  /// Starts a wait of `timeout` through the public API and records its outcome. Call it between
  /// advances only: the deadline is read from the clock here, and the loop takes the same
  /// instant when the wait reaches it.
  private func wait(
    _ connection: Connection, timeout: Duration, into outcomes: Locked<[Outcome]>
  ) {
    let loop = loop!
    let deadline = loop.now + timeout
    connection.waitForChannel(timeout: timeout) { result in
      Self.record(result, lateness: loop.now - deadline, into: outcomes)
    }
  }

  /// Starts a wait on the loop thread, its deadline taken from the clock there: safe while
  /// other tasks advance the clock.
  private static func waitOnLoop(
    _ connection: Connection, timeout: Duration, into outcomes: Locked<[Outcome]>
  ) async throws {
    let loop = connection.loop
    try await loop.submit {
      let deadline = loop.now + timeout
      connection.onLoop.waitForChannel(deadline: deadline) { result in
        record(result, lateness: loop.now - deadline, into: outcomes)
      }
    }
  }

  private static func record<Success>(
    _ result: Result<Success, MilvexError>, lateness: Duration, into outcomes: Locked<[Outcome]>
  ) {
    outcomes.withLock { $0.append(Outcome(lateness: lateness, error: failure(of: result))) }
  }

  /// The report's reproduction: one caller every 100 ms with a 1 s deadline, 30 times.
  /// Deadlines shorter than the backoff delay (2 s) and longer than it (200 ms).
  func testOneCallerEvery100MillisecondsWithDeadlinesAroundTheBackoff() async throws {
    for backoff in [Duration.seconds(2), .milliseconds(200)] {
      let connection = try await downConnection(backoff: backoff)
      let outcomes = Locked<[Outcome]>([])
      for index in 0..<30 {
        wait(connection, timeout: .seconds(1), into: outcomes)
        try await loop.advanceTime(by: .milliseconds(100))
        // The waits that started 1 s ago or earlier have ended, the others not.
        let ended = outcomes.withLock { $0.count }
        XCTAssertEqual(ended, max(0, index - 8), "backoff \(backoff), after wait \(index)")
      }
      try await loop.advanceTime(by: .seconds(1))
      assertAllOnTime(outcomes.withLock { $0 }, expected: 30)
      await connection.disconnect()
    }
  }

  /// 8 tasks, each 25 waits of 50–600 ms at random intervals (advancing the clock 0–30 ms
  /// between them, concurrently with the others), all on one connection.
  func testEightConcurrentCallers() async throws {
    let connection = try await downConnection(backoff: .milliseconds(300))
    let outcomes = Locked<[Outcome]>([])
    let loop = loop!
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<8 {
        group.addTask {
          for _ in 0..<25 {
            try await Self.waitOnLoop(
              connection, timeout: .milliseconds(Int64.random(in: 50...600)), into: outcomes)
            try await loop.advanceTime(by: .milliseconds(Int64.random(in: 0...30)))
          }
        }
      }
      try await group.waitForAll()
    }
    try await loop.advanceTime(by: .milliseconds(600))
    assertAllOnTime(outcomes.withLock { $0 }, expected: 200)
  }

  /// 2,000 waiters at once with deadlines spread over 1 s: one timer serves them all.
  func testManyWaitersWithSpreadDeadlines() async throws {
    let connection = try await downConnection(backoff: .seconds(5))
    let outcomes = Locked<[Outcome]>([])
    for index in 0..<2_000 {
      wait(connection, timeout: .milliseconds(Int64(300 + index % 1_000)), into: outcomes)
    }
    try await loop.advanceTime(by: .milliseconds(299))
    XCTAssertEqual(outcomes.withLock { $0.count }, 0, "no wait ends before its deadline")
    try await loop.advanceTime(by: .milliseconds(500))
    XCTAssertEqual(outcomes.withLock { $0.count }, 1_000, "the waits of 300–799 ms ended")
    try await loop.advanceTime(by: .milliseconds(500))
    assertAllOnTime(outcomes.withLock { $0 }, expected: 2_000)
  }

  /// The exact collision that killed the waiter timer: a caller arrives when the earliest
  /// waiter's deadline has just passed, before the waiter timer ran, so the timer is re-armed
  /// with a zero delay. Both waiters must still end on time.
  ///
  /// On virtual time the collision is exact rather than provoked by holding the loop: a timer
  /// scheduled before the first waiter, due at the same instant, runs first (ties run in the
  /// order they were scheduled) and adds the second waiter with the clock at the first deadline.
  func testACallerArrivingAsTheEarliestDeadlinePassesDoesNotStopTheTimer() async throws {
    let connection = try await downConnection(backoff: .seconds(5))
    let outcomes = Locked<[Outcome]>([])
    let loop = loop!
    let first = loop.now + .milliseconds(30)
    let secondArrived = Locked(false)
    try await loop.submit {
      let timer = try? loop.scheduleTimer(after: .milliseconds(30)) {
        XCTAssertEqual(loop.now, first, "the second caller arrives at the first deadline")
        let second = loop.now + .milliseconds(200)
        connection.onLoop.waitForChannel(deadline: second) { result in
          Self.record(result, lateness: loop.now - second, into: outcomes)
        }
        secondArrived.withLock { $0 = true }
      }
      XCTAssertNotNil(timer)
      connection.onLoop.waitForChannel(deadline: first) { result in
        Self.record(result, lateness: loop.now - first, into: outcomes)
      }
    }
    try await loop.advanceTime(by: .milliseconds(30))
    XCTAssertTrue(secondArrived.withLock { $0 })
    XCTAssertEqual(outcomes.withLock { $0.count }, 1, "the first waiter ended at its deadline")
    try await loop.advanceTime(by: .milliseconds(200))
    assertAllOnTime(outcomes.withLock { $0 }, expected: 2)
  }

  /// A typed call's outcome: how late it ended against its deadline, and its error.
  private typealias CallOutcome = (lateness: Duration, error: MilvexError?)

  private func downClient(backoff: Duration) async throws -> MilvusClient {
    let config = try ConnectionConfig(
      host: "127.0.0.1", port: freeLocalPort(), reconnectBaseDelay: backoff,
      reconnectMaxDelay: backoff,
      reconnectJitter: 0, allowTestingTimings: true)
    let capture = LogCapture()
    let client = try MilvusClient.connect(
      config: config, on: loop, logger: Logger(label: "deadline-test") { _ in capture })
    connection = client.connection
    try await firstRefusal(capture)
    return client
  }

  private func assertUnavailableOnTime(
    _ all: [CallOutcome], expected count: Int, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(all.count, count, "each call ended exactly once", file: file, line: line)
    let late = all.map(\.lateness).filter { $0 != .zero }
    XCTAssertEqual(late, [], "every call ends at exactly its deadline", file: file, line: line)
    for (_, error) in all {
      guard case .grpcStatus(let status)? = error, status.code == .unavailable,
        case .notConnected(_, _, let lastFailure)? = status.cause
      else {
        return XCTFail(
          "expected UNAVAILABLE with a notConnected cause, got \(String(describing: error))",
          file: file, line: line)
      }
      XCTAssertTrue(status.message.contains("last error:"), status.message, file: file, line: line)
      XCTAssertTrue(
        lastFailure?.contains("refused") == true, "\(String(describing: lastFailure))",
        file: file, line: line)
    }
  }

  /// The typed API: `serverVersion` with a 1 s deadline, called every 100 ms while the server
  /// is down, fails on time with UNAVAILABLE naming the last connect error.
  func testTypedCallsWhileTheServerIsDown() async throws {
    let client = try await downClient(backoff: .seconds(2))
    let outcomes = Locked<[CallOutcome]>([])
    let loop = loop!
    for _ in 0..<20 {
      let deadline = loop.now + .seconds(1)
      client.perform(.serverVersion(), options: MilvusCallOptions(timeout: .seconds(1))) { result in
        outcomes.withLock { $0.append((loop.now - deadline, failure(of: result))) }
      }
      try await loop.advanceTime(by: .milliseconds(100))
    }
    try await loop.advanceTime(by: .seconds(1))
    assertUnavailableOnTime(outcomes.withLock { $0 }, expected: 20)
  }

  /// 8 tasks of typed calls (deadlines 100–800 ms, around the 300 ms backoff, the clock
  /// advanced 0–50 ms between them, concurrently) while the server is down: each fails on
  /// time, exactly once.
  func testTypedCallsFromEightThreads() async throws {
    let client = try await downClient(backoff: .milliseconds(300))
    let outcomes = Locked<[CallOutcome]>([])
    let loop = loop!
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<8 {
        group.addTask {
          for _ in 0..<10 {
            let timeout = Duration.milliseconds(Int64.random(in: 100...800))
            try await loop.submit {
              let deadline = loop.now + timeout
              let options = MilvusCallOptions(timeout: timeout)
              client.onLoop.perform(.serverVersion(), options: options) { result in
                outcomes.withLock { $0.append((loop.now - deadline, failure(of: result))) }
              }
            }
            try await loop.advanceTime(by: .milliseconds(Int64.random(in: 0...50)))
          }
        }
      }
      try await group.waitForAll()
    }
    try await loop.advanceTime(by: .milliseconds(800))
    assertUnavailableOnTime(outcomes.withLock { $0 }, expected: 80)
  }
}

/// The error of a failed result; nil for a success.
private func failure<Success>(of result: Result<Success, MilvexError>) -> MilvexError? {
  if case .failure(let error) = result { error } else { nil }
}
