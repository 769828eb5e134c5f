import Foundation
import Logging

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
  private let schemas: LoopBound<[SchemaKey: CollectionSchema]>
  private let logger: Logger

  struct SchemaKey: Hashable {
    let database: String
    let collection: String
  }

  /// A client over an existing connection (which it does not own: ``close()`` disconnects it
  /// anyway, as the usual owner).
  ///
  /// - Important: Callable from any thread.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for a bad retry policy.
  public init(connection: Connection, retryPolicy: RetryPolicy = RetryPolicy(), logger: Logger? = nil) throws(MilvexError) {
    try retryPolicy.validate()
    self.connection = connection
    self.retryPolicy = retryPolicy
    self.schemas = LoopBound([:], loop: connection.loop)
    self.logger = logger ?? Logger(label: "MilvexReactor.MilvusClient")
  }

  /// Starts a ``Connection`` and a client over it. Returns at once (the connection keeps
  /// trying); calls wait for it within their deadline.
  ///
  /// - Important: Callable from any thread.
  public static func connect(
    config: ConnectionConfig, on loop: EventLoop, name: String? = nil, retryPolicy: RetryPolicy = RetryPolicy(),
    logger: Logger? = nil
  ) throws(MilvexError) -> MilvusClient {
    try retryPolicy.validate()
    let connection = try Connection.start(config: config, on: loop, name: name, logger: logger ?? Logger(label: "MilvexReactor.Connection"))
    return try MilvusClient(connection: connection, retryPolicy: retryPolicy, logger: logger)
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
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread if the loop has shut down.
  public func perform<Output>(
    _ call: MilvusCall<Output>, options: MilvusCallOptions = MilvusCallOptions(),
    completion: @escaping @Sendable (Result<Output, MilvexError>) -> Void
  ) {
    let startedAt = ContinuousClock.now
    do {
      try connection.loop.execute { [self] in
        performOnLoop(call, options: options, startedAt: startedAt, completion: completion)
      }
    } catch {
      completion(.failure(error))
    }
  }

  /// `async` form of ``perform(_:options:completion:)``.
  ///
  /// - Important: Callable from any task. Cancelling the task ends the call at once with
  ///   `CANCELLED`: the attempt in flight is reset, a pending retry is dropped.
  public func perform<Output>(
    _ call: MilvusCall<Output>, options: MilvusCallOptions = MilvusCallOptions()
  ) async throws(MilvexError) -> Output {
    let cancellation = CallCancellation(loop: connection.loop)
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Result<Output, MilvexError>, Never>) in
        let startedAt = ContinuousClock.now
        do {
          try connection.loop.execute { [self] in
            performOnLoop(call, options: options, startedAt: startedAt, cancellation: cancellation) {
              continuation.resume(returning: $0)
            }
          }
        } catch {
          continuation.resume(returning: .failure(.eventLoopShutDown(operation: call.method)))
        }
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
    performOnLoop(call, options: options, startedAt: .now, completion: completion)
  }

  private func performOnLoop<Output>(
    _ call: MilvusCall<Output>, options: MilvusCallOptions, startedAt: ContinuousClock.Instant,
    cancellation: CallCancellation? = nil, completion: @escaping (Result<Output, MilvexError>) -> Void
  ) {
    connection.loop.assertInLoopThread()
    if let invalid = call.invalid { return completion(.failure(invalid)) }
    if let database = options.database, database.isEmpty {
      return completion(.failure(.invalidArgument(field: "options.database", message: "must not be empty")))
    }
    let policy = options.retryPolicy ?? retryPolicy
    do { try policy.validate() } catch { return completion(.failure(error)) }
    let timeout = options.timeout ?? connection.config.timeout
    guard timeout > .zero else {
      return completion(.failure(.invalidArgument(field: "options.timeout", message: "must be positive, is \(timeout)")))
    }
    let run = CallRun(
      client: self, call: call, policy: policy, deadline: startedAt + timeout,
      database: options.database ?? connection.databaseOnLoop, databaseOverride: options.database,
      completion: completion)
    if let cancellation {
      guard !cancellation.state.value.requested else { return run.cancel() }
      cancellation.state.value.cancel = { [weak run] in run?.cancel() }
    }
    run.start()
  }

  // MARK: - Schema cache (loop thread)

  func cachedSchema(database: String, collection: String) -> CollectionSchema? {
    schemas.value[SchemaKey(database: database, collection: collection)]
  }

  func apply(_ effect: SchemaCacheEffect, database: String) {
    switch effect {
    case .none: break
    case .remember(let collection, let schema):
      schemas.value[SchemaKey(database: database, collection: collection)] = schema
    case .forget(let collections):
      for collection in collections { schemas.value[SchemaKey(database: database, collection: collection)] = nil }
    case .forgetDatabase(let name):
      schemas.value = schemas.value.filter { $0.key.database != name }
    }
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
        do { try await Task.sleep(for: .milliseconds(50)) } catch {
          throw .status(.cancelled, "waiting for collection '\(name)' to load was cancelled")
        }
      }
    }
  }
}

