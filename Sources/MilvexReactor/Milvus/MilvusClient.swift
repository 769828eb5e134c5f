import Foundation
import Logging
import Metrics

/// Per-call settings for ``MilvusClient/perform(_:options:)``.
public struct MilvusCallOptions: Sendable, Hashable {
  /// The whole call's deadline, counted from `perform`, covering waiting for the connection,
  /// every attempt and every retry delay. Defaults to the connection config's `timeout`.
  public var timeout: Duration?
  /// Runs the call in this database instead of the client's current one.
  public var database: String?
  /// Overrides the client's retry policy for this call.
  public var retryPolicy: RetryPolicy?

  public init(timeout: Duration? = nil, database: String? = nil, retryPolicy: RetryPolicy? = nil) {
    self.timeout = timeout
    self.database = database
    self.retryPolicy = retryPolicy
  }
}

/// A typed Milvus client over a ``Connection``: performs ``MilvusCall``s (built with
/// `.createCollection(…)`, `.insert(…)`, `.search(…)` and the like), with Milvus error statuses
/// turned into ``MilvexError/milvus(code:reason:)``, arguments checked against the collection's
/// schema before sending, and retries by a ``RetryPolicy`` inside each call's deadline.
///
/// ```swift
/// let client = try MilvusClient.connect(config: ConnectionConfig(host: "127.0.0.1", port: 19530), on: loop)
/// let hits = try await client.perform(.search("docs", vectors: [query], limit: 5))
/// ```
///
/// A `Sendable` handle: every call's work runs on the connection's loop thread.
public final class MilvusClient: Sendable {
  public let connection: Connection
  public let retryPolicy: RetryPolicy
  /// Schemas by database and collection name, filled by create/describe and by the first call
  /// that needs one; forgotten on drop, rename, alias changes and Milvus errors.
  private let schemas: LoopBound<[SchemaKey: (schema: CollectionSchema, timestamp: UInt64)]>
  let logger: Logger
  /// Per-method call counts, outcomes, retries and durations (see ``MilvusCallMetrics``).
  let metrics: LoopBound<MilvusCallMetrics>

  struct SchemaKey: Hashable {
    let database: String
    let collection: String
  }

  /// A client over an existing connection (which it does not own: ``close()`` disconnects it
  /// anyway, as the usual owner).
  ///
  /// - Parameters:
  ///   - logger: retries are logged at debug level (method, attempt, delay, error).
  ///   - metrics: where `milvex_milvus_calls_total`, `milvex_milvus_retries_total` and
  ///     `milvex_milvus_call_duration` go (per method; see Docs/milvus-api.md);
  ///     `MetricsSystem.factory` if nil.
  /// - Important: Callable from any thread.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for a bad retry policy.
  public init(
    connection: Connection, retryPolicy: RetryPolicy = RetryPolicy(), logger: Logger? = nil,
    metrics: (any MetricsFactory)? = nil
  ) throws(MilvexError) {
    try retryPolicy.validate()
    self.connection = connection
    self.retryPolicy = retryPolicy
    self.schemas = LoopBound([:], loop: connection.loop)
    self.logger = logger ?? Logger(label: "MilvexReactor.MilvusClient")
    self.metrics = LoopBound(MilvusCallMetrics(factory: metrics ?? MetricsSystem.factory), loop: connection.loop)
  }

  /// Starts a ``Connection`` and a client over it. Returns at once (the connection keeps
  /// trying); calls wait for it within their deadline.
  ///
  /// - Important: Callable from any thread.
  public static func connect(
    config: ConnectionConfig, on loop: EventLoop, name: String? = nil, retryPolicy: RetryPolicy = RetryPolicy(),
    logger: Logger? = nil, metrics: (any MetricsFactory)? = nil
  ) throws(MilvexError) -> MilvusClient {
    try retryPolicy.validate()
    let connection = try Connection.start(
      config: config, on: loop, name: name, logger: logger ?? Logger(label: "MilvexReactor.Connection"),
      metrics: metrics)
    return try MilvusClient(connection: connection, retryPolicy: retryPolicy, logger: logger, metrics: metrics)
  }

  /// Disconnects the connection; calls in flight fail with ``MilvexError/disconnected(reason:)``.
  ///
  /// - Important: Callable from any task.
  public func close() async {
    await connection.disconnect()
  }

  // MARK: - Performing calls

