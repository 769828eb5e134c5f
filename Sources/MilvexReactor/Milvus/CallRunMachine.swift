/// The lifecycle of one typed Milvus call, from start to its single outcome: prepare the
/// schema (cached, or read with DescribeCollection), encode once, wait for a channel, send,
/// and decide on the answer: deliver it, retry after a delay (``RetryPolicy``), read the schema
/// again and resend once after a `SchemaMismatch`, or fail.
///
/// A pure value type, like ``ConnectionStateMachine``: every event is a `mutating func` that
/// returns the ``Action``s to execute, in order. It performs no I/O, starts no timer and reads
/// no clock; ``CallRun`` executes the actions on the loop and hands in the time (`now`) where
/// it matters. Retry jitter comes from an injected ``BackoffRandomSource``, one draw for each
/// failure that reaches the retry policy.
///
/// Rules it keeps:
/// - The deadline is checked before each step; a retry whose delay would end at or after the
///   deadline is not taken.
/// - A write is retried only if the policy allows writes or its request never left (the
///   schema lookup or the wait for the channel failed): a write that was never handed to a
///   channel cannot have been applied.
/// - A `SchemaMismatch` makes it forget the cached schema, read it again and resend, once.
/// - Exactly one terminal action (``Action/succeed`` or ``Action/fail(_:)``) per call; every
///   event after it returns no action.
///
/// - Important: Not thread-safe (a value type). ``CallRun`` keeps it on the loop thread.
struct CallRunMachine {
  /// A point in the call's time: the duration since it started. `ContinuousClock.Instant` is
  /// resilient (its layout unknown to this module), and a machine or action holding one would
  /// be copied through runtime value witnesses on every event; `Duration` is frozen.
  typealias Instant = Duration

  /// A collection schema and its update timestamp from DescribeCollection (0: unknown).
  struct KnownSchema: Equatable {
    var schema: CollectionSchema
    var timestamp: UInt64
  }

  /// How an attempt sent to the server ended.
  enum Answer: Equatable {
    /// The response was decoded; the output waits to be delivered.
    case success
    /// The server rejected the write because the schema changed (`SchemaMismatch`); the
    /// error is what the caller gets if reading the schema again does not help.
    case schemaMismatch(MilvexError)
    /// The attempt failed: a gRPC or connection error, an unreadable response, or a Milvus
    /// error status (which also makes the machine forget the cached schema).
    case failure(MilvexError)
  }

  /// What ``CallRun`` does for the machine. Each action that starts an operation names the
  /// event that reports its outcome.
  enum Action: Equatable {
    /// Look the call's collection up in the client's schema cache and report
    /// ``schemaLookedUp(_:now:)``.
    case lookUpSchema
    /// Read the schema with DescribeCollection (no retries of its own) within `timeout`, and
    /// report ``schemaFetched(_:)`` or ``schemaFetchFailed(_:now:)``.
    case fetchSchema(timeout: Duration)
    /// Put the schema just read into the client's schema cache. (Indirect, as are the other
    /// large payloads of rare actions: an action stays a few words, cheap to copy per event.)
    indirect case rememberSchema(KnownSchema)
    /// Drop the call's collection from the client's schema cache: it changed, or may have.
    case forgetSchema
    /// Encode the request against ``CallRunMachine/schema`` (nil: the call needs none) and
    /// report ``encoded(_:)`` or ``encodeFailed(_:)``. Keep the context for decoding the answer.
    case encode
    /// Wait for a live channel until `deadline` and report ``channelReady(now:)`` or
    /// ``channelFailed(_:now:)``.
    case waitForChannel(deadline: Instant)
    /// Send `request` on the channel just reported ready, with `timeout` (what remains of the
    /// deadline), and report ``answered(_:now:)``.
    case send(request: [UInt8], timeout: Duration)
    /// Count and log a retry, then start a timer of `delay` that reports
    /// ``retryTimerFired(now:)`` (or ``retryTimerFailed(_:)`` if it cannot start), and until
    /// then pass a loop shutdown to ``loopShutDown()``. `attempt` is the number of the attempt
    /// that will then start; `error` is the failure being retried, for the log.
    indirect case scheduleRetry(after: Duration, attempt: Int, error: MilvexError)
    /// Stop the retry timer and stop listening for the loop's shutdown.
    case cancelRetryTimer
    /// Reset the attempt in flight; its late answer is ignored.
    case cancelInFlight
    /// Terminal: apply the call's schema cache effect, count the success and deliver the
    /// decoded output.
    case succeed
    /// Terminal: count the failure and fail the caller with this error.
    indirect case fail(MilvexError)
  }

