/// The state of a connection as users see it.
///
/// - Important: A `Sendable` value; observers receive it on whatever thread their callback or
///   stream runs on.
public enum ConnectivityState: Sendable, Hashable, CustomStringConvertible {
  /// Making the first channel since the connection started: an attempt is in flight, or the
  /// connection waits out the backoff delay before the next one. Waiting for the channel
  /// (`waitForChannel`, and the Milvus client's calls) waits within its deadline, then fails
  /// with ``MilvexError/notConnected(host:port:lastFailure:)`` (retriable); asking for the
  /// channel now (`channel()`) fails with it at once.
  case connecting
  /// A channel is ready and calls go through it.
  case connected
  /// The channel was lost (the server closed it, keepalive timed out, GOAWAY, a protocol
  /// error) and the connection is making a new one, as in ``connecting``.
  case reconnecting
  /// Terminal: the application disconnected. Calls fail with
  /// ``MilvexError/disconnected(reason:)`` (not retriable) and nothing is tried again.
  case disconnected

  /// The state's name in lower case: `connecting`, `connected`, `reconnecting` or
  /// `disconnected`.
  public var description: String {
    switch self {
    case .connecting: return "connecting"
    case .connected: return "connected"
    case .reconnecting: return "reconnecting"
    case .disconnected: return "disconnected"
    }
  }
}

/// One change of a connection's ``ConnectivityState``, as observers receive it.
///
/// A failed connect attempt is reported too, as a transition whose ``from`` equals its ``to``
/// (`connecting → connecting: attempt 2 failed: … Connection refused; next attempt in …`), so
/// an observer sees why the connection is not up yet without reading the log.
public struct StateTransition: Sendable, Hashable, CustomStringConvertible {
  /// The state before the change.
  public var from: ConnectivityState
  /// The state after the change.
  public var to: ConnectivityState
  /// Why it changed, in words for a log: `attempt 3 succeeded`, `attempt 2 failed: …`,
  /// `keepalive timeout`, `GOAWAY`, `server closed the connection`,
  /// `disconnected by the application`.
  public var reason: String
  /// The endpoint whose own state changed, for a connection with several endpoints
  /// (``Connection/onEndpointStateChange(_:)``); nil for the connection's state.
  public var endpoint: Endpoint?

  /// A transition with the given parts.
  ///
  /// - Parameters:
  ///   - from: The state before the change.
  ///   - to: The state after the change; equal to `from` for a failed connect attempt.
  ///   - reason: Why it changed, in words for a log.
  public init(from: ConnectivityState, to: ConnectivityState, reason: String) {
    self.from = from
    self.to = to
    self.reason = reason
  }

  /// `from → to: reason`, for example `connecting → connected: attempt 1 succeeded`.
  public var description: String {
    let change = "\(from) → \(to): \(reason)"
    return endpoint.map { "\($0): \(change)" } ?? change
  }
}

/// The lifecycle of one connection: when to make a channel, when to wait, when to give up.
///
/// A pure value type (grpc-swift-nio-transport's `Subchannel` state machine is the model):
/// every event is a `mutating func` that returns what to do as a small `Equatable` action.
/// It performs no I/O, starts no timer and reads no clock; its owner holds the real channel
/// and timers, executes the actions, and hands in the time (`now`) where it matters.
///
/// Each channel attempt gets a new **generation** number. Events about a channel carry its
/// generation; an event with any other generation than the current one comes from an
/// abandoned attempt or a replaced channel and is ignored (the action is `.none`), so an old
/// channel can never disturb the current one.
///
/// Only the application ends a connection: failures are retried forever with ``Backoff``.
///
/// - Important: Not thread-safe (a value type). The owner keeps it on its event loop thread
///   and calls every method there.
struct ConnectionStateMachine {
  /// The owner's name for one wait-for-ready caller.
  struct WaiterID: Hashable, Sendable {
    var rawValue: UInt64
    init(_ rawValue: UInt64) { self.rawValue = rawValue }
  }

  typealias Instant = ContinuousClock.Instant

