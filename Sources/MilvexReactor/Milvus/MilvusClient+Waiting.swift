import Foundation

// Waiting until the server has finished: a flush, an index build, a load, a compaction. Each
// wait polls with loop timers (never a sleeping thread), backing off from 50 ms to 1 s between
// polls, reports progress when it changes, and ends at its timeout (DEADLINE_EXCEEDED, naming
// what was awaited and the last progress) or when cancelled (CANCELLED). One implementation
// (``ServerWaitMachine`` decides, ``ServerWait`` executes on the loop) serves three forms: a
// callback form callable from any thread, its loop-thread twin on ``MilvusClient/LoopView``,
// and the `async` form, which waits for the callback form.

extension MilvusClient {
  // MARK: - Flush

  /// Flushes the collections and waits until their sealed segments are persisted, as
  /// pymilvus's `flush` does (``MilvusCall/startFlush(_:)`` returns at once).
  ///
  /// - Parameters:
  ///   - collections: the collections to flush.
  ///   - timeout: how long the flush and the wait may take together; then the wait fails with
  ///     `DEADLINE_EXCEEDED` naming the collection awaited.
  ///   - completion: runs exactly once, with the outcome (`CANCELLED` after a cancel).
  /// - Returns: a handle whose `cancel()` ends the wait with `CANCELLED` (the call in flight is
  ///   cancelled, the poll timer stopped; the server may still finish the flush).
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread with ``MilvexError/eventLoopShutDown(operation:)`` if the loop has
  ///   shut down.
  @discardableResult
  public func flush(
    _ collections: [String], timeout: Duration = .seconds(60),
    completion: @escaping @Sendable (Result<Void, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let cancellation = CallCancellation(loop: connection.loop)
    flush(collections, timeout: timeout, cancellation: cancellation, completion: completion)
    return MilvusCallHandle(cancellation: cancellation)
  }

  /// `async` form of ``flush(_:timeout:completion:)``.
  ///
  /// - Parameters:
  ///   - collections: the collections to flush.
  ///   - timeout: how long the flush and the wait may take together.
  /// - Important: Callable from any task. Cancelling the task ends the wait at once with
  ///   `CANCELLED`.
  public func flush(_ collections: [String], timeout: Duration = .seconds(60))
    async throws(MilvexError)
  {
    try await awaitCompletion { cancellation, completion in
      flush(collections, timeout: timeout, cancellation: cancellation, completion: completion)
    }
  }

  private func flush(
    _ collections: [String], timeout: Duration, cancellation: CallCancellation,
    completion: @escaping @Sendable (Result<Void, MilvexError>) -> Void
  ) {
    submitWait(
      "flush", cancellation: cancellation, plan: { .flush(collections, timeout: timeout) },
      progress: nil, completion: { completion($0.map { _ in }) })
  }

  // MARK: - Index build

  /// Creates an index and waits until it is built for every row the collection had when the
  /// build started, reporting the index's state and row counts to `progress` each time they
  /// change. A failed build fails with the server's reason.
  ///
  /// - Parameters:
  ///   - collection: the collection to index.
  ///   - index: the index to create.
  ///   - timeout: how long creating and building may take together; then the wait fails with
  ///     `DEADLINE_EXCEEDED` naming the index and the rows indexed so far.
  ///   - progress: gets the index's description each time it changes.
  ///   - completion: runs exactly once, with the finished index's description or the error.
  /// - Returns: a handle whose `cancel()` ends the wait with `CANCELLED` (the server may still
  ///   build the index).
  /// - Important: Callable from any thread. `progress` and `completion` run on the loop thread;
  ///   `completion` runs at once on the calling thread with
  ///   ``MilvexError/eventLoopShutDown(operation:)`` if the loop has shut down.
  @discardableResult
  public func createIndex(
    on collection: String, _ index: IndexSpec, timeout: Duration = .seconds(300),
    progress: (@Sendable (IndexDescription) -> Void)? = nil,
    completion: @escaping @Sendable (Result<IndexDescription, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let cancellation = CallCancellation(loop: connection.loop)
    createIndex(
      on: collection, index, timeout: timeout, progress: progress, cancellation: cancellation,
      completion: completion)
    return MilvusCallHandle(cancellation: cancellation)
  }

  /// `async` form of ``createIndex(on:_:timeout:progress:completion:)``.
  ///
  /// - Parameters:
  ///   - collection: the collection to index.
  ///   - index: the index to create.
  ///   - timeout: how long creating and building may take together.
  ///   - progress: gets the index's description each time it changes, on the loop thread.
  /// - Returns: the finished index's description.
  /// - Important: Callable from any task; `progress` runs on the loop thread. Cancelling the
  ///   task ends the wait at once with `CANCELLED`.
  @discardableResult
  public func createIndex(
    on collection: String, _ index: IndexSpec, timeout: Duration = .seconds(300),
    progress: (@Sendable (IndexDescription) -> Void)? = nil
  ) async throws(MilvexError) -> IndexDescription {
    try await awaitCompletion { cancellation, completion in
      createIndex(
        on: collection, index, timeout: timeout, progress: progress, cancellation: cancellation,
        completion: completion)
    }
  }

  private func createIndex(
    on collection: String, _ index: IndexSpec, timeout: Duration,
    progress: (@Sendable (IndexDescription) -> Void)?, cancellation: CallCancellation,
    completion: @escaping @Sendable (Result<IndexDescription, MilvexError>) -> Void
  ) {
    submitWait(
      "createIndex", cancellation: cancellation,
      plan: { .indexBuild(on: collection, index, timeout: timeout) }, progress: progress,
      completion: { completion($0.flatMap(ServerWaitPlan.finalProgress)) })
  }

  // MARK: - Load

  /// Loads a collection and waits until it is loaded, reporting the loaded percentage to
  /// `progress` each time it changes.
  ///
  /// - Parameters:
  ///   - name: the collection to load.
  ///   - timeout: how long loading may take; then the wait fails with `DEADLINE_EXCEEDED`
  ///     naming the collection and the last percentage.
  ///   - progress: gets the loaded percentage each time it changes (100 last).
  ///   - completion: runs exactly once, with the outcome.
  /// - Returns: a handle whose `cancel()` ends the wait with `CANCELLED` (the server may still
  ///   load the collection).
  /// - Important: Callable from any thread. `progress` and `completion` run on the loop thread;
  ///   `completion` runs at once on the calling thread with
  ///   ``MilvexError/eventLoopShutDown(operation:)`` if the loop has shut down.
  @discardableResult
  public func loadCollection(
    _ name: String, timeout: Duration = .seconds(60), progress: (@Sendable (Int) -> Void)? = nil,
    completion: @escaping @Sendable (Result<Void, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let cancellation = CallCancellation(loop: connection.loop)
    load(
      name, partitions: [], timeout: timeout, progress: progress, cancellation: cancellation,
      completion: completion)
    return MilvusCallHandle(cancellation: cancellation)
  }

  /// `async` form of ``loadCollection(_:timeout:progress:completion:)``.
  ///
  /// - Parameters:
  ///   - name: the collection to load.
  ///   - timeout: how long loading may take; then it fails with `DEADLINE_EXCEEDED`.
  ///   - progress: gets the loaded percentage each time it changes, on the loop thread.
  /// - Important: Callable from any task; `progress` runs on the loop thread. Cancelling the
  ///   task ends the wait at once with `CANCELLED`.
  public func loadCollection(
    _ name: String, timeout: Duration = .seconds(60), progress: (@Sendable (Int) -> Void)? = nil
  ) async throws(MilvexError) {
    try await awaitCompletion { cancellation, completion in
      load(
        name, partitions: [], timeout: timeout, progress: progress, cancellation: cancellation,
        completion: completion)
    }
  }

  /// Loads partitions of a collection and waits until they are loaded, reporting the loaded
  /// percentage to `progress` each time it changes.
  ///
  /// - Parameters:
  ///   - partitions: the partitions to load.
  ///   - collection: the collection they belong to.
  ///   - timeout: how long loading may take; then the wait fails with `DEADLINE_EXCEEDED`
  ///     naming the partitions and the last percentage.
  ///   - progress: gets the loaded percentage each time it changes (100 last).
  ///   - completion: runs exactly once, with the outcome.
  /// - Returns: a handle whose `cancel()` ends the wait with `CANCELLED`.
  /// - Important: Callable from any thread. `progress` and `completion` run on the loop thread;
  ///   `completion` runs at once on the calling thread with
  ///   ``MilvexError/eventLoopShutDown(operation:)`` if the loop has shut down.
  @discardableResult
  public func loadPartitions(
    _ partitions: [String], in collection: String, timeout: Duration = .seconds(60),
    progress: (@Sendable (Int) -> Void)? = nil,
    completion: @escaping @Sendable (Result<Void, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let cancellation = CallCancellation(loop: connection.loop)
    load(
      collection, partitions: partitions, timeout: timeout, progress: progress,
      cancellation: cancellation, completion: completion)
    return MilvusCallHandle(cancellation: cancellation)
  }

  /// `async` form of ``loadPartitions(_:in:timeout:progress:completion:)``.
  ///
  /// - Parameters:
  ///   - partitions: the partitions to load.
  ///   - collection: the collection they belong to.
  ///   - timeout: how long loading may take; then it fails with `DEADLINE_EXCEEDED`.
  ///   - progress: gets the loaded percentage each time it changes, on the loop thread.
  /// - Important: Callable from any task; `progress` runs on the loop thread. Cancelling the
  ///   task ends the wait at once with `CANCELLED`.
  public func loadPartitions(
    _ partitions: [String], in collection: String, timeout: Duration = .seconds(60),
    progress: (@Sendable (Int) -> Void)? = nil
  ) async throws(MilvexError) {
    try await awaitCompletion { cancellation, completion in
      load(
        collection, partitions: partitions, timeout: timeout, progress: progress,
        cancellation: cancellation, completion: completion)
    }
  }

  private func load(
    _ name: String, partitions: [String], timeout: Duration,
    progress: (@Sendable (Int) -> Void)?, cancellation: CallCancellation,
    completion: @escaping @Sendable (Result<Void, MilvexError>) -> Void
  ) {
    submitWait(
      partitions.isEmpty ? "loadCollection" : "loadPartitions", cancellation: cancellation,
      plan: { .load(name, partitions: partitions, timeout: timeout) }, progress: progress,
      completion: { completion($0.map { _ in }) })
  }

  // MARK: - Compaction

  /// Compacts a collection and waits until the compaction has completed.
  ///
  /// - Parameters:
  ///   - collection: the collection to compact.
  ///   - clustering: asks for a clustering compaction.
  ///   - timeout: how long the compaction may take; then the wait fails with
  ///     `DEADLINE_EXCEEDED` naming the compaction and its plans.
  ///   - completion: runs exactly once, with the compaction's last state (plans completed,
  ///     failed, timed out) or the error.
  /// - Returns: a handle whose `cancel()` ends the wait with `CANCELLED` (the server may still
  ///   compact).
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread with ``MilvexError/eventLoopShutDown(operation:)`` if the loop has
  ///   shut down.
  @discardableResult
  public func compact(
    _ collection: String, clustering: Bool = false, timeout: Duration = .seconds(300),
    completion: @escaping @Sendable (Result<CompactionProgress, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let cancellation = CallCancellation(loop: connection.loop)
    compact(
      collection, clustering: clustering, timeout: timeout, cancellation: cancellation,
      completion: completion)
    return MilvusCallHandle(cancellation: cancellation)
  }

  /// `async` form of ``compact(_:clustering:timeout:completion:)``.
  ///
  /// - Parameters:
  ///   - collection: the collection to compact.
  ///   - clustering: asks for a clustering compaction.
  ///   - timeout: how long the compaction may take; then it fails with `DEADLINE_EXCEEDED`.
  /// - Returns: the compaction's last state (plans completed, failed, timed out).
  /// - Important: Callable from any task. Cancelling the task ends the wait at once with
  ///   `CANCELLED`.
  @discardableResult
  public func compact(
    _ collection: String, clustering: Bool = false, timeout: Duration = .seconds(300)
  ) async throws(MilvexError) -> CompactionProgress {
    try await awaitCompletion { cancellation, completion in
      compact(
        collection, clustering: clustering, timeout: timeout, cancellation: cancellation,
        completion: completion)
    }
  }

  private func compact(
    _ collection: String, clustering: Bool, timeout: Duration, cancellation: CallCancellation,
    completion: @escaping @Sendable (Result<CompactionProgress, MilvexError>) -> Void
  ) {
    submitWait(
      "compact", cancellation: cancellation,
      plan: { .compaction(collection, clustering: clustering, timeout: timeout) }, progress: nil,
      completion: { completion($0.flatMap(ServerWaitPlan.finalProgress)) })
  }

  // MARK: - Running a wait

  /// Starts the wait `plan` makes on the loop thread; if the loop has shut down, completes at
  /// once with ``MilvexError/eventLoopShutDown(operation:)`` naming `operation`.
  func submitWait<Progress: Equatable & Sendable>(
    _ operation: String, cancellation: CallCancellation,
    plan: @escaping @Sendable () -> ServerWaitPlan<Progress>,
    progress: (@Sendable (Progress) -> Void)?,
    completion: @escaping @Sendable (Result<Progress?, MilvexError>) -> Void
  ) {
    let startedAt = connection.loop.now
    do {
      try connection.loop.execute { [self] in
        startWaitOnLoop(
          plan(), startedAt: startedAt, cancellation: cancellation, progress: progress,
          completion: completion)
      }
    } catch {
      completion(.failure(.eventLoopShutDown(operation: operation)))
    }
  }

  /// Starts the wait `plan` describes. Loop thread only.
  func startWaitOnLoop<Progress: Equatable>(
    _ plan: ServerWaitPlan<Progress>, startedAt: ContinuousClock.Instant,
    cancellation: CallCancellation, progress: ((Progress) -> Void)?,
    completion: @escaping (Result<Progress?, MilvexError>) -> Void
  ) {
    let wait = ServerWait(
      client: self, machine: plan.machine, startedAt: startedAt, check: plan.check,
      progress: progress, completion: completion)
    wait.start(cancellation: cancellation)
  }

  /// The `async` form of a callback form: `start` begins the operation with a cancellation
  /// that cancelling the task triggers.
  func awaitCompletion<Output: Sendable>(
    _ start: (CallCancellation, @escaping @Sendable (Result<Output, MilvexError>) -> Void) -> Void
  ) async throws(MilvexError) -> Output {
    let cancellation = CallCancellation(loop: connection.loop)
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation {
        (continuation: CheckedContinuation<Result<Output, MilvexError>, Never>) in
        start(cancellation) { continuation.resume(returning: $0) }
      }
    } onCancel: {
      cancellation.cancel()
    }
    return try result.get()
  }
}

// MARK: - Loop-thread forms

extension MilvusClient.LoopView {
  /// ``MilvusClient/flush(_:timeout:completion:)`` from the loop thread.
  ///
  /// - Parameters:
  ///   - collections: the collections to flush.
  ///   - timeout: how long the flush and the wait may take together.
  ///   - completion: runs exactly once, with the outcome.
  /// - Returns: a handle that cancels the wait (at once, on the loop thread).
  /// - Important: Loop thread only; `completion` runs on the loop thread. Called off the loop
  ///   thread, it starts nothing and completes at once on the calling thread with
  ///   ``MilvexError/invalidArgument(field:message:)`` (field `thread`).
  @discardableResult
  public func flush(
    _ collections: [String], timeout: Duration = .seconds(60),
    completion: @escaping (Result<Void, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    startWait("flush", .flush(collections, timeout: timeout), progress: nil) {
      completion($0.map { _ in })
    }
  }

  /// ``MilvusClient/createIndex(on:_:timeout:progress:completion:)`` from the loop thread.
  ///
  /// - Parameters:
  ///   - collection: the collection to index.
  ///   - index: the index to create.
  ///   - timeout: how long creating and building may take together.
  ///   - progress: gets the index's description each time it changes.
  ///   - completion: runs exactly once, with the finished index's description or the error.
  /// - Returns: a handle that cancels the wait (at once, on the loop thread).
  /// - Important: Loop thread only; `progress` and `completion` run on the loop thread. Called
  ///   off the loop thread, it starts nothing and completes at once on the calling thread with
  ///   ``MilvexError/invalidArgument(field:message:)`` (field `thread`).
  @discardableResult
  public func createIndex(
    on collection: String, _ index: IndexSpec, timeout: Duration = .seconds(300),
    progress: ((IndexDescription) -> Void)? = nil,
    completion: @escaping (Result<IndexDescription, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    startWait(
      "createIndex", .indexBuild(on: collection, index, timeout: timeout), progress: progress
    ) {
      completion($0.flatMap(ServerWaitPlan.finalProgress))
    }
  }

  /// ``MilvusClient/loadCollection(_:timeout:progress:completion:)`` from the loop thread.
  ///
  /// - Parameters:
  ///   - name: the collection to load.
  ///   - timeout: how long loading may take.
  ///   - progress: gets the loaded percentage each time it changes (100 last).
  ///   - completion: runs exactly once, with the outcome.
  /// - Returns: a handle that cancels the wait (at once, on the loop thread).
  /// - Important: Loop thread only; `progress` and `completion` run on the loop thread. Called
  ///   off the loop thread, it starts nothing and completes at once on the calling thread with
  ///   ``MilvexError/invalidArgument(field:message:)`` (field `thread`).
  @discardableResult
  public func loadCollection(
    _ name: String, timeout: Duration = .seconds(60), progress: ((Int) -> Void)? = nil,
    completion: @escaping (Result<Void, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    startWait("loadCollection", .load(name, partitions: [], timeout: timeout), progress: progress) {
      completion($0.map { _ in })
    }
  }

  /// ``MilvusClient/loadPartitions(_:in:timeout:progress:completion:)`` from the loop thread.
  ///
  /// - Parameters:
  ///   - partitions: the partitions to load.
  ///   - collection: the collection they belong to.
  ///   - timeout: how long loading may take.
  ///   - progress: gets the loaded percentage each time it changes (100 last).
  ///   - completion: runs exactly once, with the outcome.
  /// - Returns: a handle that cancels the wait (at once, on the loop thread).
  /// - Important: Loop thread only; `progress` and `completion` run on the loop thread. Called
  ///   off the loop thread, it starts nothing and completes at once on the calling thread with
  ///   ``MilvexError/invalidArgument(field:message:)`` (field `thread`).
  @discardableResult
  public func loadPartitions(
    _ partitions: [String], in collection: String, timeout: Duration = .seconds(60),
    progress: ((Int) -> Void)? = nil,
    completion: @escaping (Result<Void, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    startWait(
      "loadPartitions", .load(collection, partitions: partitions, timeout: timeout),
      progress: progress
    ) {
      completion($0.map { _ in })
    }
  }

  /// ``MilvusClient/compact(_:clustering:timeout:completion:)`` from the loop thread.
  ///
  /// - Parameters:
  ///   - collection: the collection to compact.
  ///   - clustering: asks for a clustering compaction.
  ///   - timeout: how long the compaction may take.
  ///   - completion: runs exactly once, with the compaction's last state or the error.
  /// - Returns: a handle that cancels the wait (at once, on the loop thread).
  /// - Important: Loop thread only; `completion` runs on the loop thread. Called off the loop
  ///   thread, it starts nothing and completes at once on the calling thread with
  ///   ``MilvexError/invalidArgument(field:message:)`` (field `thread`).
  @discardableResult
  public func compact(
    _ collection: String, clustering: Bool = false, timeout: Duration = .seconds(300),
    completion: @escaping (Result<CompactionProgress, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    startWait(
      "compact", .compaction(collection, clustering: clustering, timeout: timeout), progress: nil
    ) {
      completion($0.flatMap(ServerWaitPlan.finalProgress))
    }
  }

  /// Starts a wait on the loop thread now. Called off the loop thread (a misuse), it starts
  /// nothing and completes at once on the calling thread with
  /// ``MilvexError/invalidArgument(field:message:)`` (field `thread`) naming `operation`: the
  /// misuse is answered, not trapped, and the handle it returns cancels nothing.
  func startWait<Progress: Equatable>(
    _ operation: String, _ plan: ServerWaitPlan<Progress>, progress: ((Progress) -> Void)?,
    completion: @escaping (Result<Progress?, MilvexError>) -> Void
  ) -> MilvusCallHandle {
    let cancellation = CallCancellation(loop: client.connection.loop)
    guard client.connection.loop.inLoopThread else {
      completion(.failure(Self.offLoop(operation)))
      return MilvusCallHandle(cancellation: cancellation)
    }
    client.startWaitOnLoop(
      plan, startedAt: client.connection.loop.now, cancellation: cancellation, progress: progress,
      completion: completion)
    return MilvusCallHandle(cancellation: cancellation)
  }

  /// The error of a loop-thread form called off the loop thread.
  static func offLoop(_ operation: String) -> MilvexError {
    .invalidArgument(
      field: "thread",
      message:
        "MilvusClient.onLoop.\(operation) was called off the event loop thread and started "
        + "nothing; from other threads use MilvusClient.\(operation)")
  }
}

// MARK: - The waits

/// One wait: its machine (what is awaited, the timeout, the progress in words) and its check,
/// which runs on the loop through the ``ServerWait`` it is given. A check keeps its own state
/// between runs (which step it is at, what the first call answered).
struct ServerWaitPlan<Progress: Equatable> {
  var machine: ServerWaitMachine<Progress>
  var check: ServerWait<Progress>.Check

  /// A wait's final progress as its result: a wait that finished reports one.
  static func finalProgress(_ progress: Progress?) -> Result<Progress, MilvexError> {
    guard let progress else {
      return .failure(.protocolViolation("the wait finished without a final state"))
    }
    return .success(progress)
  }
}

extension ServerWaitPlan where Progress == Never {
  /// Flush, then wait for each collection's flush in turn.
  static func flush(_ collections: [String], timeout: Duration) -> Self {
    func what(_ collection: String) -> String { "the flush of collection '\(collection)'" }
    var started: FlushResult?
    var current = 0
    let machine = ServerWaitMachine<Never>(
      what: collections.count == 1
        ? what(collections[0]) : "the flush of collections \(collections)",
      timeout: timeout)
    return Self(machine: machine) { wait, timeout in
      guard let flush = started else {
        return wait.perform(.startFlush(collections), timeout: timeout) { result in
          switch result {
          case .failure(let error): wait.answer(.failed(error))
          case .success(let flush):
            started = flush
            wait.answer(
              collections.isEmpty ? .finished(nil) : .stepDone(awaiting: what(collections[0])))
          }
        }
      }
      let collection = collections[current]
      let state = MilvusCall<Bool>.flushState(
        collection: collection, segmentIDs: flush.segmentIDs[collection] ?? [],
        flushTimestamp: flush.flushTimestamps[collection] ?? 0)
      wait.perform(state, timeout: timeout) { result in
        switch result {
        case .failure(let error): wait.answer(.failed(error))
        case .success(false): wait.answer(.pending(nil))
        case .success(true):
          current += 1
          wait.answer(
            current == collections.count
              ? .finished(nil) : .stepDone(awaiting: what(collections[current])))
        }
      }
    }
  }
}

extension ServerWaitPlan where Progress == IndexDescription {
  /// Create the index, then wait until it is built.
  static func indexBuild(on collection: String, _ index: IndexSpec, timeout: Duration) -> Self {
    let what = "the index on '\(index.fieldName)' of collection '\(collection)'"
    var created = false
    let machine = ServerWaitMachine<IndexDescription>(what: what, timeout: timeout) {
      "\($0.indexedRows) of \($0.totalRows) rows indexed"
    }
    return Self(machine: machine) { wait, timeout in
      guard created else {
        return wait.perform(.createIndex(on: collection, index), timeout: timeout) { result in
          switch result {
          case .failure(let error): wait.answer(.failed(error))
          case .success:
            created = true
            wait.answer(.stepDone(awaiting: what))
          }
        }
      }
      let describe = MilvusCall<[IndexDescription]>.describeIndex(
        on: collection, fieldName: index.fieldName, indexName: index.indexName ?? "")
      wait.perform(describe, timeout: timeout) { result in
        switch result {
        case .failure(let error): wait.answer(.failed(error))
        case .success(let indexes):
          guard let description = indexes.first else { return wait.answer(.pending(nil)) }
          switch description.state {
          case .finished: wait.answer(.finished(description))
          case .failed:
            wait.answer(
              .failed(
                .milvus(
                  code: 0,
                  reason: "building the index on '\(index.fieldName)' of collection "
                    + "'\(collection)' failed: \(description.failReason)")))
          case .none, .unissued, .inProgress, .retry: wait.answer(.pending(description))
          }
        }
      }
    }
  }
}

extension ServerWaitPlan where Progress == Int {
  /// Load the collection (or partitions of it), then wait until loaded; progress in percent.
  static func load(_ name: String, partitions: [String], timeout: Duration) -> Self {
    let what =
      partitions.isEmpty
      ? "collection '\(name)'" : "partitions \(partitions) of collection '\(name)'"
    var requested = false
    let machine = ServerWaitMachine<Int>(what: "loading \(what)", timeout: timeout) {
      "\($0) % loaded"
    }
    return Self(machine: machine) { wait, timeout in
      guard requested else {
        let call: MilvusCall<Void> =
          partitions.isEmpty ? .loadCollection(name) : .loadPartitions(partitions, in: name)
        return wait.perform(call, timeout: timeout) { result in
          switch result {
          case .failure(let error): wait.answer(.failed(error))
          case .success:
            requested = true
            wait.answer(.stepDone(awaiting: "loading \(what)"))
          }
        }
      }
      wait.perform(.loadState(of: name, partitions: partitions), timeout: timeout) { result in
        switch result {
        case .failure(let error): wait.answer(.failed(error))
        case .success(.loaded): wait.answer(.finished(100))
        case .success(.notExist):
          wait.answer(.failed(.milvus(code: 100, reason: "\(what) does not exist")))
        case .success(.loading), .success(.notLoaded):
          // Progress is a nicety: a server without GetLoadingProgress still loads.
          wait.perform(.loadingProgress(of: name, partitions: partitions), timeout: timeout) {
            guard case .success(let percent) = $0, percent < 100 else {
              return wait.answer(.pending(nil))
            }
            wait.answer(.pending(percent))
          }
        }
      }
    }
  }
}

extension ServerWaitPlan where Progress == CompactionProgress {
  /// Read the collection's ID, start the compaction, then wait until it has completed.
  static func compaction(_ collection: String, clustering: Bool, timeout: Duration) -> Self {
    var id: Int64?
    let machine = ServerWaitMachine<CompactionProgress>(
      what: "the compaction of collection '\(collection)'", timeout: timeout
    ) {
      "\($0.completedPlans) plans completed, \($0.executingPlans) executing"
    }
    return Self(machine: machine) { wait, timeout in
      guard let id else {
        return wait.perform(.describeCollection(collection), timeout: timeout) { described in
          let description: CollectionDescription
          switch described {
          case .failure(let error): return wait.answer(.failed(error))
          case .success(let found): description = found
          }
          let compact = MilvusCall<Int64>.compact(
            collection, collectionID: description.id, clustering: clustering)
          wait.perform(compact, timeout: timeout) { started in
            switch started {
            case .failure(let error): wait.answer(.failed(error))
            case .success(let started):
              id = started
              wait.answer(
                .stepDone(awaiting: "compaction \(started) of collection '\(collection)'"))
            }
          }
        }
      }
      wait.perform(.compactionState(id), timeout: timeout) { result in
        switch result {
        case .failure(let error): wait.answer(.failed(error))
        case .success(let state):
          wait.answer(state.state == .completed ? .finished(state) : .pending(state))
        }
      }
    }
  }
}