  /// The actions of one event, in order: at most two, held inline so that an event
  /// allocates nothing (the per-call path runs four or five events).
  struct Actions: RandomAccessCollection, Equatable, ExpressibleByArrayLiteral {
    /// The first action, if any.
    private(set) var firstAction: Action?
    /// The second action, if any (only after a first one).
    private(set) var secondAction: Action?

    /// No action.
    init() {}

    /// One action, or two in this order.
    init(_ first: Action, _ second: Action? = nil) {
      firstAction = first
      secondAction = second
    }

    /// For tests: at most two actions.
    init(arrayLiteral elements: Action...) {
      precondition(elements.count <= 2, "an event has at most two actions")
      firstAction = elements.first
      secondAction = elements.count == 2 ? elements[1] : nil
    }

    /// `action` (if any) followed by these actions, of which there is at most one.
    func prepending(_ action: Action?) -> Actions {
      guard let action else { return self }
      precondition(secondAction == nil, "an event has at most two actions")
      return Actions(action, firstAction)
    }

    /// The first position.
    var startIndex: Int { 0 }
    /// One past the last action.
    var endIndex: Int { firstAction == nil ? 0 : secondAction == nil ? 1 : 2 }

    /// The action at `position` (0 or 1).
    subscript(position: Int) -> Action {
      guard let action = position == 0 ? firstAction : secondAction else {
        preconditionFailure("no action at \(position)")
      }
      return action
    }
  }

  /// The steps of one call.
  ///
  /// ```
  ///   idle ─start─┬──(needs no schema)──────────────────────▶ encoding
  ///               ▼                                              ▲  │ encoded
  ///        lookingUpSchema ──hit──────────────────────────────────┤  ▼
  ///               │ miss                                         │ waitingForChannel
  ///               ▼                                     fetched  │  │ ready: send
  ///        fetchingSchema ───────────────────────────────────────┘  ▼
  ///               ▲                                              inFlight ─success─▶ finished
  ///               └──────────SchemaMismatch (once)──────────────────┘
  ///
  ///   fetchingSchema, waitingForChannel, inFlight ─retriable failure─▶ waitingToRetry
  ///   waitingToRetry ─fired─▶ the first step still to do: lookingUpSchema, encoding, or
  ///                           waitingForChannel when the request was encoded before
  ///   any state ─cancel, final failure─▶ finished (terminal: every later event is ignored)
  /// ```
  ///
  /// A request is encoded once and sent again as it is by every retry; only a
  /// `SchemaMismatch` drops it and encodes again against the schema read anew.
  private enum State: Equatable {
    /// Created; ``start(now:)`` has not run.
    case idle
    /// Waiting for ``schemaLookedUp(_:now:)``.
    case lookingUpSchema
    /// DescribeCollection is running.
    case fetchingSchema
    /// The driver is encoding the request.
    case encoding
    /// Waiting for a live channel to send `request` on.
    case waitingForChannel(request: [UInt8])
    /// `request` was handed to a channel; waiting for its answer.
    case inFlight(request: [UInt8])
    /// An attempt failed; the retry timer is running. `request` is the encoded request the
    /// next attempt sends again (nil: not encoded yet, or dropped after a `SchemaMismatch`).
    case waitingToRetry(request: [UInt8]?)
    /// Terminal: the outcome was delivered.
    case finished
  }

