import MilvexTesting
import XCTest

@testable import MilvexReactor

/// The virtual timer schedule as a value, and a loop with virtual time: order, ties, rearm,
/// stop, cancel, repeating timers, zero delays, and every misuse answered with an error.
final class VirtualTimeTests: XCTestCase {
  private var loop: EventLoop!

  override func setUpWithError() throws { loop = try EventLoop.virtualTime(threadName: "vt-unit") }
  override func tearDown() { loop.shutdown() }

  // MARK: - The schedule as a value

  func testTheQueueGivesDeadlineOrderTiesInSchedulingOrderAndSkipsCancelledEntries() {
    let start = ContinuousClock.now
    var queue = VirtualTimerQueue<String>()
    queue.schedule("c", at: start + .seconds(3))
    queue.schedule("a", at: start + .seconds(1))
    queue.schedule("tie-1", at: start + .seconds(2))
    queue.schedule("tie-2", at: start + .seconds(2))
    queue.schedule("gone", at: start + .seconds(1))
    queue.cancel("gone")
    queue.schedule("moved", at: start + .seconds(1))
    queue.schedule("moved", at: start + .seconds(4))  // replaces its first deadline
    XCTAssertEqual(queue.count, 5)
    XCTAssertEqual(queue.deadlines, [1, 2, 2, 3, 4].map { start + .seconds($0) })
    XCTAssertNil(queue.popDue(atOrBefore: start + .milliseconds(999)))
    var order: [String] = []
    while let (id, _) = queue.popDue(atOrBefore: start + .seconds(10)) { order.append(id) }
    XCTAssertEqual(order, ["a", "tie-1", "tie-2", "c", "moved"])
    XCTAssertEqual(queue.count, 0)
  }

  func testATimerRearmedManyTimesLeavesOneEntry() {
    let start = ContinuousClock.now
    var queue = VirtualTimerQueue<Int>()
    for step in 0..<10_000 { queue.schedule(7, at: start + .milliseconds(step)) }
    XCTAssertEqual(queue.deadlines, [start + .milliseconds(9_999)])
    XCTAssertEqual(queue.popDue(atOrBefore: start + .seconds(60))?.id, 7)
    XCTAssertNil(queue.earliestDeadline())
  }

  // MARK: - Timers on a loop with virtual time

  func testTimersWaitForTheClockAndFireInDeadlineOrderWithTheClockAtTheirDeadline() async throws {
    let loop = self.loop!
    let start = loop.now
    let fired = Locked<[(Int, Duration)]>([])
    try await loop.submit {
      for (seconds, tag) in [(50, 5), (10, 1), (30, 3), (30, 4), (20, 2)] {
        _ = try! loop.scheduleTimer(after: .seconds(seconds)) {
          fired.withLock { $0.append((tag, loop.now - start)) }
        }
      }
    }
    try await Task.sleep(for: .milliseconds(50))
    XCTAssertTrue(fired.withLock { $0.isEmpty }, "no timer fires while the clock stands still")
    XCTAssertEqual(loop.now, start)
    try await loop.advanceTime(by: .seconds(30))
    XCTAssertEqual(fired.withLock { $0.map(\.0) }, [1, 2, 3, 4])
    XCTAssertEqual(
      fired.withLock { $0.map(\.1) }, [10, 20, 30, 30].map { Duration.seconds($0) },
      "each timer sees the clock at its own deadline")
    XCTAssertEqual(loop.now, start + .seconds(30))
    let pending = try await loop.pendingTimerDeadlines()
    XCTAssertEqual(pending, [start + .seconds(50)])
    try await loop.advanceTime(to: start + .seconds(50))
    XCTAssertEqual(fired.withLock { $0.map(\.0) }, [1, 2, 3, 4, 5])
    let none = try await loop.pendingTimerDeadlines()
    XCTAssertEqual(none, [])
  }