  /// The states and the transitions between them.
  ///
  /// ```
  ///             start
  ///   idle ─────────────▶ connecting ◀──┐ attemptFailed → scheduleRetry,
  ///                         │   │       │ backoffElapsed → startAttempt
  ///                         │   └───────┘
  ///        attemptSucceeded │
  ///                         ▼
  ///   ┌────────────────▶ connected
  ///   │                     │
  ///   │                     │ channelClosed → close it, startAttempt at once
  ///   │ attemptSucceeded    ▼
  ///   └──────────────── reconnecting ◀──┐ attemptFailed → scheduleRetry,
  ///                             │       │ backoffElapsed → startAttempt
  ///                             └───────┘
  ///
  ///   any state ──disconnect──▶ disconnected (terminal: every later event is ignored)
  /// ```
  ///
  /// `connecting` and `reconnecting` behave alike (``Attempting``) and differ only in what
  /// users see. Each struct has one `init(from:)` per legal predecessor.
  private enum State {
    case idle(Idle)
    case connecting(Attempting)
    case connected(Connected)
    case reconnecting(Attempting)
    case disconnected(Disconnected)
  }

  /// Created, not started yet. Waiters may already queue up.
  private struct Idle {
    var waiters = Waiters()
  }

  /// Trying to make a channel: one attempt is in flight, or the retry timer is running.
  private struct Attempting {
    enum Phase: Equatable {
      /// The owner is running attempt `generation`.
      case attemptInFlight
      /// Attempt `generation` failed; the owner's retry timer is running.
      case waitingToRetry
    }

    /// The generation of the attempt in flight, or of the attempt that failed last.
    var generation: UInt64
    /// How many attempts this phase has started, counting from 1.
    var attempt: Int
    var phase: Phase
    var waiters: Waiters
    var lastFailureReason: String?

    init(from idle: Idle, generation: UInt64) {
      self.generation = generation
      self.attempt = 1
      self.phase = .attemptInFlight
      self.waiters = idle.waiters
    }

    init(from connected: Connected, generation: UInt64, lostBecause reason: String) {
      self.generation = generation
      self.attempt = 1
      self.phase = .attemptInFlight
      self.waiters = Waiters()
      // Until an attempt fails, the loss of the channel is the latest failure.
      self.lastFailureReason = reason
    }
  }

  /// A channel is ready.
  private struct Connected {
    var generation: UInt64
    /// The channel being opened to replace it (channel recycling), if any.
    var replacement: UInt64?

    init(from attempting: Attempting) {
      self.generation = attempting.generation
    }
  }

  /// Terminal.
  private struct Disconnected {
    var reason: String
    /// What callers get from now on: ``MilvexError/disconnected(reason:)`` after a disconnect,
    /// the server's refusal after ``attemptRefused(generation:error:reason:)``.
    var error: MilvexError

    init(from idle: Idle, reason: String) {
      self.reason = reason
      self.error = .disconnected(reason: reason)
    }
    init(from attempting: Attempting, reason: String, error: MilvexError? = nil) {
      self.reason = reason
      self.error = error ?? .disconnected(reason: reason)
    }
    init(from connected: Connected, reason: String) {
      self.reason = reason
      self.error = .disconnected(reason: reason)
    }
  }

  private var state: State = .idle(Idle())
  private var backoff: Backoff
  private var lastGeneration: UInt64 = 0
  /// For the errors handed to callers.
  private let host: String
  private let port: Int

  /// Creates a machine in its idle state; ``start()`` begins the first attempt.
  ///
  /// - Parameters:
  ///   - config: A configuration that passed ``ConnectionConfig/validate()``.
  ///   - random: The jitter source of the reconnect backoff.
  init(config: ConnectionConfig, random: any BackoffRandomSource = SystemBackoffRandomSource()) {
    self.host = config.host
    self.port = config.port
    self.backoff = Backoff(
      baseDelay: config.reconnectBaseDelay, maxDelay: config.reconnectMaxDelay,
      multiplier: config.reconnectMultiplier, jitter: config.reconnectJitter, random: random)
  }

  private mutating func nextGeneration() -> UInt64 {
    lastGeneration += 1
    return lastGeneration
  }

  /// What callers get while (re)connecting: retriable, with the latest failure's words.
  private var notConnectedError: MilvexError {
    .notConnected(host: host, port: port, lastFailure: lastFailureReason)
  }