  /// Performs `call` and delivers its result exactly once.
  ///
  /// - Returns: a handle that cancels the call (`CANCELLED` at once; the attempt in flight is
  ///   reset, a pending retry dropped).
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread if the loop has shut down.
  @discardableResult
  public func perform<Output>(
    _ call: MilvusCall<Output>, options: MilvusCallOptions = MilvusCallOptions(),
    completion: @escaping @Sendable (Result<Output, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let cancellation = CallCancellation(loop: connection.loop)
    let decode = call.decode
    submit(call.erased, options: options, cancellation: cancellation, deliver: { bytes, context in
      let output = try decode(bytes, context)
      return { completion(.success(output)) }
    }, fail: { completion(.failure($0)) })
    return MilvusCallHandle(cancellation: cancellation)
  }

  /// `async` form of ``perform(_:options:completion:)``.
  ///
  /// - Important: Callable from any task. Cancelling the task ends the call at once with
  ///   `CANCELLED`: the attempt in flight is reset, a pending retry is dropped.
  @inlinable
  public func perform<Output>(
    _ call: MilvusCall<Output>, options: MilvusCallOptions = MilvusCallOptions()
  ) async throws(MilvexError) -> Output {
    // Inlinable, so that the generic parts (the continuation, the decode closure) are
    // specialized in the caller; everything per call inside the library is not generic.
    let cancellation = CallCancellation(loop: connection.loop)
    let decode = call.decode
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Result<Output, MilvexError>, Never>) in
        submit(call.erased, options: options, cancellation: cancellation, deliver: { bytes, context in
          let output = try decode(bytes, context)
          return { continuation.resume(returning: .success(output)) }
        }, fail: { continuation.resume(returning: .failure($0)) })
      }
    } onCancel: {
      cancellation.cancel()
    }
    return try result.get()
  }

  /// Loop-thread form of ``perform(_:options:completion:)``: no hop through the queue.
  ///
  /// - Important: Loop thread only; `completion` runs on the loop thread (argument errors
  ///   before this returns).
  public func performOnLoop<Output>(
    _ call: MilvusCall<Output>, options: MilvusCallOptions = MilvusCallOptions(),
    completion: @escaping (Result<Output, MilvexError>) -> Void
  ) {
    let decode = call.decode
    startOnLoop(call.erased, options: options, startedAt: .now, cancellation: nil, deliver: { bytes, context in
      let output = try decode(bytes, context)
      return { completion(.success(output)) }
    }, fail: { completion(.failure($0)) })
  }

  /// Decodes a response; returns the typed success to deliver (or throws).
  @usableFromInline
  typealias Deliver = ([UInt8], MilvusCallContext) throws -> () -> Void
  @usableFromInline
  typealias SendableDeliver = @Sendable ([UInt8], MilvusCallContext) throws -> () -> Void

  /// Hands the call to the loop thread.
  @usableFromInline
  func submit(
    _ call: ErasedCall, options: MilvusCallOptions, cancellation: CallCancellation?,
    deliver: @escaping SendableDeliver, fail: @escaping @Sendable (MilvexError) -> Void
  ) {
    let startedAt = ContinuousClock.now
    do {
      try connection.loop.execute { [self] in
        startOnLoop(call, options: options, startedAt: startedAt, cancellation: cancellation, deliver: deliver, fail: fail)
      }
    } catch {
      fail(error)
    }
  }

  private func startOnLoop(
    _ call: ErasedCall, options: MilvusCallOptions, startedAt: ContinuousClock.Instant,
    cancellation: CallCancellation?, deliver: @escaping Deliver, fail: @escaping (MilvexError) -> Void
  ) {
    connection.loop.assertInLoopThread()
    func reject(_ error: MilvexError) {
      metrics.value.finished(method: call.method, error: error, after: .now - startedAt)
      fail(error)
    }
    if let invalid = call.invalid { return reject(invalid) }
    if let database = options.database, database.isEmpty {
      return reject(.invalidArgument(field: "options.database", message: "must not be empty"))
    }
    let policy = options.retryPolicy ?? retryPolicy
    if options.retryPolicy != nil {
      do { try policy.validate() } catch { return reject(error) }
    }
    let timeout = options.timeout ?? connection.config.timeout
    guard timeout > .zero else {
      return reject(.invalidArgument(field: "options.timeout", message: "must be positive, is \(timeout)"))
    }
    let run = CallRun(
      client: self, call: call, policy: policy, startedAt: startedAt, deadline: startedAt + timeout,
      database: options.database ?? connection.databaseOnLoop, databaseOverride: options.database,
      deliver: deliver, fail: fail)
    if let cancellation {
      guard !cancellation.state.value.requested else { return run.cancel() }
      cancellation.state.value.cancel = { [weak run] in run?.cancel() }
    }
    run.start()
  }

  // MARK: - Schema cache (loop thread)

  func cachedSchema(database: String, collection: String) -> (schema: CollectionSchema, timestamp: UInt64)? {
    schemas.value[SchemaKey(database: database, collection: collection)]
  }

  func apply(_ effect: SchemaCacheEffect, database: String) {
    switch effect {
    case .none: break
    case .remember(let collection, let schema, let timestamp):
      schemas.value[SchemaKey(database: database, collection: collection)] = (schema, timestamp)
    case .forget(let collections):
      for collection in collections { schemas.value[SchemaKey(database: database, collection: collection)] = nil }
    case .forgetDatabase(let name):
      schemas.value = schemas.value.filter { $0.key.database != name }
    }
  }

  /// Forgets every cached collection schema; the next call that needs one reads it again.
  /// Call it after another process dropped and re-created a collection with a different schema
  /// (until then, arguments are checked against the schema this client last saw; a Milvus error
  /// on a call also forgets that collection's entry).
  ///
  /// - Important: Callable from any thread; takes effect before any call submitted after it.
  public func forgetCachedSchemas() {
    try? connection.loop.execute { [schemas] in schemas.value.removeAll() }
  }

  // MARK: - Conveniences

  /// Makes `database` the current one for later calls (kept across reconnects), after checking
  /// that it exists.
  ///
  /// - Important: Callable from any task.
  /// - Throws: the Milvus error if the database does not exist.
  public func useDatabase(_ database: String) async throws(MilvexError) {
    _ = try await perform(.describeDatabase(database))
    try connection.useDatabase(database)
  }

  /// Loads a collection and waits until it is loaded (polling its load state), or fails with
  /// `DEADLINE_EXCEEDED` after `timeout`.
  ///
  /// - Important: Callable from any task.
  public func loadCollection(_ name: String, timeout: Duration = .seconds(60)) async throws(MilvexError) {
    let deadline = ContinuousClock.now + timeout
    try await perform(.loadCollection(name), options: MilvusCallOptions(timeout: timeout))
    while true {
      let remaining = deadline - .now
      guard remaining > .zero else {
        throw .status(.deadlineExceeded, "collection '\(name)' was not loaded within \(timeout)")
      }
      let state = try await perform(.loadState(of: name), options: MilvusCallOptions(timeout: remaining))
      switch state {
      case .loaded: return
      case .notExist: throw .milvus(code: 100, reason: "collection '\(name)' does not exist")
      case .loading, .notLoaded:
        await LoopPause.pause(for: .milliseconds(50), on: connection.loop)
        if Task.isCancelled {
          throw .status(.cancelled, "waiting for collection '\(name)' to load was cancelled")
        }
      }
    }
  }
}

