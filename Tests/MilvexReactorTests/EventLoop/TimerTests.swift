import MilvexReactor
import Synchronization
import XCTest

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
      do { _ = try loop!.scheduleTimer(after: .milliseconds(-1)) {} } catch let error as MilvexError { errors.value.append(error) } catch {}
      do { _ = try loop!.scheduleTimer(after: .zero, repeating: true) {} } catch let error as MilvexError { errors.value.append(error) } catch {}
    }
    XCTAssertEqual(errors.value.count, 2)
    for error in errors.value {
      guard case .invalidArgument(let field, _) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(field, "delay")
    }
  }
}
