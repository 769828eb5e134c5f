import XCTest

@testable import MilvexReactor

/// The connection's one-timer deadline bookkeeping, driven with a manual clock.
final class CallDeadlinesTests: XCTestCase {
  private var clock = ManualClock()

  private func call(_ name: String) -> UnaryCall {
    UnaryCall(
      path: name, message: [1, 2, 3], metadata: GRPCMetadata(), timeout: nil, startedAt: clock.now,
      maxReceiveMessageSize: 100
    ) { _ in }
  }

  func testExpiresEarliestFirstEqualDeadlinesInArrivalOrderAndSkipsCompletedCalls() {
    var deadlines = CallDeadlines()
    let (a, b, c, d) = (call("a"), call("b"), call("c"), call("d"))
    XCTAssertTrue(
      deadlines.add(a, deadline: clock.now + .milliseconds(30)), "first: the earliest changes")
    XCTAssertTrue(deadlines.add(b, deadline: clock.now + .milliseconds(10)), "earlier: changes")
    XCTAssertFalse(
      deadlines.add(c, deadline: clock.now + .milliseconds(30)), "later: the timer stays")
    XCTAssertFalse(
      deadlines.add(d, deadline: clock.now + .milliseconds(10)), "equal: the timer stays")
    XCTAssertEqual(deadlines.earliest, clock.now + .milliseconds(10))

    clock.advance(by: .milliseconds(9))
    XCTAssertEqual(deadlines.removeExpired(now: clock.now).map(\.path), [], "nothing due yet")
    clock.advance(by: .milliseconds(1))
    XCTAssertEqual(deadlines.removeExpired(now: clock.now).map(\.path), ["b", "d"])

    // `a` completes on its own: it is skipped, and the earliest is `c`'s.
    _ = a.markCompleted()
    deadlines.callCompleted()
    XCTAssertEqual(deadlines.pendingCount, 1)
    clock.advance(by: .seconds(1))
    XCTAssertEqual(deadlines.removeExpired(now: clock.now).map(\.path), ["c"])
    XCTAssertNil(deadlines.earliest)
    XCTAssertEqual(deadlines.pendingCount, 0)
  }

  /// Completed calls do not pile up: the heap stays within twice the waiting calls plus 64.
  func testCompletedCallsAreCompactedAway() {
    var deadlines = CallDeadlines()
    let longLived = call("long")
    _ = deadlines.add(longLived, deadline: clock.now + .seconds(1))
    for index in 0..<10_000 {
      let quick = call("quick-\(index)")
      _ = deadlines.add(quick, deadline: clock.now + .seconds(30))
      _ = quick.markCompleted()
      deadlines.callCompleted()
      XCTAssertLessThanOrEqual(deadlines.storedCount, 2 * deadlines.pendingCount + 65)
    }
    XCTAssertEqual(deadlines.pendingCount, 1)
    XCTAssertEqual(deadlines.earliest, clock.now + .seconds(1))
  }

  func testRemoveAllForgetsEverything() {
    var deadlines = CallDeadlines()
    _ = deadlines.add(call("a"), deadline: clock.now)
    deadlines.removeAll()
    XCTAssertNil(deadlines.earliest)
    XCTAssertEqual(deadlines.pendingCount, 0)
    XCTAssertEqual(deadlines.removeExpired(now: clock.now + .seconds(1)).count, 0)
  }

  /// The one timer is re-armed only when it would fire too late: a timer due earlier is kept
  /// (it fires, finds nothing, and is armed for what is then the earliest).
  func testTheTimerIsArmedOnlyWhenItWouldFireTooLate() {
    var deadlines = CallDeadlines()
    XCTAssertEqual(deadlines.timerChange(timerScheduled: false), .stop, "nothing waits")
    let start = clock.now
    let (a, b, c) = (call("a"), call("b"), call("c"))
    _ = deadlines.add(a, deadline: start + .seconds(30))
    XCTAssertEqual(deadlines.timerChange(timerScheduled: false), .arm(start + .seconds(30)))
    _ = deadlines.add(b, deadline: start + .seconds(40))
    XCTAssertEqual(deadlines.timerChange(timerScheduled: true), .keep, "due before b's")
    _ = deadlines.add(c, deadline: start + .seconds(10))
    XCTAssertEqual(
      deadlines.timerChange(timerScheduled: true), .arm(start + .seconds(10)), "c is earlier")
    // c completes: the timer stays due at 10 s, earlier than a's 30 s.
    _ = c.markCompleted()
    deadlines.callCompleted()
    XCTAssertEqual(deadlines.timerChange(timerScheduled: true), .keep)
    // It fires at 10 s with nothing due, and is armed for a's deadline.
    clock.advance(by: .seconds(10))
    XCTAssertEqual(deadlines.removeExpired(now: clock.now).count, 0)
    XCTAssertEqual(deadlines.timerChange(timerScheduled: false), .arm(start + .seconds(30)))
    // A stopped timer (not scheduled) is armed again even if its due time was early enough.
    XCTAssertEqual(deadlines.timerChange(timerScheduled: false), .arm(start + .seconds(30)))
    clock.advance(by: .seconds(30))
    XCTAssertEqual(deadlines.removeExpired(now: clock.now).map(\.path), ["a", "b"])
    XCTAssertEqual(deadlines.timerChange(timerScheduled: false), .stop)
  }
}
