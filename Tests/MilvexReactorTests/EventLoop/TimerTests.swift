import Synchronization
import XCTest

@testable import MilvexReactor

final class TimerTests: XCTestCase {
  private var loop: EventLoop!

  override func setUpWithError() throws { loop = try EventLoop() }
  override func tearDown() { loop.shutdown() }

  func testTimersFireInDeadlineOrder() throws {
    let fired = LoopConfined<[Int]>([])
    let done = Latch()
    try onLoop(loop) { [loop] in
      for milliseconds in [50, 10, 40, 20, 30] {
        _ = try! loop!.scheduleTimer(after: .milliseconds(milliseconds)) {
          fired.value.append(milliseconds)
          if fired.value.count == 5 { done.open() }
        }
      }
    }
    done.waitOrFail("five timers")
    XCTAssertEqual(fired.value, [10, 20, 30, 40, 50])
  }

  func testCancelledTimerNeverFires() throws {
    let cancelledFired = LoopConfined(false)
    let later = Latch()
    try onLoop(loop) { [loop] in
      let timer = try! loop!.scheduleTimer(after: .milliseconds(10)) { cancelledFired.value = true }
      XCTAssertTrue(timer.isScheduled)
      timer.cancel()
      XCTAssertFalse(timer.isScheduled)
      timer.rearm()  // a cancelled timer stays cancelled
      XCTAssertFalse(timer.isScheduled)
      _ = try! loop!.scheduleTimer(after: .milliseconds(60)) { later.open() }
    }
    later.waitOrFail("a later timer")
    XCTAssertFalse(cancelledFired.value)
  }

  func testRearmedTimerFiresOnceAtItsNewDeadline() throws {
    let firings = LoopConfined<[Duration]>([])
    let start = LoopConfined(ContinuousClock.now)
    let checked = Latch()
    try onLoop(loop) { [loop] in
      let loop = loop!
      start.value = .now
      let timer = try! loop.scheduleTimer(after: .milliseconds(30)) {
        firings.value.append(ContinuousClock.now - start.value)
      }
      _ = try! loop.scheduleTimer(after: .milliseconds(10)) {
        timer.rearm(after: .milliseconds(60))  // new deadline: >= 70 ms after start
      }
      _ = try! loop.scheduleTimer(after: .milliseconds(250)) {
        checked.open()
        _ = timer  // keep the handle alive until the check
      }
    }
    checked.waitOrFail("the check timer")
    XCTAssertEqual(firings.value.count, 1, "fired exactly once: \(firings.value)")
    XCTAssertGreaterThanOrEqual(firings.value.first ?? .zero, .milliseconds(70))
  }

  func testTwentyMillisecondTimerNeverFiresEarly() throws {
    let elapsed = LoopConfined<[Duration]>([])
    let done = Latch()
    try onLoop(loop) { [loop] in
      let loop = loop!
      // Make the loop's cached time stale first: a timer must still wait its full delay.
      let busyUntil = ContinuousClock.now + .milliseconds(15)
      while ContinuousClock.now < busyUntil {}
      for _ in 0..<5 {
        let scheduledAt = ContinuousClock.now
        _ = try! loop.scheduleTimer(after: .milliseconds(20)) {
          elapsed.value.append(ContinuousClock.now - scheduledAt)
          if elapsed.value.count == 5 { done.open() }
        }
      }
    }
    done.waitOrFail("five 20 ms timers")
    for value in elapsed.value {
      XCTAssertGreaterThanOrEqual(value, .milliseconds(20))
    }
  }

  func testRepeatingTimerFiresUntilCancelled() throws {
    let count = LoopConfined(0)
    let done = Latch()
    try onLoop(loop) { [loop] in
      let timer = LoopConfined<LoopTimer?>(nil)
      timer.value = try! loop!.scheduleTimer(after: .milliseconds(5), repeating: true) {
        count.value += 1
        if count.value == 3 {
          timer.value?.cancel()
          timer.value = nil
          _ = try! loop!.scheduleTimer(after: .milliseconds(40)) { done.open() }
        }
      }
    }
    done.waitOrFail("three repetitions")
    XCTAssertEqual(count.value, 3)
  }

  func testInvalidDelaysAreRejectedWithTheFieldName() throws {
    let errors = LoopConfined<[MilvexError]>([])
    try onLoop(loop) { [loop] in
      do { _ = try loop!.scheduleTimer(after: .milliseconds(-1)) {} } catch let error as MilvexError
      { errors.value.append(error) } catch {}
      do { _ = try loop!.scheduleTimer(after: .zero, repeating: true) {} } catch let error
        as MilvexError
      { errors.value.append(error) } catch {}
    }
    XCTAssertEqual(errors.value.count, 2)
    for error in errors.value {
      guard case .invalidArgument(let field, _) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(field, "delay")
    }
  }