  private var state: State = .idle
  /// The schema to encode against (``Action/encode``): the cached one or the one just read;
  /// nil for a call that needs none, or before it is known.
  private(set) var schema: KnownSchema?
  /// The MilvusService method, for error messages.
  let method: String
  /// Insert, upsert, delete: not retried once sent unless the policy allows writes.
  let isWrite: Bool
  /// Whether encoding needs the collection's schema.
  let needsSchema: Bool
  /// When a failed attempt is tried again.
  let policy: RetryPolicy
  /// When the call fails with `DEADLINE_EXCEEDED` at the latest.
  let deadline: Instant
  /// Where the retry jitter comes from: one draw for each failure that reaches the policy.
  private var random: any BackoffRandomSource
  /// Attempts started so far (1-based once started); what the retry policy counts.
  private(set) var attempt = 0
  /// Whether the request was handed to a channel at least once: from then on a write may
  /// have been applied.
  private(set) var requestSent = false
  /// Whether the schema was read again after a `SchemaMismatch` (done at most once).
  private var refreshedSchema = false

  /// Creates a machine for one call; ``start(now:)`` begins it.
  ///
  /// - Parameters:
  ///   - method: The MilvusService method, named in error messages.
  ///   - isWrite: Whether the call is an insert, upsert or delete.
  ///   - needsSchema: Whether encoding needs the collection's schema.
  ///   - policy: When a failed attempt is tried again.
  ///   - deadline: When the call fails with `DEADLINE_EXCEEDED` at the latest.
  ///   - random: The jitter source of the retry delays.
  init(
    method: String, isWrite: Bool, needsSchema: Bool, policy: RetryPolicy, deadline: Instant,
    random: any BackoffRandomSource = SystemBackoffRandomSource()
  ) {
    self.method = method
    self.isWrite = isWrite
    self.needsSchema = needsSchema
    self.policy = policy
    self.deadline = deadline
    self.random = random
  }

  /// Whether the call waits for the answer of an attempt in flight: only then is a response
  /// decoded (decoding a write records its session timestamp).
  var awaitsAnswer: Bool {
    if case .inFlight = state { return true }
    return false
  }

  /// Whether the call has delivered its outcome.
  var isFinished: Bool {
    if case .finished = state { return true }
    return false
  }

  // MARK: - Events

  /// Begins the first attempt. Later calls do nothing.
  mutating func start(now: Instant) -> Actions {
    switch state {
    case .idle:
      return beginAttempt(now: now, request: nil)
    case .lookingUpSchema, .fetchingSchema, .encoding, .waitingForChannel, .inFlight,
      .waitingToRetry, .finished:
      return Actions()
    }
  }

  /// The retry timer from ``Action/scheduleRetry(after:attempt:error:)`` fired: begins the
  /// next attempt.
  mutating func retryTimerFired(now: Instant) -> Actions {
    switch state {
    case .waitingToRetry(let request):
      return beginAttempt(now: now, request: request)
    case .idle, .lookingUpSchema, .fetchingSchema, .encoding, .waitingForChannel, .inFlight,
      .finished:
      return Actions()
    }
  }

  /// The retry timer could not start (the loop is shutting down): the call fails with
  /// `error`.
  mutating func retryTimerFailed(_ error: MilvexError) -> Actions {
    switch state {
    case .waitingToRetry:
      return finish(error)
    case .idle, .lookingUpSchema, .fetchingSchema, .encoding, .waitingForChannel, .inFlight,
      .finished:
      return Actions()
    }
  }

  /// The answer to ``Action/lookUpSchema``: the cached schema, or nil if none is cached.
  mutating func schemaLookedUp(_ cached: KnownSchema?, now: Instant) -> Actions {
    switch state {
    case .lookingUpSchema:
      if let cached {
        state = .encoding
        schema = cached
        return Actions(.encode)
      }
      return fetchSchema(now: now)
    case .idle, .fetchingSchema, .encoding, .waitingForChannel, .inFlight, .waitingToRetry,
      .finished:
      return Actions()
    }
  }

