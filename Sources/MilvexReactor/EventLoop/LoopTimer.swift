import CLibEV

/// A timer on an ``EventLoop``: fires its callback once after a delay, or every interval,
/// until cancelled.
///
/// ``rearm()`` restarts the countdown from now with `ev_timer_again` semantics, which makes
/// the timer cheap to use as an inactivity timer (reset on every read, fire when quiet).
///
/// The loop keeps a scheduled timer alive; once it fired (one-shot) or was cancelled, only
/// your references keep it. The callback is released by ``cancel()`` and at loop shutdown;
/// a callback that must refer to its own timer should capture it `weak`.
///
/// On a loop with virtual time (MilvexTesting), the timer follows the loop's manual clock:
/// it waits in the loop's virtual schedule instead of libev's, and falls due when a test
/// advances the clock past its deadline.
///
/// - Important: Loop-confined: create, rearm and cancel it on the loop thread only. The
///   callback runs on the loop thread.
public final class LoopTimer: LoopWatcher {
  private let loop: EventLoop
  /// The loop's virtual clock when the timer follows it; nil for a timer on libev's heap.
  private let virtualClock: VirtualClock?
  private let watcher: UnsafeMutablePointer<ev_timer>
  @exclusivity(unchecked) private var callback: (() -> Void)?
  private let repeats: Bool
  /// The delay that ``rearm()`` counts down from.
  public private(set) var interval: Duration

  init(
    loop: EventLoop, after delay: Duration, repeats: Bool, clock: TimerClock,
    callback: @escaping () -> Void
  ) {
    self.loop = loop
    switch clock {
    case .loop: virtualClock = loop.virtualClock
    case .wall: virtualClock = nil
    }
    self.repeats = repeats
    self.interval = delay
    self.callback = callback
    watcher = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
    // `repeat` always holds the interval so that `ev_timer_again` can restart the timer;
    // one-shot timers stop themselves after firing.
    clibev_timer_init(
      watcher,
      { _, raw, _ in
        guard let data = raw?.pointee.data else { return }
        Unmanaged<LoopTimer>.fromOpaque(data).takeUnretainedValue().fire()
      }, evSeconds(delay), evSeconds(delay))
    watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
  }

  deinit {
    // Only an inactive timer can be deinitialised: the loop retains active ones.
    watcher.deallocate()
  }

  /// Whether the timer will fire (it is counting down).
  public var isScheduled: Bool {
    if let virtualClock { return virtualClock.isScheduled(self) }
    return clibev_is_active(watcher) != 0
  }

  func start() {
    if let virtualClock {
      virtualClock.schedule(self, at: virtualClock.now + interval)
      loop.register(self)
      return
    }
    // libev measures the delay from its cached loop time, which lags while callbacks run;
    // refresh it so that the delay is never shorter than asked for.
    ev_now_update(loop.rawLoop)
    ev_timer_start(loop.rawLoop, watcher)
    loop.register(self)
  }

  private func fire() {
    // libev has already stopped a timer whose `repeat` is zero (a one-shot, or a rearm with a
    // zero delay); the loop must then drop its reference too.
    if !repeats || watcher.pointee.repeat <= 0 {
      ev_timer_stop(loop.rawLoop, watcher)
      loop.unregister(self)
    }
    callback?()
  }

  /// Virtual time: the clock reached `deadline`, this timer's deadline, and unscheduled it.
  /// A repeating timer keeps its cadence (the next deadline is one interval after this one),
  /// as a repeating `ev_timer` does.
  func fireVirtual(dueAt deadline: ContinuousClock.Instant) {
    if repeats && interval > .zero, let virtualClock {
      virtualClock.schedule(self, at: deadline + interval)
    } else {
      loop.unregister(self)
    }
    callback?()
  }

  /// Stops the timer; it does not fire until rearmed. Releases nothing else: ``rearm()`` can
  /// start it again with the same callback. Idempotent.
  ///
  /// - Important: Loop thread only.
  public func stop() {
    loop.assertInLoopThread()
    guard isScheduled else { return }
    if let virtualClock {
      virtualClock.cancel(self)
    } else {
      ev_timer_stop(loop.rawLoop, watcher)
    }
    loop.unregister(self)
  }