  // MARK: - Re-arming edges (issue 10: a zero re-arm used to stop the timer for good)

  /// `ev_timer_again` stops a timer whose repeat is zero; `rearm(after: .zero)` must fire it.
  func testRearmWithZeroDelayFiresInTheNextIteration() throws {
    let fired = LoopConfined<[String]>([])
    let done = Latch()
    try onLoop(loop) { [loop] in
      let loop = loop!
      // Scheduled far away, then re-armed to "now": it fires at once, once.
      let pending = try! loop.scheduleTimer(after: .seconds(60)) { fired.value.append("pending") }
      pending.rearm(after: .zero)
      // Already fired, then re-armed to zero from outside its callback.
      let once = LoopConfined<LoopTimer?>(nil)
      once.value = try! loop.scheduleTimer(after: .milliseconds(5)) {
        fired.value.append("once")
        if fired.value.filter({ $0 == "once" }).count == 1 {
          _ = try! loop.scheduleTimer(after: .milliseconds(5)) { once.value?.rearm(after: .zero) }
        }
      }
      // A negative delay means "as soon as possible" too.
      let negative = try! loop.scheduleTimer(after: .seconds(60)) { fired.value.append("negative") }
      negative.rearm(after: .milliseconds(-5))
      _ = try! loop.scheduleTimer(after: .milliseconds(200)) {
        _ = (pending, negative)  // alive until the check
        once.value = nil  // its callback holds `once`: let the timer go
        done.open()
      }
    }
    done.waitOrFail("the check timer")
    XCTAssertEqual(fired.value.filter { $0 == "pending" }.count, 1, "\(fired.value)")
    XCTAssertEqual(fired.value.filter { $0 == "negative" }.count, 1, "\(fired.value)")
    XCTAssertEqual(
      fired.value.filter { $0 == "once" }.count, 2,
      "fired, then re-armed to zero fired again: \(fired.value)")
  }

  /// A timer re-armed from its own callback fires again; with a zero delay, in the next
  /// iteration (the connection's waiter timer does exactly this when a deadline is due).
  func testRearmFromItsOwnCallback() throws {
    let firings = LoopConfined(0)
    let zeroFirings = LoopConfined(0)
    let done = Latch()
    try onLoop(loop) { [loop] in
      let loop = loop!
      let timer = LoopConfined<LoopTimer?>(nil)
      timer.value = try! loop.scheduleTimer(after: .milliseconds(5)) {
        firings.value += 1
        if firings.value < 3 { timer.value?.rearm(after: .milliseconds(5)) }
      }
      let zero = LoopConfined<LoopTimer?>(nil)
      zero.value = try! loop.scheduleTimer(after: .zero) {
        zeroFirings.value += 1
        if zeroFirings.value < 5 { zero.value?.rearm(after: .zero) }
      }
      _ = try! loop.scheduleTimer(after: .milliseconds(200)) {
        (timer.value, zero.value) = (nil, nil)  // their callbacks hold the boxes: let them go
        done.open()
      }
    }
    done.waitOrFail("the check timer")
    XCTAssertEqual(firings.value, 3)
    XCTAssertEqual(zeroFirings.value, 5)
  }

  /// Stopped or cancelled, then re-armed; a repeating timer re-armed to zero fires once and
  /// stops (a zero interval cannot repeat); the loop lets go of every timer that stopped.
  func testStopCancelAndRepeatingEdges() throws {
    let fired = LoopConfined<[String]>([])
    let watchersAfter = LoopConfined(-1)
    let done = Latch()
    try onLoop(loop) { [loop] in
      let loop = loop!
      let stopped = try! loop.scheduleTimer(after: .milliseconds(5)) {
        fired.value.append("stopped")
      }
      stopped.stop()
      stopped.rearm(after: .zero)
      let cancelled = try! loop.scheduleTimer(after: .milliseconds(5)) {
        fired.value.append("cancelled")
      }
      cancelled.cancel()
      cancelled.rearm(after: .zero)
      XCTAssertFalse(cancelled.isScheduled)
      let repeating = try! loop.scheduleTimer(after: .seconds(60), repeating: true) {
        fired.value.append("repeating")
      }
      repeating.rearm(after: .zero)
      _ = try! loop.scheduleTimer(after: .milliseconds(200)) {
        XCTAssertFalse(repeating.isScheduled)
        _ = (stopped, cancelled)
        watchersAfter.value = loop.activeWatcherCount
        done.open()
      }
    }
    done.waitOrFail("the check timer")
    XCTAssertEqual(fired.value.sorted(), ["repeating", "stopped"])
    XCTAssertEqual(watchersAfter.value, 0, "no fired or stopped timer is still held by the loop")
  }
}
