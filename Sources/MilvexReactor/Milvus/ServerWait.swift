/// One wait for the server on the loop: executes the actions of its ``ServerWaitMachine``
/// (run a check, start the poll timer, report progress, complete) and reports each outcome
/// back to it as an event. The decisions live in the machine; this class holds what the
/// machine cannot (the check, the call in flight, the timer, the callbacks) and reads the clock.
///
/// A check is a closure that performs its Milvus calls through ``perform(_:timeout:_:)``
/// (so that a cancel reaches the call in flight) and ends with ``answer(_:)``.
///
/// - Important: Loop-confined: created, started, cancelled and completed on the loop thread.
///   The pending call or timer keeps it alive; the caller's handle holds it weakly.
final class ServerWait<Progress: Equatable> {
  typealias Machine = ServerWaitMachine<Progress>
  /// Runs one check within `timeout`, ending with ``answer(_:)`` on the wait it is given.
  typealias Check = (_ wait: ServerWait<Progress>, _ timeout: Duration) -> Void

  let client: MilvusClient
  private let startedAt: ContinuousClock.Instant
  @exclusivity(unchecked) private var machine: Machine
  @exclusivity(unchecked) private var check: Check?
  @exclusivity(unchecked) private var progress: ((Progress) -> Void)?
  @exclusivity(unchecked) private var completion: ((Result<Progress?, MilvexError>) -> Void)?
  /// The Milvus call the running check waits for.
  @exclusivity(unchecked) private var inFlight: MilvusCallHandle?
  /// Runs while the machine waits between checks.
  @exclusivity(unchecked) private var timer: LoopTimer?

  private var loop: EventLoop { client.connection.loop }
  /// The machine's time: how long ago the wait started.
  private var elapsed: Duration { loop.now - startedAt }

  /// - Parameters:
  ///   - client: whose loop and calls the wait uses.
  ///   - machine: the wait's decisions, not started.
  ///   - startedAt: when the caller asked; the timeout counts from then.
  ///   - check: runs one check (see ``Check``); it may keep state between checks.
  ///   - progress: gets each new progress report.
  ///   - completion: gets the outcome, once: the last progress on success.
  init(
    client: MilvusClient, machine: Machine, startedAt: ContinuousClock.Instant,
    check: @escaping Check, progress: ((Progress) -> Void)?,
    completion: @escaping (Result<Progress?, MilvexError>) -> Void
  ) {
    self.client = client
    self.machine = machine
    self.startedAt = startedAt
    self.check = check
    self.progress = progress
    self.completion = completion
  }

  /// Begins the wait (once), or cancels it at once if `cancellation` was requested already;
  /// from then on `cancellation` cancels it.
  func start(cancellation: CallCancellation) {
    loop.assertInLoopThread()
    guard !cancellation.state.value.requested else { return run(machine.cancel()) }
    cancellation.state.value.cancel = { [weak self] in self?.cancel() }
    run(machine.start(now: elapsed))
  }

  /// Ends the wait with `CANCELLED` now: cancels the call in flight, stops the timer.
  func cancel() {
    run(machine.cancel())
  }

  // MARK: - For checks

  /// Performs `call` within `timeout` as the current check's call: a cancel of the wait
  /// cancels it, and `then` does not run once the wait has completed.
  func perform<Output>(
    _ call: MilvusCall<Output>, timeout: Duration,
    _ then: @escaping (Result<Output, MilvexError>) -> Void
  ) {
    guard !machine.isFinished else { return }
    // An argument error completes the call before `perform` returns: only a call still
    // running becomes the one in flight.
    var answered = false
    let handle = client.onLoop.perform(call, options: MilvusCallOptions(timeout: timeout)) {
      [self] result in
      answered = true
      inFlight = nil
      guard !machine.isFinished else { return }
      then(result)
    }
    if !answered { inFlight = handle }
  }

  /// Ends the current check with `answer`.
  func answer(_ answer: Machine.Answer) {
    run(machine.checkAnswered(answer, now: elapsed))
  }

  // MARK: - Executing actions

  private func run(_ actions: [Machine.Action]) {
    for action in actions { execute(action) }
  }

  private func execute(_ action: Machine.Action) {
    switch action {
    case .runCheck(let timeout):
      check?(self, timeout)
    case .report(let value):
      progress?(value)
    case .wait(let delay):
      // A progress callback may cancel the wait (at once, on the loop) before the timer that
      // followed its report starts: the machine has finished then, and the timer is not due.
      guard !machine.isFinished else { return }
      startTimer(delay)
    case .cancelCheck:
      let handle = inFlight
      inFlight = nil
      handle?.cancel()
    case .cancelTimer:
      timer?.cancel()
      timer = nil
      loop.removeShutdownHandler(of: self)
    case .succeed(let value):
      complete(.success(value))
    case .fail(let error):
      complete(.failure(error))
    }
  }

  private func startTimer(_ delay: Duration) {
    // The timer never fires once the loop shuts down: the machine ends the wait then.
    loop.onShutdown(of: self) { [self] in run(machine.loopShutDown()) }
    do {
      timer = try loop.scheduleTimer(after: delay) { [self] in
        loop.removeShutdownHandler(of: self)
        timer = nil
        run(machine.timerFired(now: elapsed))
      }
    } catch {
      loop.removeShutdownHandler(of: self)
      run(machine.timerFailed(error))
    }
  }

  /// Delivers the outcome and lets go of the check and the callbacks (and what they hold).
  private func complete(_ result: Result<Progress?, MilvexError>) {
    let completion = self.completion
    self.completion = nil
    check = nil
    progress = nil
    completion?(result)
  }
}