  // MARK: - Queries (answerable in every state)

  /// The state users see. Before ``start()`` this is `connecting`: the owner starts the
  /// machine in the call that creates it, so nobody can observe the difference.
  var connectivityState: ConnectivityState {
    switch state {
    case .idle, .connecting: return .connecting
    case .connected: return .connected
    case .reconnecting: return .reconnecting
    case .disconnected: return .disconnected
    }
  }

  /// Whether calls can go through a channel right now.
  var isConnected: Bool { connectivityState == .connected }

  /// The answer to "get the channel".
  enum ChannelAnswer: Equatable {
    /// Use the channel of this generation.
    case connected(generation: UInt64)
    /// Fail the caller with this error at once:
    /// ``MilvexError/notConnected(host:port:lastFailure:)`` (retriable) while (re)connecting,
    /// ``MilvexError/disconnected(reason:)`` after disconnect.
    case notConnected(MilvexError)
  }

  /// Which channel to use, or the error to fail with.
  var channel: ChannelAnswer {
    switch state {
    case .idle, .connecting, .reconnecting:
      return .notConnected(notConnectedError)
    case .connected(let connected):
      return .connected(generation: connected.generation)
    case .disconnected(let disconnected):
      return .notConnected(disconnected.error)
    }
  }

  /// Why the latest attempt of the current (re)connecting phase failed (or, before any
  /// attempt failed, why the channel was lost), for logs and error messages; `nil` when
  /// connected, disconnected or nothing failed yet.
  var lastFailureReason: String? {
    switch state {
    case .connecting(let attempting), .reconnecting(let attempting):
      return attempting.lastFailureReason
    case .idle, .connected, .disconnected:
      return nil
    }
  }

  /// The whole state, for tests and debug logs.
  enum Snapshot: Equatable {
    case idle
    case connecting(generation: UInt64, attempt: Int, waitingToRetry: Bool)
    case connected(generation: UInt64)
    case reconnecting(generation: UInt64, attempt: Int, waitingToRetry: Bool)
    case disconnected(reason: String)
  }

  var snapshot: Snapshot {
    switch state {
    case .idle:
      return .idle
    case .connecting(let attempting):
      return .connecting(
        generation: attempting.generation, attempt: attempting.attempt,
        waitingToRetry: attempting.phase == .waitingToRetry)
    case .connected(let connected):
      return .connected(generation: connected.generation)
    case .reconnecting(let attempting):
      return .reconnecting(
        generation: attempting.generation, attempt: attempting.attempt,
        waitingToRetry: attempting.phase == .waitingToRetry)
    case .disconnected(let disconnected):
      return .disconnected(reason: disconnected.reason)
    }
  }

  // MARK: - Start

  enum OnStart: Equatable {
    case none
    /// Start making channel `generation` now (resolve, connect, handshake) and report the
    /// outcome with ``attemptSucceeded(generation:)`` or ``attemptFailed(generation:reason:)``.
    case startAttempt(generation: UInt64, attempt: Int)
  }

  /// Begins connecting: the first attempt starts at once. Later calls do nothing.
  mutating func start() -> OnStart {
    switch state {
    case .idle(let idle):
      let attempting = Attempting(from: idle, generation: nextGeneration())
      state = .connecting(attempting)
      return .startAttempt(generation: attempting.generation, attempt: attempting.attempt)
    case .connecting, .connected, .reconnecting, .disconnected:
      return .none
    }
  }

  // MARK: - Attempt outcomes

  enum OnAttemptSucceeded: Equatable {
    /// Stale or unexpected: the owner closes that channel if it still holds it.
    case none
    /// Channel `generation` is now the connection's channel: publish `transition`, and
    /// resume the waiters (in registration order) with it.
    case connected(generation: UInt64, transition: StateTransition, resumeWaiters: [WaiterID])
  }