  func testRearmStopCancelAndRepeatingTimersFollowTheClock() async throws {
    let loop = self.loop!
    let start = loop.now
    let fired = Locked<[String]>([])
    let timers = try await loop.submit { () -> LoopConfined<[LoopTimer]> in
      let rearmed = try! loop.scheduleTimer(after: .seconds(10)) {
        fired.withLock { $0.append("rearmed") }
      }
      let stopped = try! loop.scheduleTimer(after: .seconds(5)) {
        fired.withLock { $0.append("stopped") }
      }
      let cancelled = try! loop.scheduleTimer(after: .seconds(5)) {
        fired.withLock { $0.append("cancelled") }
      }
      let repeating = try! loop.scheduleTimer(after: .seconds(4), repeating: true) {
        fired.withLock { $0.append("tick \(loop.now - start)") }
      }
      stopped.stop()
      cancelled.cancel()
      XCTAssertFalse(stopped.isScheduled)
      XCTAssertTrue(repeating.isScheduled)
      return LoopConfined([rearmed, stopped, cancelled, repeating])
    }
    try await loop.advanceTime(by: .seconds(8))
    // Counting from now (8 s): due at 15 s.
    try await loop.submit {
      timers.value[0].rearm(after: .seconds(7))
      timers.value[1].rearm()  // 5 s from now: 13 s
      timers.value[2].rearm()  // cancelled: stays silent
    }
    try await loop.advanceTime(by: .seconds(8))
    XCTAssertEqual(
      fired.withLock { $0 },
      [
        "tick 4.0 seconds", "tick 8.0 seconds", "tick 12.0 seconds", "stopped", "rearmed",
        "tick 16.0 seconds",
      ])
    let pending = try await loop.pendingTimerDeadlines()
    XCTAssertEqual(pending, [start + .seconds(20)], "only the repeating timer is left")
    try await loop.submit { timers.value[3].cancel() }
    let none = try await loop.pendingTimerDeadlines()
    XCTAssertEqual(none, [])
  }

  func testAZeroDelayTimerRunsWithoutAnAdvanceAndWorkQueuedByATimerRunsInTheAdvance() async throws {
    let loop = self.loop!
    let start = loop.now
    let events = Locked<[String]>([])
    let zero = Latch()
    try await loop.submit {
      _ = try! loop.scheduleTimer(after: .zero) {
        events.withLock { $0.append("zero") }
        zero.open()
      }
    }
    zero.waitOrFail("a zero-delay timer without an advance")
    try await loop.submit {
      _ = try! loop.scheduleTimer(after: .seconds(60)) {
        events.withLock { $0.append("60 s") }
        try! loop.execute { events.withLock { $0.append("queued by the timer") } }
        loop.runBeforeNextPoll { events.withLock { $0.append("before the poll") } }
        // Due within the same advance: runs in it, at its own deadline.
        _ = try! loop.scheduleTimer(after: .seconds(30)) {
          events.withLock { $0.append("chained at \(loop.now - start)") }
        }
      }
    }
    try await loop.advanceTime(by: .seconds(120))
    XCTAssertEqual(
      events.withLock { $0 },
      ["zero", "60 s", "queued by the timer", "before the poll", "chained at 90.0 seconds"])
    XCTAssertEqual(loop.now, start + .seconds(120))
  }

  func testTheSameScheduleGivesTheSameOrderOfEventsOnEveryRun() async throws {
    func run() async throws -> [String] {
      let loop = try EventLoop.virtualTime(threadName: "vt-replay")
      defer { loop.shutdown() }
      let start = loop.now
      let events = Locked<[String]>([])
      @Sendable func log(_ event: String) {
        events.withLock { $0.append("\(event)@\(loop.now - start)") }
      }
      try await loop.submit {
        for index in 0..<20 {
          let delay = Duration.seconds((index * 7) % 5)
          _ = try! loop.scheduleTimer(after: delay) {
            log("t\(index)")
            if index % 3 == 0 {
              _ = try! loop.scheduleTimer(after: .zero) { log("zero after t\(index)") }
            }
            if index % 4 == 0 { try! loop.execute { log("queued by t\(index)") } }
          }
        }
        _ = try! loop.scheduleTimer(after: .milliseconds(1500), repeating: true) { log("tick") }
      }
      for _ in 0..<4 { try await loop.advanceTime(by: .seconds(2)) }
      return events.withLock { $0 }
    }
    let first = try await run()
    XCTAssertEqual(first.count, 20 + 7 + 5 + 5)
    for _ in 0..<5 {
      let again = try await run()
      XCTAssertEqual(again, first)
    }
  }