/// An `async` pause measured by a loop timer (the loop owns every timer), that ends early when
/// the task is cancelled or the loop shuts down.
final class LoopPause: Sendable {
  private struct State {
    var continuation: CheckedContinuation<Void, Never>?
    var timer: LoopTimer?
    /// Ended before it started (cancelled before the loop ran `start`).
    var ended = false
  }

  private let loop: EventLoop
  private let state: LoopBound<State>

  private init(loop: EventLoop) {
    self.loop = loop
    state = LoopBound(State(), loop: loop)
  }

  static func pause(for delay: Duration, on loop: EventLoop) async {
    let pause = LoopPause(loop: loop)
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        do {
          try loop.execute { pause.start(delay, continuation) }
        } catch {
          continuation.resume()
        }
      }
    } onCancel: {
      try? loop.execute { pause.end() }
    }
  }

  private func start(_ delay: Duration, _ continuation: CheckedContinuation<Void, Never>) {
    guard !state.value.ended else { return continuation.resume() }
    state.value.continuation = continuation
    loop.onShutdown(of: self) { [self] in end() }
    do {
      state.value.timer = try loop.scheduleTimer(after: delay) { [self] in end() }
    } catch {
      end()
    }
  }

  /// Resumes the waiting task once; later calls do nothing.
  private func end() {
    guard let continuation = state.value.continuation else {
      state.value.ended = true
      return
    }
    state.value.continuation = nil
    state.value.timer?.cancel()
    state.value.timer = nil
    loop.removeShutdownHandler(of: self)
    continuation.resume()
  }
}

