import Logging

/// One performance of a call: waits for the channel, fetches the schema if needed, encodes
/// once, sends, decodes, and retries by the policy until success, a final error or the
/// deadline. Loop-confined.
final class CallRun {
  let client: MilvusClient
  let call: ErasedCall
  let policy: RetryPolicy
  let startedAt: ContinuousClock.Instant
  let deadline: ContinuousClock.Instant
  let database: String
  let databaseOverride: String?
  /// Decodes a response; returns the typed success to deliver, or throws. Nil once finished.
  var deliver: (([UInt8], MilvusCallContext) throws -> () -> Void)?
  var fail: (MilvexError) -> Void
  var attempt = 0
  var context: MilvusCallContext?
  var request: [UInt8]?
  var retryTimer: LoopTimer?
  /// Cancels the attempt in flight.
  var inFlight: GRPCChannel.LoopView.Call?
  /// Whether the request was handed to a channel at least once.
  var requestSent = false
  /// Whether the schema was read again after a `SchemaMismatch` (done at most once).
  var refreshedSchema = false

  var loop: EventLoop { client.connection.loop }

  init(
    client: MilvusClient, call: ErasedCall, policy: RetryPolicy, startedAt: ContinuousClock.Instant,
    deadline: ContinuousClock.Instant, database: String, databaseOverride: String?,
    deliver: @escaping ([UInt8], MilvusCallContext) throws -> () -> Void,
    fail: @escaping (MilvexError) -> Void
  ) {
    self.client = client
    self.call = call
    self.policy = policy
    self.startedAt = startedAt
    self.deadline = deadline
    self.database = database
    self.databaseOverride = databaseOverride
    self.deliver = deliver
    self.fail = fail
  }

  private var finished: Bool { deliver == nil }

  func start() {
    guard !finished else { return }
    attempt += 1
    let remaining = deadline - .now
    guard remaining > .zero else {
      return finish(
        failure: .status(
          .deadlineExceeded, "the \(call.method) call's deadline passed before it could be sent"))
    }
    // Encode first (with the schema, fetched once if needed): a bad argument fails here,
    // before any request of this call is sent, even while the connection is down.
    prepare { [self] in
      // Wait-for-ready: a call made while (re)connecting waits for the channel within its deadline.
      client.connection.onLoop.waitForChannel(deadline: deadline) { [self] result in
        switch result {
        case .failure(let error): failed(error)
        case .success(let channel): send(on: channel)
        }
      }
    }
  }

  /// Runs `body` once the request is encoded.
  private func prepare(_ body: @escaping () -> Void) {
    if request != nil { return body() }
    withContext { [self] in
      do {
        request = try call.encode(context!)
      } catch {
        return finish(failure: Self.milvexError(error, method: call.method))
      }
      body()
    }
  }

  /// Runs `body` once the call's context (and schema, if it needs one) is known.
  private func withContext(_ body: @escaping () -> Void) {
    if context != nil { return body() }
    let session = client.sessionTimestamps
    let sessionTimestamp = session.timestamp(database: database, collection: call.schemaOf)
    guard let collection = call.schemaOf else {
      context = MilvusCallContext(database: database, schema: nil, session: session)
      return body()
    }
    if let cached = client.cachedSchema(database: database, collection: collection) {
      context = MilvusCallContext(
        database: database, schema: cached.schema, schemaTimestamp: cached.timestamp,
        session: session, sessionTimestamp: sessionTimestamp)
      return body()
    }
    let remaining = deadline - .now
    guard remaining > .zero else {
      return failed(
        .status(
          .deadlineExceeded, "the \(call.method) call's deadline passed while reading the schema"))
    }
    let options = MilvusCallOptions(
      timeout: remaining, database: databaseOverride, retryPolicy: .never)
    client.onLoop.perform(.describeCollection(collection), options: options) { [self] result in
      guard !finished else { return }
      switch result {
      case .success(let description):
        client.apply(
          .remember(
            collection: collection, schema: description.schema,
            timestamp: description.updateTimestamp),
          database: database)
        context = MilvusCallContext(
          database: database, schema: description.schema,
          schemaTimestamp: description.updateTimestamp, session: session,
          sessionTimestamp: sessionTimestamp)
        body()
      case .failure(let error):
        failed(error)
      }
    }
  }