  /// DescribeCollection answered with the schema.
  mutating func schemaFetched(_ schema: KnownSchema) -> Actions {
    switch state {
    case .fetchingSchema:
      state = .encoding
      self.schema = schema
      return Actions(.rememberSchema(schema), .encode)
    case .idle, .lookingUpSchema, .encoding, .waitingForChannel, .inFlight, .waitingToRetry,
      .finished:
      return Actions()
    }
  }

  /// DescribeCollection failed. Nothing was sent, so even a write may be retried.
  mutating func schemaFetchFailed(_ error: MilvexError, now: Instant) -> Actions {
    switch state {
    case .fetchingSchema:
      return retryOrFail(error, now: now, keeping: nil)
    case .idle, .lookingUpSchema, .encoding, .waitingForChannel, .inFlight, .waitingToRetry,
      .finished:
      return Actions()
    }
  }

  /// The request was encoded.
  mutating func encoded(_ request: [UInt8]) -> Actions {
    switch state {
    case .encoding:
      state = .waitingForChannel(request: request)
      return Actions(.waitForChannel(deadline: deadline))
    case .idle, .lookingUpSchema, .fetchingSchema, .waitingForChannel, .inFlight,
      .waitingToRetry, .finished:
      return Actions()
    }
  }

  /// The request could not be encoded (a bad argument): the call fails at once, without
  /// retry, before anything is sent.
  mutating func encodeFailed(_ error: MilvexError) -> Actions {
    switch state {
    case .encoding:
      return finish(error)
    case .idle, .lookingUpSchema, .fetchingSchema, .waitingForChannel, .inFlight,
      .waitingToRetry, .finished:
      return Actions()
    }
  }

  /// A live channel is ready: sends the request, unless the deadline has passed.
  mutating func channelReady(now: Instant) -> Actions {
    switch state {
    case .waitingForChannel(let request):
      let remaining = deadline - now
      guard remaining > .zero else {
        return finish(.status(.deadlineExceeded, "the \(method) call's deadline passed"))
      }
      requestSent = true
      state = .inFlight(request: request)
      return Actions(.send(request: request, timeout: remaining))
    case .idle, .lookingUpSchema, .fetchingSchema, .encoding, .inFlight, .waitingToRetry,
      .finished:
      return Actions()
    }
  }

  /// No channel came within the deadline, or the connection ended.
  mutating func channelFailed(_ error: MilvexError, now: Instant) -> Actions {
    switch state {
    case .waitingForChannel(let request):
      return retryOrFail(error, now: now, keeping: request)
    case .idle, .lookingUpSchema, .fetchingSchema, .encoding, .inFlight, .waitingToRetry,
      .finished:
      return Actions()
    }
  }

  /// The attempt in flight ended with `answer`.
  mutating func answered(_ answer: Answer, now: Instant) -> Actions {
    switch state {
    case .inFlight(let request):
      switch answer {
      case .success:
        state = .finished
        return Actions(.succeed)
      case .schemaMismatch(let error):
        // Rejected, not applied: read the schema again and resend, once.
        let forget: Action? = needsSchema ? .forgetSchema : nil
        guard needsSchema, !refreshedSchema else {
          return retryOrFail(error, now: now, keeping: request).prepending(forget)
        }
        refreshedSchema = true
        return fetchSchema(now: now).prepending(forget)
      case .failure(let error):
        // A Milvus error: the collection may have changed (dropped, recreated).
        let forget: Action? = needsSchema && error.isMilvusStatus ? .forgetSchema : nil
        return retryOrFail(error, now: now, keeping: request).prepending(forget)
      }
    case .idle, .lookingUpSchema, .fetchingSchema, .encoding, .waitingForChannel,
      .waitingToRetry, .finished:
      return Actions()
    }
  }

  /// The caller cancelled: the call ends with `CANCELLED` at once, whatever step it is at.
  /// An operation still running (a schema read, a wait for the channel) ends on its own and
  /// its outcome is ignored.
  mutating func cancel() -> Actions {
    let cancelled = MilvexError.status(
      .cancelled, "the \(method) call was cancelled by the client")
    switch state {
    case .idle, .lookingUpSchema, .fetchingSchema, .encoding, .waitingForChannel:
      return finish(cancelled)
    case .inFlight:
      return finish(cancelled).prepending(.cancelInFlight)
    case .waitingToRetry:
      return finish(cancelled).prepending(.cancelRetryTimer)
    case .finished:
      return Actions()
    }
  }