  /// Channel `generation` is ready. Resets the backoff.
  mutating func attemptSucceeded(generation: UInt64) -> OnAttemptSucceeded {
    switch state {
    case .connecting(let attempting), .reconnecting(let attempting):
      guard attempting.generation == generation, attempting.phase == .attemptInFlight else {
        return .none
      }
      let from = connectivityState
      state = .connected(Connected(from: attempting))
      backoff.reset()
      return .connected(
        generation: generation,
        transition: StateTransition(
          from: from, to: .connected, reason: "attempt \(attempting.attempt) succeeded"),
        resumeWaiters: attempting.waiters.ids)
    case .idle, .connected, .disconnected:
      return .none
    }
  }

  enum OnAttemptFailed: Equatable {
    case none
    /// Start the retry timer; when it fires, call ``backoffElapsed()``. `attempt` is the
    /// number of the attempt that will then start (the first retry is attempt 2).
    case scheduleRetry(after: Duration, attempt: Int)
  }

  /// Attempt `generation` failed (refused, timed out, handshake failed, closed before ready).
  mutating func attemptFailed(generation: UInt64, reason: String) -> OnAttemptFailed {
    switch state {
    case .connecting(var attempting):
      guard let action = Self.fail(&attempting, generation, reason, &backoff) else {
        return .none
      }
      state = .connecting(attempting)
      return action
    case .reconnecting(var attempting):
      guard let action = Self.fail(&attempting, generation, reason, &backoff) else {
        return .none
      }
      state = .reconnecting(attempting)
      return action
    case .idle, .connected, .disconnected:
      return .none
    }
  }

  private static func fail(
    _ attempting: inout Attempting, _ generation: UInt64, _ reason: String,
    _ backoff: inout Backoff
  ) -> OnAttemptFailed? {
    guard attempting.generation == generation, attempting.phase == .attemptInFlight else {
      return nil
    }
    attempting.phase = .waitingToRetry
    attempting.lastFailureReason = reason
    return .scheduleRetry(after: backoff.next(), attempt: attempting.attempt + 1)
  }

  enum OnBackoffElapsed: Equatable {
    case none
    /// Start making channel `generation` now, as for ``OnStart/startAttempt(generation:attempt:)``.
    case startAttempt(generation: UInt64, attempt: Int)
  }

  /// The retry timer from ``OnAttemptFailed/scheduleRetry(after:attempt:)`` fired.
  ///
  /// Needs no generation: at most one retry timer exists, and ``disconnect(reason:)`` tells
  /// the owner to cancel it.
  mutating func backoffElapsed() -> OnBackoffElapsed {
    switch state {
    case .connecting(var attempting):
      guard attempting.phase == .waitingToRetry else { return .none }
      let action = Self.retry(&attempting, nextGeneration())
      state = .connecting(attempting)
      return action
    case .reconnecting(var attempting):
      guard attempting.phase == .waitingToRetry else { return .none }
      let action = Self.retry(&attempting, nextGeneration())
      state = .reconnecting(attempting)
      return action
    case .idle, .connected, .disconnected:
      return .none
    }
  }

  private static func retry(_ attempting: inout Attempting, _ generation: UInt64)
    -> OnBackoffElapsed
  {
    attempting.phase = .attemptInFlight
    attempting.generation = generation
    attempting.attempt += 1
    return .startAttempt(generation: generation, attempt: attempting.attempt)
  }

  // MARK: - Losing the channel

  enum OnChannelClosed: Equatable {
    case none
    /// Close channel `closing` (failing its calls with retriable `UNAVAILABLE`), publish
    /// `transition`, and start making channel `generation` at once, without a delay.
    case reconnect(closing: UInt64, generation: UInt64, transition: StateTransition)
  }

  /// The connected channel `generation` died: EOF, socket error, GOAWAY, keepalive timeout or
  /// a protocol error, as `reason` says.
  ///
  /// A channel that dies before it was ready is a failed attempt: report it with
  /// ``attemptFailed(generation:reason:)``.
  mutating func channelClosed(generation: UInt64, reason: String) -> OnChannelClosed {
    switch state {
    case .connected(let connected):
      guard connected.generation == generation else { return .none }
      let attempting = Attempting(
        from: connected, generation: nextGeneration(), lostBecause: reason)
      state = .reconnecting(attempting)
      return .reconnect(
        closing: generation, generation: attempting.generation,
        transition: StateTransition(from: .connected, to: .reconnecting, reason: reason))
    case .idle, .connecting, .reconnecting, .disconnected:
      return .none
    }
  }