  private func send(on channel: GRPCChannel) {
    // A call cancelled while it waited for its schema or channel sends nothing.
    guard !finished, let context, let request else { return }
    var metadata = GRPCMetadata()
    if let databaseOverride { metadata.add("dbname", databaseOverride) }
    let remaining = deadline - .now
    guard remaining > .zero else {
      return finish(
        failure: .status(.deadlineExceeded, "the \(call.method) call's deadline passed"))
    }
    requestSent = true
    inFlight = channel.onLoop.unary(
      path: call.path, request: request, metadata: metadata, timeout: remaining
    ) { [self] result in
      inFlight = nil
      switch result {
      case .failure(let error):
        failed(error)
      case .success(let bytes):
        guard let deliver else { return }
        do {
          let succeed = try deliver(bytes, context)
          self.deliver = nil
          client.apply(call.effect, database: database)
          client.metrics.value.finished(method: call.method, error: nil, after: .now - startedAt)
          succeed()
        } catch let mismatch as SchemaMismatch {
          // Rejected, not applied: read the schema again and resend, once.
          client.apply(.forget(collections: call.schemaOf.map { [$0] } ?? []), database: database)
          guard !refreshedSchema, call.schemaOf != nil else { return failed(mismatch.error) }
          refreshedSchema = true
          self.context = nil
          self.request = nil
          prepare { [self] in send(on: channel) }
        } catch {
          let error = Self.decodingError(error, method: call.method)
          if case .milvus = error, let collection = call.schemaOf {
            // The collection may have changed (dropped, recreated); read its schema again next time.
            client.apply(.forget(collections: [collection]), database: database)
          }
          failed(error)
        }
      }
    }
  }

  /// Ends the call with `CANCELLED` now: resets the attempt in flight, drops a pending retry.
  func cancel() {
    guard !finished else { return }
    retryTimer?.cancel()
    retryTimer = nil
    loop.removeShutdownHandler(of: self)
    inFlight?.cancel()
    inFlight = nil
    finish(failure: .status(.cancelled, "the \(call.method) call was cancelled by the client"))
  }

  private func failed(_ error: MilvexError) {
    guard !finished else { return }
    let decision = policy.decide(
      // A write whose request never left (the schema lookup or the wait for the channel failed)
      // cannot have applied: it is retried like a read.
      attempt: attempt, error: error, isWrite: call.isWrite && requestSent,
      remaining: deadline - .now,
      random: Double.random(in: 0..<1))
    guard case .retry(let delay) = decision else { return finish(failure: error) }
    client.metrics.value.retrying(method: call.method)
    client.logger.debug(
      "retrying",
      metadata: [
        "method": "\(call.method)", "attempt": "\(attempt + 1)", "after": "\(delay)",
        "error": "\(error)",
      ])
    do {
      loop.onShutdown(of: self) { [self] in
        retryTimer?.cancel()
        finish(failure: .eventLoopShutDown(operation: "\(call.method) retry"))
      }
      retryTimer = try loop.scheduleTimer(after: delay) { [self] in
        loop.removeShutdownHandler(of: self)
        retryTimer = nil
        start()
      }
    } catch {
      loop.removeShutdownHandler(of: self)
      finish(failure: error)
    }
  }

  /// Ends the call with `error` (once; later ends are ignored).
  private func finish(failure error: MilvexError) {
    guard !finished else { return }
    deliver = nil
    let error = Self.callError(error, method: call.method)
    client.metrics.value.finished(method: call.method, error: error, after: .now - startedAt)
    fail(error)
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

  static func milvexError(_ error: any Error, method: String) -> MilvexError {
    if let error = error as? MilvexError { return error }
    if let mismatch = error as? SchemaMismatch { return mismatch.error }
    return .protocolViolation("\(method): \(error)")
  }
}