  func testTheCallbackFormAdvancesAndTheClockIsReadableFromAnyThread() throws {
    let loop = self.loop!
    let start = loop.now
    let fired = Latch()
    let done = Latch()
    try onLoop(loop) { _ = try! loop.scheduleTimer(after: .seconds(3600)) { fired.open() } }
    loop.advanceTime(by: .seconds(3600)) { result in
      if case .failure(let error) = result { XCTFail("\(error)") }
      XCTAssertTrue(loop.inLoopThread)
      done.open()
    }
    done.waitOrFail("the callback form")
    fired.waitOrFail("the timer an hour later")
    XCTAssertEqual(loop.now - start, .seconds(3600))
    XCTAssertTrue(loop.hasVirtualTime)
  }

  // MARK: - Misuse: errors, never hangs

  func testAdvancingALoopOnRealTimeIsAnError() async throws {
    let real = try EventLoop(threadName: "vt-real")
    defer { real.shutdown() }
    XCTAssertFalse(real.hasVirtualTime)
    let advance = await failure { () async throws(MilvexError) in
      try await real.advanceTime(by: .seconds(1))
    }
    guard case .invalidArgument(let field, let message)? = advance else {
      return XCTFail("advanced a loop on real time: \(String(describing: advance))")
    }
    XCTAssertEqual(field, "EventLoop")
    XCTAssertTrue(message.contains("virtual time"), message)
    XCTAssertTrue(message.contains("real time, on its thread \"vt-real\""), message)
    let read = await failure { () async throws(MilvexError) in
      _ = try await real.pendingTimerDeadlines()
    }
    guard case .invalidArgument("EventLoop", _)? = read else {
      return XCTFail("read the schedule of a loop on real time: \(String(describing: read))")
    }
  }

  func testAdvancingAHostDrivenLoopThatNobodyRunsIsAnErrorNotAHang() async throws {
    // Never run and never shut down (its deinit releases it): a submission would wait forever.
    let host = try EventLoop.hostDriven()
    let advance = await failure { () async throws(MilvexError) in
      try await host.advanceTime(to: host.now + .seconds(1))
    }
    guard case .invalidArgument("EventLoop", let message)? = advance else {
      return XCTFail("advanced a host-driven loop: \(String(describing: advance))")
    }
    XCTAssertTrue(message.contains("host-driven"), message)
    let answered = Latch()
    host.advanceTime(by: .seconds(1)) { result in
      if case .failure(.invalidArgument) = result { answered.open() }
    }
    answered.waitOrFail("the callback form's answer, on the calling thread")
  }

  func testAdvancingBackwardsIsAnErrorThatNamesTheInstants() async throws {
    let loop = self.loop!
    try await loop.advanceTime(by: .seconds(10))
    let backwards = await failure { () async throws(MilvexError) in
      try await loop.advanceTime(to: loop.now - .seconds(4))
    }
    guard case .invalidArgument(let field, let message)? = backwards else {
      return XCTFail("moved backwards: \(String(describing: backwards))")
    }
    XCTAssertEqual(field, "advanceTime")
    XCTAssertTrue(message.contains("start + 6.0 seconds"), message)
    XCTAssertTrue(message.contains("start + 10.0 seconds"), message)
    XCTAssertTrue(message.contains("4.0 seconds before"), message)
    let negative = await failure { () async throws(MilvexError) in
      try await loop.advanceTime(by: .seconds(-1))
    }
    guard case .invalidArgument(let field, let message)? = negative else {
      return XCTFail("moved by a negative duration: \(String(describing: negative))")
    }
    XCTAssertEqual(field, "advanceTime(by:)")
    XCTAssertTrue(message.contains("negative"), message)
  }

