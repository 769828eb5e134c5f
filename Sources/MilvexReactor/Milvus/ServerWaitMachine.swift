/// The decisions of one wait for the server (a flush, an index build, a load, a compaction, a
/// database switch): run a check, wait between checks, report progress, end at the deadline,
/// on cancellation or with the check's failure, exactly once.
///
/// A pure value type, like ``CallRunMachine``: every event is a `mutating func` that returns
/// the ``Action``s to execute, in order. It performs no I/O, starts no timer and reads no
/// clock: time is a `Duration` since the wait started, handed in by ``ServerWait``, which runs
/// the checks (Milvus calls) and the poll timer on the loop.
///
/// Rules it keeps:
/// - A wait is a chain of checks; a check answers finished, pending (with the progress the
///   server reports now), step done (the request that starts the work, or one of several
///   things awaited in turn, is done: the next check runs at once), or failed.
/// - Between pending checks it waits 50 ms, then × 1.5 up to 1 s (``RetryDelays`` without
///   jitter), never past the deadline; a step done starts the schedule again.
/// - Progress is reported only when it differs from the last report of the same step.
/// - At the deadline the wait fails with `DEADLINE_EXCEEDED`: "*what* did not finish in time
///   (*last progress*)"; a check that itself fails with `DEADLINE_EXCEEDED` at or after the
///   deadline (its timeout is what remained) ends the wait with the same words.
/// - Cancelled, the wait fails at once with `CANCELLED`: "waiting for *what* was cancelled";
///   the check in flight is cancelled, the timer stopped.
/// - Exactly one terminal action (``Action/succeed(_:)`` or ``Action/fail(_:)``); every event
///   after it (a late answer, a stray timer) returns no action, so no check runs after it.
///
/// - Important: Not thread-safe (a value type). ``ServerWait`` keeps it on the loop thread.
struct ServerWaitMachine<Progress: Equatable> {
  /// How a check ended.
  enum Answer: Equatable {
    /// The awaited work has finished; `progress` is the server's last report of it (nil:
    /// none), which the wait succeeds with.
    case finished(Progress?)
    /// Not finished yet; `progress` is what the server reports now (nil: nothing new).
    case pending(Progress?)
    /// A step is done (the request that starts the work, or one of several things awaited in
    /// turn): run the next check at once, now awaiting `what`.
    case stepDone(awaiting: String)
    /// The check failed (a Milvus, gRPC or connection error, or a failed build).
    case failed(MilvexError)
  }

  /// What ``ServerWait`` does for the machine.
  enum Action: Equatable {
    /// Run the current check with `timeout` (what remains of the deadline) and report
    /// ``checkAnswered(_:now:)``.
    case runCheck(timeout: Duration)
    /// Hand `progress` to the caller's progress callback.
    case report(Progress)
    /// Start the poll timer of `delay`; report ``timerFired(now:)`` (or ``timerFailed(_:)``
    /// if it cannot start), and until then pass a loop shutdown to ``loopShutDown()``.
    case wait(Duration)
    /// Cancel the check in flight; its late answer is ignored.
    case cancelCheck
    /// Stop the poll timer and stop listening for the loop's shutdown.
    case cancelTimer
    /// Terminal: the wait succeeded with the last progress (nil: none).
    case succeed(Progress?)
    /// Terminal: the wait failed with this error.
    case fail(MilvexError)
  }

  /// ```
  ///   idle ─start─▶ checking ─pending─▶ waiting ─timer fired─▶ checking
  ///                   │  ▲ step done: at once                     │
  ///                   │  └────────────────────────────────────────┘
  ///                   └─finished─▶ done
  ///   any state ─cancel, failure, deadline, loop shut down─▶ done (terminal: every
  ///   later event is ignored)
  /// ```
  private enum State: Equatable {
    /// Created; ``start(now:)`` has not run.
    case idle
    /// A check is running.
    case checking
    /// The poll timer is running.
    case waiting
    /// Terminal: the outcome was delivered.
    case done
  }

  private var state: State = .idle
  /// What is awaited now, named in the deadline and cancellation errors.
  private(set) var what: String
  /// How long the wait may take, from ``start(now:)``.
  let timeout: Duration
  /// When the wait fails with `DEADLINE_EXCEEDED` (set by ``start(now:)``).
  private(set) var deadline: Duration = .zero
  /// The delays between pending checks.
  private var delays: RetryDelays
  /// The last progress reported in this step.
  private(set) var lastProgress: Progress?
  /// The last progress in words, for the deadline error (nil: none worth saying).
  private let describe: (Progress) -> String?

