import Logging

/// One performance of a call on the loop: executes the actions of its ``CallRunMachine``
/// (look up or read the schema, encode, wait for the channel, send, retry, deliver) and
/// reports each outcome back to it as an event. The decisions live in the machine; this class
/// holds what the machine cannot (the client, the channel's call handle, the retry timer, the
/// typed completion) and reads the clock.
///
/// - Important: Loop-confined: created, started, cancelled and completed on the loop thread.
final class CallRun {
  let client: MilvusClient
  let call: ErasedCall
  let startedAt: ContinuousClock.Instant
  let database: String
  let databaseOverride: String?
  /// Decodes a response; returns the typed success to deliver, or throws.
  private let deliver: ([UInt8], MilvusCallContext) throws -> () -> Void
  private let fail: (MilvexError) -> Void
  // No dynamic exclusivity checks on this state (as in GRPCConnection): the run is
  // loop-confined and no access overlaps another (an action's execution never holds
  // `machine` while it feeds the next event).
  /// The call's lifecycle: every decision is taken there.
  @exclusivity(unchecked) private var machine: CallRunMachine
  /// The context the request was encoded with, kept to decode the answer.
  @exclusivity(unchecked) private var context: MilvusCallContext?
  /// Runs while the machine waits to retry.
  @exclusivity(unchecked) private var retryTimer: LoopTimer?
  /// Cancels the attempt in flight.
  @exclusivity(unchecked) private var inFlight: GRPCChannel.LoopView.Call?

  var loop: EventLoop { client.connection.loop }

  /// The machine's time: how long ago the call started.
  private var elapsed: Duration { loop.now - startedAt }

  init(
    client: MilvusClient, call: ErasedCall, policy: RetryPolicy, startedAt: ContinuousClock.Instant,
    deadline: ContinuousClock.Instant, database: String, databaseOverride: String?,
    deliver: @escaping ([UInt8], MilvusCallContext) throws -> () -> Void,
    fail: @escaping (MilvexError) -> Void
  ) {
    self.client = client
    self.call = call
    self.startedAt = startedAt
    self.database = database
    self.databaseOverride = databaseOverride
    self.deliver = deliver
    self.fail = fail
    self.machine = CallRunMachine(
      method: call.method, isWrite: call.isWrite, needsSchema: call.schemaOf != nil,
      policy: policy, deadline: deadline - startedAt, random: client.random)
  }

  /// Begins the call (once; later calls do nothing).
  func start() {
    run(machine.start(now: elapsed))
  }

  /// Ends the call with `CANCELLED` now: resets the attempt in flight, drops a pending retry.
  func cancel() {
    run(machine.cancel())
  }

  // MARK: - Executing actions

  /// Executes `actions` in order.
  ///
  /// - Parameters:
  ///   - channel: the channel just reported ready, for
  ///     ``CallRunMachine/Action/send(request:timeout:)``.
  ///   - output: the decoded answer, for ``CallRunMachine/Action/succeed``.
  private func run(
    _ actions: CallRunMachine.Actions, channel: GRPCChannel? = nil,
    output: (() -> Void)? = nil
  ) {
    // The two slots directly, not the collection's generic iteration (measurably dearer).
    if let action = actions.firstAction { execute(action, channel: channel, output: output) }
    if let action = actions.secondAction { execute(action, channel: channel, output: output) }
  }

  /// Executes one action.
  private func execute(
    _ action: CallRunMachine.Action, channel: GRPCChannel?, output: (() -> Void)?
  ) {
    switch action {
    case .lookUpSchema:
      let cached = call.schemaOf.flatMap {
        client.cachedSchema(database: database, collection: $0)
      }
      run(
        machine.schemaLookedUp(
          cached.map { CallRunMachine.KnownSchema(schema: $0.schema, timestamp: $0.timestamp) },
          now: elapsed))
    case .fetchSchema(let timeout):
      fetchSchema(timeout: timeout)
    case .rememberSchema(let known):
      guard let collection = call.schemaOf else { break }
      client.apply(
        .remember(collection: collection, schema: known.schema, timestamp: known.timestamp),
        database: database)
    case .forgetSchema:
      client.apply(.forget(collections: call.schemaOf.map { [$0] } ?? []), database: database)
    case .encode:
      encode(schema: machine.schema)
    case .waitForChannel(let deadline):
      client.connection.onLoop.waitForChannel(deadline: startedAt + deadline) { [self] result in
        switch result {
        case .failure(let error): run(machine.channelFailed(error, now: elapsed))
        case .success(let channel): run(machine.channelReady(now: elapsed), channel: channel)
        }
      }
    case .send(let request, let timeout):
      guard let channel else {
        assertionFailure("the machine sends only when a channel is ready")
        break
      }
      send(request, timeout: timeout, on: channel)
    case .scheduleRetry(let delay, let attempt, let error):
      scheduleRetry(after: delay, attempt: attempt, error: error)
    case .cancelRetryTimer:
      retryTimer?.cancel()
      retryTimer = nil
      loop.removeShutdownHandler(of: self)
    case .cancelInFlight:
      let handle = inFlight
      inFlight = nil
      handle?.cancel()
    case .succeed:
      client.apply(call.effect, database: database)
      client.metrics.value.finished(method: call.method, error: nil, after: loop.now - startedAt)
      output?()
    case .fail(let error):
      client.metrics.value.finished(method: call.method, error: error, after: loop.now - startedAt)
      fail(error)
    }
  }