/// One performance of a call: waits for the channel, fetches the schema if needed, encodes
/// once, sends, decodes, and retries by the policy until success, a final error or the
/// deadline. Loop-confined.
private final class CallRun {
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
  var inFlight: CallHandle?
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
      return finish(failure: .status(.deadlineExceeded, "the \(call.method) call's deadline passed before it could be sent"))
    }
    // Encode first (with the schema, fetched once if needed): a bad argument fails here,
    // before any request of this call is sent, even while the connection is down.
    prepare { [self] in
      // Wait-for-ready: a call made while (re)connecting waits for the channel within its deadline.
      client.connection.waitForLiveChannelOnLoop(deadline: deadline) { [self] result in
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
    guard let collection = call.schemaOf else {
      context = MilvusCallContext(database: database, schema: nil)
      return body()
    }
    if let cached = client.cachedSchema(database: database, collection: collection) {
      context = MilvusCallContext(database: database, schema: cached.schema, schemaTimestamp: cached.timestamp)
      return body()
    }
    let remaining = deadline - .now
    guard remaining > .zero else {
      return failed(.status(.deadlineExceeded, "the \(call.method) call's deadline passed while reading the schema"))
    }
    let options = MilvusCallOptions(timeout: remaining, database: databaseOverride, retryPolicy: .never)
    client.performOnLoop(.describeCollection(collection), options: options) { [self] result in
      switch result {
      case .success(let description):
        client.apply(
          .remember(collection: collection, schema: description.schema, timestamp: description.updateTimestamp),
          database: database)
        context = MilvusCallContext(
          database: database, schema: description.schema, schemaTimestamp: description.updateTimestamp)
        body()
      case .failure(let error):
        failed(error)
      }
    }
  }

  private func send(on channel: GRPCChannel) {
    guard let context, let request else { return }
    var metadata = GRPCMetadata()
    if let databaseOverride { metadata.add("dbname", databaseOverride) }
    let remaining = deadline - .now
    guard remaining > .zero else {
      return finish(failure: .status(.deadlineExceeded, "the \(call.method) call's deadline passed"))
    }
    let handle = CallHandle(loop: loop)
    requestSent = true
    inFlight = handle
    channel.unaryOnLoop(
      path: call.path, request: request, metadata: metadata, timeout: remaining, handle: handle
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
          let error = Self.milvexError(error, method: call.method)
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
    inFlight?.cancelOnLoop()
    inFlight = nil
    finish(failure: .status(.cancelled, "the \(call.method) call was cancelled by the client"))
  }

  private func failed(_ error: MilvexError) {
    guard !finished else { return }
    let decision = policy.decide(
      // A write whose request never left (the schema lookup or the wait for the channel failed)
      // cannot have applied: it is retried like a read.
      attempt: attempt, error: error, isWrite: call.isWrite && requestSent, remaining: deadline - .now,
      random: Double.random(in: 0..<1))
    guard case .retry(let delay) = decision else { return finish(failure: error) }
    client.metrics.value.retrying(method: call.method)
    client.logger.debug("retrying", metadata: [
      "method": "\(call.method)", "attempt": "\(attempt + 1)", "after": "\(delay)", "error": "\(error)",
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
    client.metrics.value.finished(method: call.method, error: error, after: .now - startedAt)
    fail(error)
  }

  static func milvexError(_ error: any Error, method: String) -> MilvexError {
    if let error = error as? MilvexError { return error }
    if let mismatch = error as? SchemaMismatch { return mismatch.error }
    return .protocolViolation("\(method): \(error)")
  }
}

/// Cancels a call made with ``MilvusClient/perform(_:options:completion:)``.
public struct MilvusCallHandle: Sendable {
  let cancellation: CallCancellation

  /// Ends the call with `CANCELLED` (unless it has completed): the attempt in flight is reset,
  /// a pending retry dropped. Idempotent.
  ///
  /// - Important: Callable from any thread.
  public func cancel() {
    cancellation.cancel()
  }
}

/// Cancels a perform from any thread: from a task's cancellation handler or a handle.
@usableFromInline
final class CallCancellation: Sendable {
  struct State {
    var requested = false
    var cancel: (() -> Void)?
  }

  let loop: EventLoop
  let state: LoopBound<State>

  @usableFromInline
  init(loop: EventLoop) {
    self.loop = loop
    state = LoopBound(State(), loop: loop)
  }

  @usableFromInline
  func cancel() {
    try? loop.execute { [state] in
      state.value.requested = true
      state.value.cancel?()
      state.value.cancel = nil
    }
  }
}