  /// A wait for `what` that may take `timeout`, polling after 50 ms, then × 1.5 up to 1 s.
  ///
  /// - Parameters:
  ///   - what: what is awaited first, as the errors name it ("the flush of collection 'c'").
  ///   - timeout: how long the whole wait may take.
  ///   - firstDelay: the first delay between pending checks.
  ///   - maxDelay: the longest delay between pending checks.
  ///   - multiplier: how each delay grows from the one before.
  ///   - describe: the progress in words for the deadline error ("3 of 4 rows indexed").
  init(
    what: String, timeout: Duration, firstDelay: Duration = .milliseconds(50),
    maxDelay: Duration = .seconds(1), multiplier: Double = 1.5,
    describe: @escaping (Progress) -> String? = { _ in nil }
  ) {
    self.what = what
    self.timeout = timeout
    self.delays = RetryDelays(base: firstDelay, max: maxDelay, multiplier: multiplier)
    self.describe = describe
  }

  /// Whether the wait has delivered its outcome.
  var isFinished: Bool { state == .done }

  // MARK: - Events

  /// Begins the wait with its first check; a timeout that is not positive fails it at once.
  /// Later calls do nothing.
  mutating func start(now: Duration) -> [Action] {
    switch state {
    case .idle:
      guard timeout > .zero else {
        return finish(
          .invalidArgument(field: "timeout", message: "must be positive, is \(timeout)"))
      }
      deadline = now + timeout
      return runCheck(now: now)
    case .checking, .waiting, .done:
      return []
    }
  }

  /// The check from ``Action/runCheck(timeout:)`` ended with `answer`.
  mutating func checkAnswered(_ answer: Answer, now: Duration) -> [Action] {
    switch state {
    case .checking:
      switch answer {
      case .finished(let progress):
        let report = reporting(progress)
        state = .done
        return report + [.succeed(progress ?? lastProgress)]
      case .pending(let progress):
        let report = reporting(progress)
        let remaining = deadline - now
        guard remaining > .zero else { return report + finish(deadlineExceeded) }
        state = .waiting
        return report + [.wait(min(delays.next(), remaining))]
      case .stepDone(let next):
        what = next
        lastProgress = nil
        delays.reset()
        return runCheck(now: now)
      case .failed(let error):
        if now >= deadline, error.isDeadlineExceeded { return finish(deadlineExceeded) }
        return finish(error)
      }
    case .idle, .waiting, .done:
      return []
    }
  }

  /// The poll timer from ``Action/wait(_:)`` fired: runs the next check, unless the deadline
  /// has passed.
  mutating func timerFired(now: Duration) -> [Action] {
    switch state {
    case .waiting:
      return runCheck(now: now)
    case .idle, .checking, .done:
      return []
    }
  }

  /// The poll timer could not start (the loop is shutting down): the wait fails with `error`.
  mutating func timerFailed(_ error: MilvexError) -> [Action] {
    switch state {
    case .waiting:
      return finish(error)
    case .idle, .checking, .done:
      return []
    }
  }

  /// The caller cancelled: the wait ends with `CANCELLED` at once, whatever it is doing.
  mutating func cancel() -> [Action] {
    let cancelled = MilvexError.status(.cancelled, "waiting for \(what) was cancelled")
    switch state {
    case .idle:
      return finish(cancelled)
    case .checking:
      return [.cancelCheck] + finish(cancelled)
    case .waiting:
      return [.cancelTimer] + finish(cancelled)
    case .done:
      return []
    }
  }

  /// The loop is shutting down. Only a wait on its timer has nothing that would end it (the
  /// timer never fires); a check in flight reports the shutdown as its failure.
  mutating func loopShutDown() -> [Action] {
    switch state {
    case .waiting:
      return [.cancelTimer] + finish(.eventLoopShutDown(operation: "waiting for \(what)"))
    case .idle, .checking, .done:
      return []
    }
  }

  // MARK: - Steps

  private var deadlineExceeded: MilvexError {
    let progress = lastProgress.flatMap(describe).map { " (\($0))" } ?? ""
    return .status(.deadlineExceeded, "\(what) did not finish in time\(progress)")
  }

  /// Runs the check with what remains, or fails if nothing remains.
  private mutating func runCheck(now: Duration) -> [Action] {
    let remaining = deadline - now
    guard remaining > .zero else { return finish(deadlineExceeded) }
    state = .checking
    return [.runCheck(timeout: remaining)]
  }

  /// Reports `progress` if it is new.
  private mutating func reporting(_ progress: Progress?) -> [Action] {
    guard let progress, progress != lastProgress else { return [] }
    lastProgress = progress
    return [.report(progress)]
  }

  private mutating func finish(_ error: MilvexError) -> [Action] {
    state = .done
    return [.fail(error)]
  }
}

extension MilvexError {
  /// Whether this is a `DEADLINE_EXCEEDED` status.
  var isDeadlineExceeded: Bool {
    if case .grpcStatus(let status) = self { return status.code == .deadlineExceeded }
    return false
  }
}
