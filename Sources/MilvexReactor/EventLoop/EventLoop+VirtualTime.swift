/// Moving a virtual-time loop's clock (MilvexTesting's `advanceTime(by:)`/`advanceTime(to:)`).
extension EventLoop {
  /// How many timers may fall due at one instant in one advance before it stops with an error:
  /// past this, a timer is rearming itself with a zero delay, and the advance would never end.
  static let virtualTimersPerInstantLimit = 100_000

  /// How many rounds of queued closures and before-poll tasks run after each timer before the
  /// advance moves on (the rest runs in the loop's next iteration).
  static let virtualSettleRounds = 1_000

  /// Moves the virtual clock to `target`: runs every timer that falls due at or before it, in
  /// deadline order (ties in the order they were scheduled), each at its own deadline, and
  /// after each the closures and before-poll tasks it queued, timers included that they
  /// schedule due at or before `target`. I/O is not polled meanwhile: what a timer sent to a
  /// socket is answered in the loop's later iterations, in real time.
  ///
  /// - Important: Loop thread only, never from a timer callback or work run by an advance
  ///   (nor while another advance runs).
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` on a loop on real time, for a
  ///   target before the clock's instant, or when called during an advance;
  ///   ``MilvexError/eventLoopShutDown(operation:)`` once the loop has shut down.
  package func advanceVirtualTime(to target: ContinuousClock.Instant) throws(MilvexError) {
    preconditionInLoopThread()
    let clock = try requireVirtualClock(operation: "advanceTime")
    let now = clock.now
    guard target >= now else {
      throw .invalidArgument(
        field: "advanceTime",
        message:
          "time cannot move backwards: the target \(describe(target, on: clock)) is "
          + "\(now - target) before the loop's now, \(describe(now, on: clock))")
    }
    guard !clock.advancing else {
      throw .invalidArgument(
        field: "advanceTime",
        message:
          "called while the loop is already advancing time (from a timer callback, work it "
          + "queued, or another task advancing at the same time); advance from one task, "
          + "after the previous advance returned")
    }
    try runVirtualTimers(upTo: target, on: clock)
    clock.move(to: target)
  }

  /// Runs `body` now, or once the advance under way is over when the loop is advancing: a
  /// test's request that the advance's draining of the submission queue reached (from another
  /// task, or the callback form used in a timer callback) waits for it instead of failing.
  ///
  /// - Important: Loop thread only; `body` runs on the loop thread.
  package func whenNotAdvancingTime(_ body: @escaping () -> Void) {
    preconditionInLoopThread()
    guard let virtualClock, virtualClock.advancing else { return body() }
    virtualClock.afterAdvance.append(body)
  }

  /// The pump fired (see ``VirtualClock``): runs the timers due now, as an advance to now
  /// would. Loop thread.
  func runDueVirtualTimers() {
    guard let virtualClock, !virtualClock.advancing, acceptsWatchers else { return }
    // A timer that keeps rearming itself at once stops this round; the pump runs it again in
    // the next iteration, as libev would.
    try? runVirtualTimers(upTo: virtualClock.now, on: virtualClock)
  }

  /// Runs every timer due at or before `target`, in order, each with the clock at its deadline,
  /// and after each the work it queued. The core of an advance and of the pump.
  func runVirtualTimers(
    upTo target: ContinuousClock.Instant, on clock: VirtualClock
  ) throws(MilvexError) {
    clock.advancing = true
    defer {
      clock.advancing = false
      if acceptsWatchers { clock.startPumpIfDue() }
      let waiting = clock.afterAdvance
      clock.afterAdvance = []
      for body in waiting { body() }
    }
    settleVirtualTimeWork()
    var firedAtInstant = 0
    while acceptsWatchers, let (timer, deadline) = clock.popDue(atOrBefore: target) {
      if deadline > clock.now {
        clock.move(to: deadline)
        firedAtInstant = 0
      }
      firedAtInstant += 1
      guard firedAtInstant <= Self.virtualTimersPerInstantLimit else {
        // Back where it was: it runs in the loop's next iteration, as on real time.
        clock.schedule(timer, at: deadline)
        throw .invalidArgument(
          field: "advanceTime",
          message:
            "more than \(Self.virtualTimersPerInstantLimit) timers fell due at "
            + "\(describe(deadline, on: clock)): a timer rearms itself with a zero delay; "
            + "the clock stopped there")
      }
      timer.fireVirtual(dueAt: deadline)
      settleVirtualTimeWork()
    }
  }

  /// The deadlines of the pending timers of a loop with virtual time, earliest first.
  ///
  /// - Important: Loop thread only.
  /// - Throws: as ``advanceVirtualTime(to:)`` for a loop on real time or shut down.
  package func pendingVirtualTimerDeadlines() throws(MilvexError) -> [ContinuousClock.Instant] {
    preconditionInLoopThread()
    return try requireVirtualClock(operation: "pendingTimerDeadlines").pendingDeadlines
  }

  /// The error for `operation` on a loop on real time; nil on a loop with virtual time. Any
  /// thread: a test gets it at once, without waiting for a loop that may not be running.
  package func realTimeError(operation: String) -> MilvexError? {
    guard virtualClock == nil else { return nil }
    let mode: String
    switch self.mode {
    case .dedicatedThread(let name): mode = "on real time, on its thread \"\(name)\""
    case .hostDriven: mode = "on real time, host-driven"
    case .embedded: mode = "on real time, embedded in the host's libev loop"
    }
    return .invalidArgument(
      field: "EventLoop",
      message:
        "\(operation) needs a loop with virtual time (EventLoop.virtualTime(threadName:) in "
        + "MilvexTesting); this loop runs \(mode)")
  }

  private func requireVirtualClock(operation: String) throws(MilvexError) -> VirtualClock {
    if let error = realTimeError(operation: operation) { throw error }
    guard let virtualClock, acceptsWatchers else { throw .eventLoopShutDown(operation: operation) }
    return virtualClock
  }

  /// Runs what the last timer queued: closures submitted to the loop and before-poll tasks
  /// (which may submit more), without polling I/O.
  private func settleVirtualTimeWork() {
    for _ in 0..<Self.virtualSettleRounds {
      guard acceptsWatchers, hasQueuedWork else { return }
      drainQueue()
      runBeforePollWork()
    }
  }

  private func describe(_ instant: ContinuousClock.Instant, on clock: VirtualClock) -> String {
    "start + \(instant - clock.origin)"
  }
}