  func testAdvancesFromSeveralTasksAndFromATimerCallbackRunOneAfterAnother() async throws {
    let loop = self.loop!
    let start = loop.now
    let fromCallback = Latch()
    let seen = Locked<[Duration]>([])
    try await loop.submit {
      _ = try! loop.scheduleTimer(after: .seconds(1)) {
        // The callback form inside an advance: it runs once that advance is over.
        loop.advanceTime(by: .seconds(100)) { result in
          if case .success = result { fromCallback.open() }
        }
      }
      for second in 1...50 {
        _ = try! loop.scheduleTimer(after: .seconds(second)) {
          seen.withLock { $0.append(loop.now - start) }
        }
      }
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<4 { group.addTask { try await loop.advanceTime(by: .seconds(5)) } }
      try await group.waitForAll()
    }
    fromCallback.waitOrFail("the advance asked for in a timer callback")
    let pending = try await loop.pendingTimerDeadlines()
    XCTAssertEqual(pending, [])
    XCTAssertEqual(seen.withLock { $0 }, (1...50).map { Duration.seconds($0) })
    XCTAssertGreaterThanOrEqual(loop.now - start, .seconds(100))
  }

  func testAdvancingFromATimerCallbackIsAnError() async throws {
    let loop = self.loop!
    let inner = Locked<MilvexError?>(nil)
    try await loop.submit {
      _ = try! loop.scheduleTimer(after: .seconds(1)) {
        do throws(MilvexError) {
          try loop.advanceVirtualTime(to: loop.now + .seconds(1))
        } catch {
          inner.withLock { $0 = error }
        }
      }
    }
    try await loop.advanceTime(by: .seconds(5))
    guard case .invalidArgument(let field, let message)? = inner.withLock({ $0 }) else {
      return XCTFail("a nested advance was not refused")
    }
    XCTAssertEqual(field, "advanceTime")
    XCTAssertTrue(message.contains("already advancing"), message)
  }

  func testATimerThatRearmsItselfAtOnceStopsTheAdvanceWithAnError() async throws {
    let loop = self.loop!
    let start = loop.now
    let looping = try await loop.submit { () -> LoopConfined<LoopTimer?> in
      let box = LoopConfined<LoopTimer?>(nil)
      box.value = try! loop.scheduleTimer(after: .seconds(1)) { box.value?.rearm(after: .zero) }
      return box
    }
    let wall = ContinuousClock.now
    let looped = await failure { () async throws(MilvexError) in
      try await loop.advanceTime(by: .seconds(10))
    }
    guard case .invalidArgument(let field, let message)? = looped else {
      return XCTFail("advanced past a timer that rearms itself: \(String(describing: looped))")
    }
    XCTAssertEqual(field, "advanceTime")
    XCTAssertTrue(message.contains("rearms itself with a zero delay"), message)
    XCTAssertTrue(message.contains("start + 1.0 seconds"), message)
    XCTAssertEqual(loop.now, start + .seconds(1), "the clock stopped at the looping instant")
    let stillScheduled = try await loop.submit { looping.value?.isScheduled == true }
    XCTAssertTrue(stillScheduled, "the timer that stopped the advance is not lost")
    XCTAssertLessThan(ContinuousClock.now - wall, .seconds(30))
    try await loop.submit { looping.value?.cancel() }
  }

  func testAdvancingALoopThatShutDownIsAnError() async throws {
    let loop = try EventLoop.virtualTime(threadName: "vt-down")
    loop.shutdown()
    let advance = await failure { () async throws(MilvexError) in
      try await loop.advanceTime(by: .seconds(1))
    }
    guard case .eventLoopShutDown? = advance else {
      return XCTFail("advanced a loop that shut down: \(String(describing: advance))")
    }
    let answered = Latch()
    loop.advanceTime(by: .seconds(1)) { result in
      if case .failure(.eventLoopShutDown) = result { answered.open() }
    }
    answered.waitOrFail("the callback form's answer")
  }

  func testShutdownDropsVirtualTimersWithoutFiringThem() async throws {
    let loop = try EventLoop.virtualTime(threadName: "vt-drop")
    let fired = Locked(false)
    try await loop.submit {
      _ = try! loop.scheduleTimer(after: .seconds(1)) { fired.withLock { $0 = true } }
      XCTAssertEqual(loop.activeWatcherCount, 1)
    }
    loop.shutdown()
    XCTAssertFalse(fired.withLock { $0 })
  }

  /// The error `body` throws, or nil.
  private func failure(_ body: () async throws(MilvexError) -> Void) async -> MilvexError? {
    do throws(MilvexError) {
      try await body()
      return nil
    } catch {
      return error
    }
  }
}
