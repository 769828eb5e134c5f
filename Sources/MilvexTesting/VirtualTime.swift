import MilvexReactor

/// Virtual time: an `MilvexReactor/EventLoop` whose timers follow a manual clock that the
/// test moves.
///
/// Every timer and every time-based decision of the library on that loop follows the clock:
/// reconnect backoff, connect and handshake timeouts, keepalive PINGs and their timeouts, call
/// deadlines, wait-for-ready deadlines, health probes, channel recycling, address refresh,
/// retry delays, the waits of `MilvusClient`, and `MilvexReactor/EventLoop/now`. A 60 s
/// backoff or a 30-day deadline passes in one `advanceTime(by:)`.
///
/// What stays real: socket I/O (connects, reads and writes complete in real time, on
/// loopback in milliseconds), the peer's own timers, DNS lookups by c-ares (their
/// retransmissions included), the operating system's TCP timeouts, and anything measured on
/// other threads (`MilvexReactor/Connection/isConnected(timeout:)`'s watchdog). The
/// `grpc-timeout` a call sends carries its virtual remaining time, which the server measures
/// on its own clock.
///
/// ```swift
/// let loop = try EventLoop.virtualTime()
/// let connection = try Connection.start(config: config, on: loop)
/// // … the server is down: the next attempt waits for the 60 s backoff.
/// try await loop.advanceTime(by: .seconds(60))  // the attempt starts now
/// ```
extension EventLoop {
  /// Starts a loop on a new thread whose timers follow a manual clock: real I/O, virtual time.
  ///
  /// The clock starts at the real instant of the call and moves only by
  /// `advanceTime(by:)` and `advanceTime(to:)`. A timer due at or before the clock's
  /// instant (a zero delay) runs in the loop's next iteration without waiting for the test.
  ///
  /// - Parameter threadName: the loop thread's name (truncated to 15 bytes).
  /// - Returns: a dedicated-thread loop; shut it down with `MilvexReactor/EventLoop/shutdown()`.
  /// - Throws: `MilvexReactor/MilvexError/invalidArgument(field:message:)` if libev cannot
  ///   create a loop or the thread cannot be started.
  /// - Important: Callable from any thread.
  public static func virtualTime(threadName: String = "milvex-vtime") throws(MilvexError)
    -> EventLoop
  {
    try EventLoop(threadName: threadName, virtualTime: true)
  }

  /// Whether the loop's timers follow a manual clock (`virtualTime(threadName:)`).
  ///
  /// - Important: Callable from any thread.
  public var hasVirtualTime: Bool { virtualClock != nil }

  /// Moves the clock forward by `duration` (see `advanceTime(to:)`).
  ///
  /// - Important: Callable from any task; the timers run on the loop thread before this
  ///   returns.
  /// - Throws: `MilvexReactor/MilvexError/invalidArgument(field:message:)` for a negative
  ///   duration or a loop on real time; as `advanceTime(to:)` otherwise.
  public func advanceTime(by duration: Duration) async throws(MilvexError) {
    try checkAdvance(by: duration)
    try await onLoopBetweenAdvances { [self] () throws(MilvexError) in
      try advanceVirtualTime(to: now + duration)
    }
  }

  /// Moves the clock forward to `instant`, running every timer that falls due on the way.
  ///
  /// The timers run in deadline order (ties in the order they were scheduled), each with the
  /// clock at its own deadline; after each, the closures and before-poll work it queued run
  /// too, and so do the timers they schedule due at or before `instant`. Returns when nothing
  /// is due at or before `instant` and the clock reads `instant`. I/O is not polled during
  /// the advance: bytes a timer sent are answered afterwards, in real time, so a test that
  /// needs a peer's answer between two deadlines advances in two steps.
  ///
  /// - Important: Callable from any task; the timers run on the loop thread before this
  ///   returns.
  /// - Throws: `MilvexReactor/MilvexError/invalidArgument(field:message:)` on a loop on real
  ///   time, for an instant before the clock's, and for a timer that keeps rearming itself
  ///   with a zero delay (the clock then stops at that instant);
  ///   `MilvexReactor/MilvexError/eventLoopShutDown(operation:)` once the loop has shut down.
  public func advanceTime(to instant: ContinuousClock.Instant) async throws(MilvexError) {
    if let error = realTimeError(operation: "advanceTime") { throw error }
    try await onLoopBetweenAdvances { [self] () throws(MilvexError) in
      try advanceVirtualTime(to: instant)
    }
  }

  /// Callback form of `advanceTime(by:)`, for tests that are not `async`.
  ///
  /// - Important: Callable from any thread (from a timer callback too: the advance then runs
  ///   once the one under way is over); `completion` runs on the loop thread, or at once on
  ///   the calling thread for a negative duration, a loop on real time, or a loop that has
  ///   shut down.
  public func advanceTime(
    by duration: Duration, _ completion: @escaping @Sendable (Result<Void, MilvexError>) -> Void
  ) {
    do throws(MilvexError) {
      try checkAdvance(by: duration)
      try execute { [self] in
        whenNotAdvancingTime { [self] in
          completion(
            Result { () throws(MilvexError) in try advanceVirtualTime(to: now + duration) })
        }
      }
    } catch {
      completion(.failure(error))
    }
  }

  /// The deadlines of the loop's pending timers, earliest first: the schedule the library set
  /// (the next reconnect attempt, keepalive check, call deadline, …).
  ///
  /// - Important: Callable from any task; read on the loop thread.
  /// - Throws: `MilvexReactor/MilvexError/invalidArgument(field:message:)` on a loop on real
  ///   time; `MilvexReactor/MilvexError/eventLoopShutDown(operation:)` once it has shut down.
  public func pendingTimerDeadlines() async throws(MilvexError) -> [ContinuousClock.Instant] {
    if let error = realTimeError(operation: "pendingTimerDeadlines") { throw error }
    return try await onLoopBetweenAdvances { [self] () throws(MilvexError) in
      try pendingVirtualTimerDeadlines()
    }
  }

  /// Runs `body` on the loop thread, after the advance under way if there is one (another
  /// task's), and returns its outcome.
  private func onLoopBetweenAdvances<T: Sendable>(
    _ body: @escaping @Sendable () throws(MilvexError) -> T
  ) async throws(MilvexError) -> T {
    let result = await withCheckedContinuation {
      (continuation: CheckedContinuation<Result<T, MilvexError>, Never>) in
      do throws(MilvexError) {
        try execute { [self] in
          whenNotAdvancingTime { continuation.resume(returning: Result(catching: body)) }
        }
      } catch {
        continuation.resume(returning: .failure(error))
      }
    }
    return try result.get()
  }

  /// Answers at once, on the calling thread, what needs no loop: a loop on real time (which
  /// may be a host-driven loop nobody runs), a negative duration.
  private func checkAdvance(by duration: Duration) throws(MilvexError) {
    if let error = realTimeError(operation: "advanceTime") { throw error }
    guard duration >= .zero else {
      throw .invalidArgument(
        field: "advanceTime(by:)",
        message: "time cannot move backwards: the duration is negative (\(duration))")
    }
  }
}
