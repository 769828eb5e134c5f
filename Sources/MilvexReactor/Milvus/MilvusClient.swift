import Foundation
import Logging
import Metrics

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
  /// The connection the client's calls go through; ``close()`` disconnects it.
  public let connection: Connection
  /// The retry policy calls use unless their ``MilvusCallOptions/retryPolicy`` replaces it;
  /// validated when the client is made.
  public let retryPolicy: RetryPolicy
  /// Schemas by database and collection name, filled by create/describe and by the first call
  /// that needs one; forgotten on drop, rename, alias changes and Milvus errors.
  private let schemas: LoopBound<[SchemaKey: (schema: CollectionSchema, timestamp: UInt64)]>
  let logger: Logger
  /// Per-method call counts, outcomes, retries and durations (see ``MilvusCallMetrics``).
  let metrics: LoopBound<MilvusCallMetrics>
  /// The latest write per collection, for session reads (loop-confined).
  let sessionTimestamps = SessionTimestamps()
  /// Where each call's retry jitter comes from (a copy per call).
  let random: any BackoffRandomSource

  struct SchemaKey: Hashable {
    let database: String
    let collection: String
  }

  /// A client over an existing connection (which it does not own: ``close()`` disconnects it
  /// anyway, as the usual owner). The connection must run Milvus's set-up step: start it with
  /// `setup: .milvus` (``MilvusChannelSetup``), or use
  /// ``connect(config:on:name:retryPolicy:logger:metrics:random:)``.
  ///
  /// - Parameters:
  ///   - connection: the connection calls go through, started with ``MilvusChannelSetup``.
  ///   - retryPolicy: the calls' default ``RetryPolicy``; validated here.
  ///   - logger: retries are logged at debug level (method, attempt, delay, error).
  ///   - metrics: where `milvex_milvus_calls_total`, `milvex_milvus_retries_total` and
  ///     `milvex_milvus_call_duration` go (per method; see Docs/milvus-api.md);
  ///     `MetricsSystem.factory` if nil.
  ///   - random: the source of the retry delays' jitter; a test pins it to get exact delays.
  /// - Important: Callable from any thread.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for a bad retry policy, or a
  ///   connection started without ``MilvusChannelSetup``.
  public init(
    connection: Connection, retryPolicy: RetryPolicy = RetryPolicy(), logger: Logger? = nil,
    metrics: (any MetricsFactory)? = nil,
    random: any BackoffRandomSource = SystemBackoffRandomSource()
  ) throws(MilvexError) {
    guard connection.setup is MilvusChannelSetup else {
      throw .invalidArgument(
        field: "connection",
        message:
          "was started without Milvus's set-up step (Connect handshake, authorization and "
          + "dbname metadata); start it with `setup: .milvus` or use MilvusClient.connect")
    }
    try retryPolicy.validate()
    self.connection = connection
    self.retryPolicy = retryPolicy
    self.schemas = LoopBound([:], loop: connection.loop)
    self.logger = logger ?? Logger(label: "MilvexReactor.MilvusClient")
    self.metrics = LoopBound(
      MilvusCallMetrics(factory: metrics ?? MetricsSystem.factory), loop: connection.loop)
    self.random = random
  }

  /// Starts a ``Connection`` and a client over it. Returns at once (the connection keeps
  /// trying); calls wait for it within their deadline.
  ///
  /// `random` is the one source of every random draw the pair makes: the reconnect backoff's
  /// jitter, the spread of channel recycling and the retry delays' jitter. A test pins it
  /// (MilvexTesting's `PinnedRandomSource`) to get exact, repeatable delays everywhere.
  ///
  /// - Important: Callable from any thread.
  public static func connect(
    config: ConnectionConfig, on loop: EventLoop, name: String? = nil,
    retryPolicy: RetryPolicy = RetryPolicy(),
    logger: Logger? = nil, metrics: (any MetricsFactory)? = nil,
    random: any BackoffRandomSource = SystemBackoffRandomSource()
  ) throws(MilvexError) -> MilvusClient {
    try retryPolicy.validate()
    let connection = try Connection.start(
      config: config, on: loop, name: name, setup: .milvus,
      logger: logger ?? Logger(label: "MilvexReactor.Connection"), random: random,
      metrics: metrics)
    return try MilvusClient(
      connection: connection, retryPolicy: retryPolicy, logger: logger, metrics: metrics,
      random: random)
  }

  /// Disconnects the connection; calls in flight fail with ``MilvexError/disconnected(reason:)``.
  ///
  /// - Parameter completion: runs once, after the connection has disconnected.
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread if the loop has shut down (its shutdown disconnected the connection).
  public func close(completion: @escaping @Sendable () -> Void) {
    connection.disconnect(completion: completion)
  }

  /// `async` form of ``close(completion:)``: returns once the connection has disconnected.
  ///
  /// - Important: Callable from any task.
  public func close() async {
    await withCheckedContinuation { continuation in
      close { continuation.resume() }
    }
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
    submit(
      call.erased, options: options, cancellation: cancellation,
      deliver: { bytes, context in
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
      await withCheckedContinuation {
        (continuation: CheckedContinuation<Result<Output, MilvexError>, Never>) in
        submit(
          call.erased, options: options, cancellation: cancellation,
          deliver: { bytes, context in
            let output = try decode(bytes, context)
            return { continuation.resume(returning: .success(output)) }
          }, fail: { continuation.resume(returning: .failure($0)) })
      }
    } onCancel: {
      cancellation.cancel()
    }
    return try result.get()
  }

  /// The client's loop-thread forms, for code that runs on the connection's loop (callbacks,
  /// timers): no hop through the submission queue, and completions need not be `Sendable`.
  ///
  /// - Important: Use it on the loop thread only (checked in debug builds).
  public var onLoop: LoopView { LoopView(client: self) }

  /// A ``MilvusClient`` as seen from its loop thread. Not `Sendable`: it must not leave the
  /// loop.
  public struct LoopView {
    let client: MilvusClient

    /// Performs `call` as ``MilvusClient/perform(_:options:completion:)`` does.
    ///
    /// - Returns: a handle that cancels the call (at once, on the loop thread).
    /// - Important: Loop thread only; `completion` runs on the loop thread (argument errors
    ///   before this returns).
    @discardableResult
    public func perform<Output>(
      _ call: MilvusCall<Output>, options: MilvusCallOptions = MilvusCallOptions(),
      completion: @escaping (Result<Output, MilvexError>) -> Void
    ) -> MilvusCallHandle {
      let cancellation = CallCancellation(loop: client.connection.loop)
      let decode = call.decode
      client.startOnLoop(
        call.erased, options: options, startedAt: client.connection.loop.now,
        cancellation: cancellation,
        deliver: { bytes, context in
          let output = try decode(bytes, context)
          return { completion(.success(output)) }
        }, fail: { completion(.failure($0)) })
      return MilvusCallHandle(cancellation: cancellation)
    }
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
    let startedAt = connection.loop.now
    do {
      try connection.loop.execute { [self] in
        startOnLoop(
          call, options: options, startedAt: startedAt, cancellation: cancellation,
          deliver: deliver, fail: fail)
      }
    } catch {
      fail(error)
    }
  }

  fileprivate func startOnLoop(
    _ call: ErasedCall, options: MilvusCallOptions, startedAt: ContinuousClock.Instant,
    cancellation: CallCancellation?, deliver: @escaping Deliver,
    fail: @escaping (MilvexError) -> Void
  ) {
    let loop = connection.loop
    loop.assertInLoopThread()
    func reject(_ error: MilvexError) {
      metrics.value.finished(method: call.method, error: error, after: loop.now - startedAt)
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
      return reject(
        .invalidArgument(field: "options.timeout", message: "must be positive, is \(timeout)"))
    }
    let run = CallRun(
      client: self, call: call, policy: policy, startedAt: startedAt, deadline: startedAt + timeout,
      database: options.database ?? connection.onLoop.database, databaseOverride: options.database,
      deliver: deliver, fail: fail)
    if let cancellation {
      guard !cancellation.state.value.requested else { return run.cancel() }
      cancellation.state.value.cancel = { [weak run] in run?.cancel() }
    }
    run.start()
  }

  // MARK: - Schema cache (loop thread)

  func cachedSchema(database: String, collection: String) -> (
    schema: CollectionSchema, timestamp: UInt64
  )? {
    schemas.value[SchemaKey(database: database, collection: collection)]
  }

  func apply(_ effect: SchemaCacheEffect, database: String) {
    switch effect {
    case .none: break
    case .remember(let collection, let schema, let timestamp):
      schemas.value[SchemaKey(database: database, collection: collection)] = (schema, timestamp)
    case .forget(let collections):
      for collection in collections {
        schemas.value[SchemaKey(database: database, collection: collection)] = nil
      }
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
  /// that it exists: by `DescribeDatabase`, or, on servers before Milvus 2.4 that lack it
  /// (UNIMPLEMENTED), by listing the databases. The check may take the connection's
  /// ``ConnectionConfig/timeout``.
  ///
  /// - Parameters:
  ///   - database: the database later calls default to.
  ///   - completion: runs exactly once: with success once calls submitted after it run in
  ///     `database`, or with the Milvus error if it does not exist (Milvus's "database not
  ///     found", code 800, when the server lacks `DescribeDatabase`).
  /// - Returns: a handle whose `cancel()` ends the check with `CANCELLED`; the current
  ///   database is then unchanged.
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread with ``MilvexError/eventLoopShutDown(operation:)`` if the loop has
  ///   shut down.
  @discardableResult
  public func useDatabase(
    _ database: String, completion: @escaping @Sendable (Result<Void, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let cancellation = CallCancellation(loop: connection.loop)
    useDatabase(database, cancellation: cancellation, completion: completion)
    return MilvusCallHandle(cancellation: cancellation)
  }

  /// `async` form of ``useDatabase(_:completion:)``.
  ///
  /// - Parameter database: the database later calls default to.
  /// - Important: Callable from any task. Cancelling the task ends the check with `CANCELLED`.
  /// - Throws: the Milvus error if the database does not exist (Milvus's "database not found",
  ///   code 800, when the server lacks `DescribeDatabase`).
  public func useDatabase(_ database: String) async throws(MilvexError) {
    try await awaitCompletion { cancellation, completion in
      useDatabase(database, cancellation: cancellation, completion: completion)
    }
  }

  private func useDatabase(
    _ database: String, cancellation: CallCancellation,
    completion: @escaping @Sendable (Result<Void, MilvexError>) -> Void
  ) {
    let timeout = connection.config.timeout
    submitWait(
      "useDatabase", cancellation: cancellation,
      plan: { .databaseSwitch(to: database, timeout: timeout) }, progress: nil,
      completion: { completion($0.map { _ in }) })
  }
}

extension MilvusClient.LoopView {
  /// ``MilvusClient/useDatabase(_:completion:)`` from the loop thread.
  ///
  /// - Parameters:
  ///   - database: the database later calls default to.
  ///   - completion: runs exactly once, with the outcome.
  /// - Returns: a handle that cancels the check (at once, on the loop thread).
  /// - Important: Loop thread only; `completion` runs on the loop thread. Called off the loop
  ///   thread, it starts nothing and completes at once on the calling thread with
  ///   ``MilvexError/invalidArgument(field:message:)`` (field `thread`).
  @discardableResult
  public func useDatabase(
    _ database: String, completion: @escaping (Result<Void, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let plan = ServerWaitPlan.databaseSwitch(
      to: database, timeout: client.connection.config.timeout)
    return startWait("useDatabase", plan, progress: nil) { completion($0.map { _ in }) }
  }

  /// Disconnects the connection at once (see ``MilvusClient/close(completion:)``): when this
  /// returns, it has disconnected and calls in flight have failed.
  ///
  /// - Important: Loop thread only. Called off the loop thread, it disconnects as
  ///   ``Connection/disconnect(reason:)`` does: soon, on the loop, not before it returns.
  public func close() {
    client.connection.onLoop.disconnect()
  }
}

extension ServerWaitPlan where Progress == Never {
  /// Check that the database exists, then make it the connection's current one.
  static func databaseSwitch(to database: String, timeout: Duration) -> Self {
    let machine = ServerWaitMachine<Never>(
      what: "the switch to database '\(database)'", timeout: timeout)
    return Self(machine: machine) { wait, timeout in
      func use() {
        do {
          try wait.client.connection.onLoop.useDatabase(database)
          wait.answer(.finished(nil))
        } catch {
          wait.answer(.failed(error))
        }
      }
      wait.perform(.describeDatabase(database), timeout: timeout) { described in
        switch described {
        case .success: use()
        case .failure(.grpcStatus(let status)) where status.code == .unimplemented:
          wait.perform(.listDatabases(), timeout: timeout) { listed in
            switch listed {
            case .failure(let error): wait.answer(.failed(error))
            case .success(let names) where names.contains(database): use()
            case .success:
              wait.answer(
                .failed(.milvus(code: 800, reason: "database not found[database=\(database)]")))
            }
          }
        case .failure(let error): wait.answer(.failed(error))
        }
      }
    }
  }
}
