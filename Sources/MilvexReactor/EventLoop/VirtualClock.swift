import CLibEV

/// The manual clock of a loop created with virtual time (MilvexTesting's
/// `EventLoop.virtualTime(threadName:)`): its instant starts at the real instant the loop was
/// created and moves only when a test advances it; the loop's timers wait in a
/// ``VirtualTimerQueue`` instead of libev's timer heap.
///
/// A timer scheduled due at or before the current instant (a zero delay, a deadline already
/// passed) does not wait for the test: a real zero-delay `ev_timer`, the *pump*, runs it in the
/// next loop iteration, as libev runs a real zero-delay timer, and the same way an advance
/// does (``EventLoop/runVirtualTimers(upTo:on:)``), so that the order of events does not
/// depend on which of the two ran them.
///
/// - Important: ``now`` is readable from any thread; everything else is loop-thread-only.
package final class VirtualClock: @unchecked Sendable {
  // @unchecked Sendable: `current` is a lock; the rest is touched on the loop thread only,
  // through the loop-thread-only methods of EventLoop and LoopTimer (which check the thread)
  // and the pump's callback, which libev runs on the loop thread.

  /// The instant the clock started at: the real instant its loop was created.
  package let origin: ContinuousClock.Instant
  private let current: LockedState<ContinuousClock.Instant>

  private let rawLoop: OpaquePointer
  private var queue = VirtualTimerQueue<ObjectIdentifier>()
  /// The scheduled timers, retained while scheduled (the loop retains them too, as watchers).
  private var timers: [ObjectIdentifier: LoopTimer] = [:]
  private let pump: UnsafeMutablePointer<ev_timer>
  /// True while the loop thread advances the clock: timers then fall due in the advance, not
  /// through the pump.
  var advancing = false
  /// Advances and reads a test asked for that reached the loop during an advance (its work
  /// drains the submission queue): they run once it is over, in the order they came.
  var afterAdvance: [() -> Void] = []

  init(rawLoop: OpaquePointer) {
    let start = ContinuousClock.now
    origin = start
    current = LockedState(start)
    self.rawLoop = rawLoop
    pump = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
    clibev_timer_init(
      pump,
      { _, raw, _ in
        guard let data = raw?.pointee.data else { return }
        Unmanaged<EventLoop>.fromOpaque(data).takeUnretainedValue().runDueVirtualTimers()
      }, 0, 0)
  }

  /// Points the pump at its loop, which owns the clock (so the pointer never outlives it).
  func attach(to loop: EventLoop) {
    pump.pointee.data = Unmanaged.passUnretained(loop).toOpaque()
  }

  deinit {
    pump.deallocate()
  }

  /// The clock's instant. Any thread.
  package var now: ContinuousClock.Instant { current.withLock { $0 } }

  /// Moves the clock forward to `instant` (never backwards). Loop thread.
  func move(to instant: ContinuousClock.Instant) {
    current.withLock { $0 = max($0, instant) }
  }

  /// The deadlines of the scheduled timers, earliest first. Loop thread.
  var pendingDeadlines: [ContinuousClock.Instant] { queue.deadlines }

  func isScheduled(_ timer: LoopTimer) -> Bool {
    queue.isScheduled(ObjectIdentifier(timer))
  }

  /// Schedules `timer` at `deadline`, replacing its previous deadline. Loop thread.
  func schedule(_ timer: LoopTimer, at deadline: ContinuousClock.Instant) {
    let id = ObjectIdentifier(timer)
    queue.schedule(id, at: deadline)
    timers[id] = timer
    if deadline <= now { startPump() }
  }

  /// Unschedules `timer`. Loop thread.
  func cancel(_ timer: LoopTimer) {
    let id = ObjectIdentifier(timer)
    queue.cancel(id)
    timers[id] = nil
  }

  /// Removes and returns the timer that falls due first, at or before `instant`. Loop thread.
  func popDue(
    atOrBefore instant: ContinuousClock.Instant
  ) -> (timer: LoopTimer, deadline: ContinuousClock.Instant)? {
    guard let (id, deadline) = queue.popDue(atOrBefore: instant),
      let timer = timers.removeValue(forKey: id)
    else { return nil }
    return (timer, deadline)
  }

  /// Loop shutdown: forgets every timer (the loop stops them), stops the pump, and runs the
  /// requests waiting for an advance to end (they fail: the loop has shut down).
  func shutDown() {
    ev_timer_stop(rawLoop, pump)
    queue.removeAll()
    timers = [:]
    // Answered now (the loop has shut down), never left waiting.
    let waiting = afterAdvance
    afterAdvance = []
    for body in waiting { body() }
  }

  private func startPump() {
    guard !advancing, clibev_is_active(pump) == 0 else { return }
    clibev_timer_set(pump, 0, 0)
    ev_timer_start(rawLoop, pump)
  }

  /// Starts the pump if a timer is due now (after an advance that stopped early). Loop thread.
  func startPumpIfDue() {
    if let earliest = queue.earliestDeadline(), earliest <= now { startPump() }
  }
}