  /// Stops the timer for good and releases its callback. Idempotent.
  ///
  /// - Important: Loop thread only.
  public func cancel() {
    stop()
    callback = nil
  }

  /// Restarts the countdown: the timer fires ``interval`` from now (once, or then every
  /// interval if repeating), whether it was scheduled, already fired or stopped. A zero
  /// interval fires in the next loop iteration, once (a zero interval cannot repeat).
  /// Does nothing after ``cancel()`` or after the loop shut down.
  ///
  /// - Important: Loop thread only.
  public func rearm() {
    loop.assertInLoopThread()
    guard callback != nil, loop.acceptsWatchers else { return }
    if let virtualClock {
      virtualClock.schedule(self, at: virtualClock.now + interval)
      loop.register(self)
      return
    }
    ev_now_update(loop.rawLoop)
    let seconds = evSeconds(interval)
    if seconds > 0 {
      watcher.pointee.repeat = seconds
      ev_timer_again(loop.rawLoop, watcher)
    } else {
      // `ev_timer_again` *stops* a timer whose repeat is 0 (man 3 ev), which would leave a
      // deadline that is due now unserved for good. Start it as a timer due at once instead.
      ev_timer_stop(loop.rawLoop, watcher)
      clibev_timer_set(watcher, 0, 0)
      ev_timer_start(loop.rawLoop, watcher)
    }
    loop.register(self)
  }

  /// Sets a new interval and restarts the countdown from now (see ``rearm()``). A zero or
  /// negative delay means "as soon as possible": the timer fires in the next loop iteration.
  ///
  /// - Important: Loop thread only.
  public func rearm(after delay: Duration) {
    loop.assertInLoopThread()
    interval = max(.zero, delay)
    rearm()
  }

  func stopForShutdown() {
    if let virtualClock {
      virtualClock.cancel(self)
    } else {
      ev_timer_stop(loop.rawLoop, watcher)
    }
    callback = nil
  }
}

extension EventLoop {
  /// Schedules `callback` to run once after `delay` (or every `delay` when `repeating`).
  ///
  /// The callback never runs earlier than `delay` after this call.
  ///
  /// - Important: Loop thread only; `callback` runs on the loop thread.
  /// - Throws: ``MilvexError/eventLoopShutDown(operation:)`` after the loop shut down, and
  ///   ``MilvexError/invalidArgument(field:message:)`` for a negative delay, or a zero delay
  ///   on a repeating timer.
  public func scheduleTimer(
    after delay: Duration, repeating: Bool = false, _ callback: @escaping () -> Void
  ) throws(MilvexError) -> LoopTimer {
    try scheduleTimer(after: delay, repeating: repeating, clock: .loop, callback)
  }

  /// ``scheduleTimer(after:repeating:_:)`` on `clock`: `.wall` keeps a timer on real time on a
  /// loop with virtual time, for a deadline that another party measures on real time (c-ares
  /// asks to be called back when its own retransmission timer runs out).
  ///
  /// - Important: Loop thread only; `callback` runs on the loop thread.
  func scheduleTimer(
    after delay: Duration, repeating: Bool = false, clock: TimerClock,
    _ callback: @escaping () -> Void
  ) throws(MilvexError) -> LoopTimer {
    assertInLoopThread()
    guard acceptsWatchers else { throw .eventLoopShutDown(operation: "scheduleTimer") }
    guard delay >= .zero else {
      throw .invalidArgument(field: "delay", message: "must not be negative (got \(delay))")
    }
    guard !repeating || delay > .zero else {
      throw .invalidArgument(field: "delay", message: "a repeating timer needs a delay above zero")
    }
    let timer = LoopTimer(
      loop: self, after: delay, repeats: repeating, clock: clock, callback: callback)
    timer.start()
    return timer
  }
}

/// Which clock a ``LoopTimer`` follows.
enum TimerClock {
  /// The loop's clock: real time, or the manual clock of a loop with virtual time.
  case loop
  /// Real time always, even on a loop with virtual time.
  case wall
}