  // MARK: - Recycling

  /// The connected channel reached its maximum age: returns the generation of the channel to
  /// open in its place, or nil (not connected, or a replacement is already being opened). The
  /// connected channel keeps serving calls until the replacement is ready.
  mutating func recycleStarted() -> UInt64? {
    guard case .connected(var connected) = state, connected.replacement == nil else { return nil }
    let generation = nextGeneration()
    connected.replacement = generation
    state = .connected(connected)
    return generation
  }

  /// The replacement `generation` is ready: it becomes the connected channel. Returns the
  /// generation of the channel it replaces (to let drain and close), or nil if `generation` is
  /// not the replacement under way.
  mutating func recycleSucceeded(generation: UInt64) -> UInt64? {
    guard case .connected(var connected) = state, connected.replacement == generation else {
      return nil
    }
    let old = connected.generation
    connected.generation = generation
    connected.replacement = nil
    state = .connected(connected)
    return old
  }

  /// The replacement `generation` failed before it was ready; the connected channel stays.
  /// Returns whether it was the replacement under way.
  mutating func recycleFailed(generation: UInt64) -> Bool {
    guard case .connected(var connected) = state, connected.replacement == generation else {
      return false
    }
    connected.replacement = nil
    state = .connected(connected)
    return true
  }

  /// The generation of the replacement being opened, if any.
  var replacementGeneration: UInt64? {
    guard case .connected(let connected) = state else { return nil }
    return connected.replacement
  }

  // MARK: - Disconnect

  /// What the owner undoes when the connection ends.
  struct ShutDown: Equatable {
    /// To publish.
    var transition: StateTransition
    /// Whether a retry timer is running and must be cancelled.
    var cancelRetryTimer: Bool
    /// The channel to close: the connected one, or the attempt in flight.
    var closeChannel: UInt64?
    /// Waiters to fail with `error`, in registration order.
    var failWaiters: [WaiterID]
    /// What waiters and calls fail with: ``MilvexError/disconnected(reason:)``, or the
    /// server's refusal.
    var error: MilvexError
  }

  enum OnDisconnect: Equatable {
    /// Already disconnected.
    case none
    case shutDown(ShutDown)
  }

  /// Ends the connection for good. Idempotent: a second call returns `.none`.
  mutating func disconnect(reason: String) -> OnDisconnect {
    let from = connectivityState
    var cancelRetryTimer = false
    var closeChannel: UInt64?
    var waiters: [WaiterID] = []
    switch state {
    case .idle(let idle):
      waiters = idle.waiters.ids
      state = .disconnected(Disconnected(from: idle, reason: reason))
    case .connecting(let attempting), .reconnecting(let attempting):
      switch attempting.phase {
      case .attemptInFlight: closeChannel = attempting.generation
      case .waitingToRetry: cancelRetryTimer = true
      }
      waiters = attempting.waiters.ids
      state = .disconnected(Disconnected(from: attempting, reason: reason))
    case .connected(let connected):
      closeChannel = connected.generation
      state = .disconnected(Disconnected(from: connected, reason: reason))
    case .disconnected:
      return .none
    }
    return .shutDown(
      ShutDown(
        transition: StateTransition(from: from, to: .disconnected, reason: reason),
        cancelRetryTimer: cancelRetryTimer, closeChannel: closeChannel, failWaiters: waiters,
        error: .disconnected(reason: reason)))
  }

  /// The server refused attempt `generation` for good: the credentials are wrong (Milvus
  /// answered `Connect` with UNAUTHENTICATED). Trying again cannot help, so the connection ends
  /// here, like ``disconnect(reason:)``, but waiters and later callers get `error` (the
  /// refusal, not retriable) instead of ``MilvexError/disconnected(reason:)``: a wrong password
  /// surfaces at once instead of as a reconnect loop. A late answer of an abandoned attempt
  /// returns `.none`.
  mutating func attemptRefused(generation: UInt64, error: MilvexError, reason: String)
    -> OnDisconnect
  {
    let from = connectivityState
    switch state {
    case .connecting(let attempting), .reconnecting(let attempting):
      guard attempting.generation == generation, attempting.phase == .attemptInFlight else {
        return .none
      }
      state = .disconnected(Disconnected(from: attempting, reason: reason, error: error))
      return .shutDown(
        ShutDown(
          transition: StateTransition(from: from, to: .disconnected, reason: reason),
          cancelRetryTimer: false, closeChannel: generation, failWaiters: attempting.waiters.ids,
          error: error))
    case .idle, .connected, .disconnected:
      return .none
    }
  }