/// One performance of a call: waits for the channel, fetches the schema if needed, encodes
/// once, sends, decodes, and retries by the policy until success, a final error or the
/// deadline. Loop-confined.
private final class CallRun<Output: Sendable> {
  let client: MilvusClient
  let call: MilvusCall<Output>
  let policy: RetryPolicy
  let deadline: ContinuousClock.Instant
  let database: String
  let databaseOverride: String?
  var completion: ((Result<Output, MilvexError>) -> Void)?
  var attempt = 0
  var context: MilvusCallContext?
  var request: [UInt8]?
  var retryTimer: LoopTimer?
  /// Cancels the attempt in flight.
  var inFlight: CallHandle?

  var loop: EventLoop { client.connection.loop }

  init(
    client: MilvusClient, call: MilvusCall<Output>, policy: RetryPolicy, deadline: ContinuousClock.Instant,
    database: String, databaseOverride: String?,
    completion: @escaping (Result<Output, MilvexError>) -> Void
  ) {
    self.client = client
    self.call = call
    self.policy = policy
    self.deadline = deadline
    self.database = database
    self.databaseOverride = databaseOverride
    self.completion = completion
  }

  func start() {
    guard completion != nil else { return }
    attempt += 1
    let remaining = deadline - .now
    guard remaining > .zero else {
      return finish(.failure(.status(.deadlineExceeded, "the \(call.method) call's deadline passed before it could be sent")))
    }
    // Encode first (with the schema, fetched once if needed): a bad argument fails here,
    // before any request of this call is sent, even while the connection is down.
    prepare { [self] in
      // Wait-for-ready: a call made while (re)connecting waits for the channel within its deadline.
      client.connection.waitForChannelOnLoop(deadline: deadline) { [self] result in
        switch result {
        case .failure(let error): failed(error)
        case .success(let (channel, _)): send(on: channel)
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
        return finish(.failure(Self.milvexError(error, method: call.method)))
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
    if let schema = client.cachedSchema(database: database, collection: collection) {
      context = MilvusCallContext(database: database, schema: schema)
      return body()
    }
    let options = MilvusCallOptions(
      timeout: deadline - .now, database: databaseOverride, retryPolicy: .never)
    client.performOnLoop(.describeCollection(collection), options: options) { [self] result in
      switch result {
      case .success(let description):
        client.apply(.remember(collection: collection, schema: description.schema), database: database)
        context = MilvusCallContext(database: database, schema: description.schema)
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
      return finish(.failure(.status(.deadlineExceeded, "the \(call.method) call's deadline passed")))
    }
    let handle = CallHandle(loop: loop)
    inFlight = handle
    channel.unaryOnLoop(
      path: call.path, request: request, metadata: metadata, timeout: remaining, handle: handle
    ) { [self] result in
      inFlight = nil
      switch result {
      case .failure(let error):
        failed(error)
      case .success(let bytes):
        do {
          let output = try call.decode(bytes, context)
          client.apply(call.effect, database: database)
          finish(.success(output))
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
    guard completion != nil else { return }
    retryTimer?.cancel()
    retryTimer = nil
    loop.removeShutdownHandler(of: self)
    inFlight?.cancelOnLoop()
    inFlight = nil
    finish(.failure(.status(.cancelled, "the \(call.method) call was cancelled by the client")))
  }

  private func failed(_ error: MilvexError) {
    guard completion != nil else { return }
    let decision = policy.decide(
      attempt: attempt, error: error, isWrite: call.isWrite, remaining: deadline - .now,
      random: Double.random(in: 0..<1))
    guard case .retry(let delay) = decision else { return finish(.failure(error)) }
    do {
      loop.onShutdown(of: self) { [self] in
        retryTimer?.cancel()
        finish(.failure(.eventLoopShutDown(operation: "\(call.method) retry")))
      }
      retryTimer = try loop.scheduleTimer(after: delay) { [self] in
        loop.removeShutdownHandler(of: self)
        retryTimer = nil
        start()
      }
    } catch {
      loop.removeShutdownHandler(of: self)
      finish(.failure(error))
    }
  }

  private func finish(_ result: Result<Output, MilvexError>) {
    guard let completion else { return }
    self.completion = nil
    completion(result)
  }

  static func milvexError(_ error: any Error, method: String) -> MilvexError {
    if let error = error as? MilvexError { return error }
    return .protocolViolation("\(method): \(error)")
  }
}

/// Cancels an `async` perform from its task's cancellation handler (any thread).
final class CallCancellation: Sendable {
  struct State {
    var requested = false
    var cancel: (() -> Void)?
  }

  let loop: EventLoop
  let state: LoopBound<State>

  init(loop: EventLoop) {
    self.loop = loop
    state = LoopBound(State(), loop: loop)
  }

  func cancel() {
    try? loop.execute { [state] in
      state.value.requested = true
      state.value.cancel?()
      state.value.cancel = nil
    }
  }
}