  /// The loop is shutting down. Only a call waiting to retry has nothing that would end it
  /// (its timer never fires); in every other step the operation running reports the shutdown
  /// as its failure.
  mutating func loopShutDown() -> Actions {
    switch state {
    case .waitingToRetry:
      return finish(.eventLoopShutDown(operation: "\(method) retry")).prepending(.cancelRetryTimer)
    case .idle, .lookingUpSchema, .fetchingSchema, .encoding, .waitingForChannel, .inFlight,
      .finished:
      return Actions()
    }
  }

  // MARK: - Steps

  /// Counts an attempt and begins it with the first step still to do: a `request` encoded
  /// by an earlier attempt is sent again as it is.
  private mutating func beginAttempt(now: Instant, request: [UInt8]?) -> Actions {
    attempt += 1
    guard deadline > now else {
      return finish(
        .status(.deadlineExceeded, "the \(method) call's deadline passed before it could be sent"))
    }
    // Encode first (with the schema, read once if needed): a bad argument fails here, before
    // any request of this call is sent, even while the connection is down.
    if let request {
      // Wait-for-ready: a call made while (re)connecting waits for the channel.
      state = .waitingForChannel(request: request)
      return Actions(.waitForChannel(deadline: deadline))
    }
    if needsSchema {
      state = .lookingUpSchema
      return Actions(.lookUpSchema)
    }
    state = .encoding
    return Actions(.encode)
  }

  /// Reads the schema within the time left, or fails if none is left.
  private mutating func fetchSchema(now: Instant) -> Actions {
    let remaining = deadline - now
    guard remaining > .zero else {
      return retryOrFail(
        .status(.deadlineExceeded, "the \(method) call's deadline passed while reading the schema"),
        now: now, keeping: nil)
    }
    state = .fetchingSchema
    return Actions(.fetchSchema(timeout: remaining))
  }

  /// Asks the retry policy whether a failed attempt is tried again; a retry sends `request`
  /// again (nil: encodes first).
  private mutating func retryOrFail(_ error: MilvexError, now: Instant, keeping request: [UInt8]?)
    -> Actions
  {
    let decision = policy.decide(
      // A write whose request never left (the schema lookup or the wait for the channel
      // failed) cannot have applied: it is retried like a read.
      attempt: attempt, error: error, isWrite: isWrite && requestSent,
      remaining: deadline - now, random: random.nextUnitValue())
    switch decision {
    case .retry(let delay):
      state = .waitingToRetry(request: request)
      return Actions(.scheduleRetry(after: delay, attempt: attempt + 1, error: error))
    case .fail:
      return finish(error)
    }
  }

  /// Ends the call with `error`, as the caller sees it.
  private mutating func finish(_ error: MilvexError) -> Actions {
    state = .finished
    return Actions(.fail(Self.callError(error, method: method)))
  }

  /// What the caller sees: a call that found no channel within its deadline fails with
  /// `UNAVAILABLE` and the last connect error, as gRPC clients do ("failed to connect …; last
  /// error: …"); the typed cause keeps host, port and reason.
  static func callError(_ error: MilvexError, method: String) -> MilvexError {
    guard case .notConnected(let host, let port, let lastFailure) = error else { return error }
    let message =
      "the \(method) call found no connection to \(host):\(port) within its deadline"
      + (lastFailure.map { "; last error: \($0)" } ?? "")
    return .grpcStatus(
      GRPCStatus(
        code: .unavailable, message: message,
        cause: .notConnected(host: host, port: port, lastFailure: lastFailure)))
  }
}

extension MilvexError {
  /// Whether this is a Milvus error status (which may mean the collection changed).
  fileprivate var isMilvusStatus: Bool {
    if case .milvus = self { return true }
    return false
  }
}