  // MARK: - Wait for ready

  enum OnWaitForReady: Equatable {
    /// Connected already: resume the caller with channel `generation` at once.
    case resume(generation: UInt64)
    /// Fail the caller at once: ``MilvexError/disconnected(reason:)`` after disconnect, or
    /// ``MilvexError/notConnected(host:port:lastFailure:)`` when the deadline has already passed.
    case fail(MilvexError)
    /// The caller waits. Call ``waiterDeadlinesPassed(now:)`` when `deadline` comes (one
    /// timer per waiter, or one timer at ``nextWaiterDeadline``; both work).
    case wait(deadline: Instant)
  }

  /// A caller wants the channel as soon as it is connected, but no later than `deadline`.
  ///
  /// Waiters are resumed by ``attemptSucceeded(generation:)``, failed by
  /// ``waiterDeadlinesPassed(now:)`` and ``disconnect(reason:)``, and withdrawn by
  /// ``cancelWaiter(id:)``.
  ///
  /// - Parameters:
  ///   - id: Unique among the waiters the owner has registered.
  ///   - deadline: When to give up waiting.
  ///   - now: The owner's current time.
  mutating func waitForReady(id: WaiterID, deadline: Instant, now: Instant) -> OnWaitForReady {
    switch state {
    case .connected(let connected):
      return .resume(generation: connected.generation)
    case .disconnected(let disconnected):
      return .fail(disconnected.error)
    case .idle, .connecting, .reconnecting:
      guard deadline > now else { return .fail(notConnectedError) }
      updateWaiters { $0.add(id, deadline: deadline) }
      return .wait(deadline: deadline)
    }
  }

  enum OnWaiterDeadline: Equatable {
    case none
    /// Fail these waiters (in registration order) with the error, a retriable
    /// ``MilvexError/notConnected(host:port:lastFailure:)``.
    case fail([WaiterID], MilvexError)
  }

  /// Fails the waiters whose deadline is `now` or earlier. Calling it early or twice is
  /// harmless.
  mutating func waiterDeadlinesPassed(now: Instant) -> OnWaiterDeadline {
    let expired = updateWaiters { $0.removeExpired(now: now) } ?? []
    return expired.isEmpty ? .none : .fail(expired, notConnectedError)
  }

  /// Withdraws a waiter whose caller gave up (for example a cancelled task).
  ///
  /// - Returns: Whether the waiter was still waiting; only then does the owner resume it
  ///   (with a cancellation error), since otherwise some other action already did.
  mutating func cancelWaiter(id: WaiterID) -> Bool {
    updateWaiters { $0.remove(id) } ?? false
  }

  /// The earliest deadline among the waiters, for an owner that runs a single timer.
  var nextWaiterDeadline: Instant? {
    switch state {
    case .idle(let idle): return idle.waiters.earliestDeadline
    case .connecting(let attempting), .reconnecting(let attempting):
      return attempting.waiters.earliestDeadline
    case .connected, .disconnected: return nil
    }
  }

  /// Applies `body` to the waiters of the current state; `nil` in the states that have none.
  private mutating func updateWaiters<Result>(_ body: (inout Waiters) -> Result) -> Result? {
    switch state {
    case .idle(var idle):
      let result = body(&idle.waiters)
      state = .idle(idle)
      return result
    case .connecting(var attempting):
      let result = body(&attempting.waiters)
      state = .connecting(attempting)
      return result
    case .reconnecting(var attempting):
      let result = body(&attempting.waiters)
      state = .reconnecting(attempting)
      return result
    case .connected, .disconnected:
      return nil
    }
  }
}