  /// Reads the schema with a DescribeCollection of its own (no retries: this call retries).
  private func fetchSchema(timeout: Duration) {
    guard let collection = call.schemaOf else { return }
    let options = MilvusCallOptions(
      timeout: timeout, database: databaseOverride, retryPolicy: .never)
    client.onLoop.perform(.describeCollection(collection), options: options) { [self] result in
      switch result {
      case .success(let description):
        run(
          machine.schemaFetched(
            CallRunMachine.KnownSchema(
              schema: description.schema, timestamp: description.updateTimestamp)))
      case .failure(let error):
        run(machine.schemaFetchFailed(error, now: elapsed))
      }
    }
  }

  /// Encodes the request against `schema` and keeps the context for decoding the answer.
  private func encode(schema: CallRunMachine.KnownSchema?) {
    let session = client.sessionTimestamps
    let context: MilvusCallContext
    if let schema {
      context = MilvusCallContext(
        database: database, schema: schema.schema, schemaTimestamp: schema.timestamp,
        session: session,
        sessionTimestamp: session.timestamp(database: database, collection: call.schemaOf))
    } else {
      context = MilvusCallContext(database: database, schema: nil, session: session)
    }
    let request: [UInt8]
    do {
      request = try call.encode(context)
    } catch {
      return run(machine.encodeFailed(Self.milvexError(error, method: call.method)))
    }
    self.context = context
    run(machine.encoded(request))
  }

  private func send(_ request: [UInt8], timeout: Duration, on channel: GRPCChannel) {
    var metadata = GRPCMetadata()
    if let databaseOverride { metadata.add("dbname", databaseOverride) }
    // An argument error completes the call before `unary` returns: only a call still running
    // becomes the one in flight.
    var answered = false
    let started = channel.onLoop.unary(
      path: call.path, request: request, metadata: metadata, timeout: timeout
    ) { [self] result in
      answered = true
      inFlight = nil
      switch result {
      case .failure(let error):
        run(machine.answered(.failure(error), now: elapsed))
      case .success(let bytes):
        receive(bytes)
      }
    }
    if !answered { inFlight = started }
  }

  /// Decodes a response and reports how the attempt ended.
  private func receive(_ bytes: [UInt8]) {
    // Decoding a write records its session timestamp: a cancelled call decodes nothing.
    guard machine.awaitsAnswer else { return }
    guard let context else {
      let error = MilvexError.protocolViolation("\(call.method): answered before it was encoded")
      return run(machine.answered(.failure(error), now: elapsed))
    }
    do {
      let output = try deliver(bytes, context)
      run(machine.answered(.success, now: elapsed), output: output)
    } catch let mismatch as SchemaMismatch {
      run(machine.answered(.schemaMismatch(mismatch.error), now: elapsed))
    } catch {
      run(machine.answered(.failure(Self.decodingError(error, method: call.method)), now: elapsed))
    }
  }

  private func scheduleRetry(after delay: Duration, attempt: Int, error: MilvexError) {
    client.metrics.value.retrying(method: call.method)
    client.logger.debug(
      "retrying",
      metadata: [
        "method": "\(call.method)", "attempt": "\(attempt)", "after": "\(delay)",
        "error": "\(error)",
      ])
    // The timer never fires once the loop shuts down: the machine ends the call then.
    loop.onShutdown(of: self) { [self] in run(machine.loopShutDown()) }
    do {
      retryTimer = try loop.scheduleTimer(after: delay) { [self] in
        loop.removeShutdownHandler(of: self)
        retryTimer = nil
        run(machine.retryTimerFired(now: elapsed))
      }
    } catch {
      loop.removeShutdownHandler(of: self)
      run(machine.retryTimerFailed(error))
    }
  }

  // MARK: - Errors

  /// A response that cannot be read fails the call with `INTERNAL` ("error parsing response",
  /// grpc `doc/statuscodes.md`); Milvus's own error statuses pass through.
  static func decodingError(_ error: any Error, method: String) -> MilvexError {
    switch milvexError(error, method: method) {
    case .protocolViolation(let what):
      return .violation(.unparsableMessage("the \(method) response: \(what)"))
    case let other:
      return other
    }
  }

  /// An error thrown by encoding or decoding as a ``MilvexError``: anything but a
  /// ``MilvexError`` or a ``SchemaMismatch`` is a protocol violation of `method`.
  static func milvexError(_ error: any Error, method: String) -> MilvexError {
    if let error = error as? MilvexError { return error }
    if let mismatch = error as? SchemaMismatch { return mismatch.error }
    return .protocolViolation("\(method): \(error)")
  }
}
