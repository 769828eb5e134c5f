import Foundation

// Waiting until the server has finished: a flush, an index build, a load, a compaction. Each
// wait polls with loop timers (never a sleeping thread), backing off from 50 ms to 1 s between
// polls, reports progress when it changes, and ends at its timeout (DEADLINE_EXCEEDED, naming
// what was awaited and the last progress) or when the task is cancelled (CANCELLED).

extension MilvusClient {
  /// Flushes the collections and waits until their sealed segments are persisted, as
  /// pymilvus's `flush` does (``MilvusCall/startFlush(_:)`` returns at once).
  ///
  /// - Important: Callable from any task.
  public func flush(_ collections: [String], timeout: Duration = .seconds(60))
    async throws(MilvexError)
  {
    let deadline = ContinuousClock.now + timeout
    let started = try await perform(
      .startFlush(collections), options: MilvusCallOptions(timeout: timeout))
    for collection in collections {
      let segments = started.segmentIDs[collection] ?? []
      let flushTimestamp = started.flushTimestamps[collection] ?? 0
      try await poll("the flush of collection '\(collection)'", deadline: deadline) {
        remaining throws(MilvexError) in
        let flushed = try await self.perform(
          .flushState(
            collection: collection, segmentIDs: segments, flushTimestamp: flushTimestamp),
          options: MilvusCallOptions(timeout: remaining))
        return flushed ? () : nil
      }
    }
  }

  /// Creates an index and waits until it is built for every row the collection had when the
  /// build started, reporting the index's state and row counts to `progress` each time they
  /// change. A failed build throws the server's reason.
  ///
  /// - Important: Callable from any task; `progress` runs on the calling task's executor.
  @discardableResult
  public func createIndex(
    on collection: String, _ index: IndexSpec, timeout: Duration = .seconds(300),
    progress: (@Sendable (IndexDescription) -> Void)? = nil
  ) async throws(MilvexError) -> IndexDescription {
    let deadline = ContinuousClock.now + timeout
    try await perform(
      .createIndex(on: collection, index), options: MilvusCallOptions(timeout: timeout))
    var last: IndexDescription?
    return try await poll(
      "the index on '\(index.fieldName)' of collection '\(collection)'", deadline: deadline
    ) {
      remaining throws(MilvexError) in
      let indexes = try await self.perform(
        .describeIndex(
          on: collection, fieldName: index.fieldName, indexName: index.indexName ?? ""),
        options: MilvusCallOptions(timeout: remaining))
      guard let description = indexes.first else { return nil }
      if description != last {
        last = description
        progress?(description)
      }
      switch description.state {
      case .finished: return description
      case .failed:
        throw .milvus(
          code: 0,
          reason: "building the index on '\(index.fieldName)' of collection '\(collection)' "
            + "failed: \(description.failReason)")
      default: return nil
      }
    } lastProgress: {
      last.map { "\($0.indexedRows) of \($0.totalRows) rows indexed" }
    }
  }

  /// Loads a collection and waits until it is loaded, reporting the loaded percentage to
  /// `progress` each time it changes; fails with `DEADLINE_EXCEEDED` after `timeout`.
  ///
  /// - Important: Callable from any task; `progress` runs on the calling task's executor.
  public func loadCollection(
    _ name: String, timeout: Duration = .seconds(60), progress: (@Sendable (Int) -> Void)? = nil
  ) async throws(MilvexError) {
    try await load(name, partitions: [], timeout: timeout, progress: progress)
  }

  /// Loads partitions of a collection and waits until they are loaded, reporting the loaded
  /// percentage to `progress` each time it changes.
  ///
  /// - Important: Callable from any task; `progress` runs on the calling task's executor.
  public func loadPartitions(
    _ partitions: [String], in collection: String, timeout: Duration = .seconds(60),
    progress: (@Sendable (Int) -> Void)? = nil
  ) async throws(MilvexError) {
    try await load(collection, partitions: partitions, timeout: timeout, progress: progress)
  }

  private func load(
    _ name: String, partitions: [String], timeout: Duration,
    progress: (@Sendable (Int) -> Void)?
  ) async throws(MilvexError) {
    let deadline = ContinuousClock.now + timeout
    let call: MilvusCall<Void> =
      partitions.isEmpty ? .loadCollection(name) : .loadPartitions(partitions, in: name)
    try await perform(call, options: MilvusCallOptions(timeout: timeout))
    var percent: Int?
    let what =
      partitions.isEmpty
      ? "collection '\(name)'" : "partitions \(partitions) of collection '\(name)'"
    try await poll("loading \(what)", deadline: deadline) { remaining throws(MilvexError) in
      let options = MilvusCallOptions(timeout: remaining)
      let state = try await self.perform(
        .loadState(of: name, partitions: partitions), options: options)
      switch state {
      case .loaded:
        if percent != 100 { progress?(100) }
        return ()
      case .notExist: throw .milvus(code: 100, reason: "\(what) does not exist")
      case .loading, .notLoaded:
        // Progress is a nicety: a server without GetLoadingProgress still loads.
        let now = try? await self.perform(
          .loadingProgress(of: name, partitions: partitions), options: options)
        if let now, now != percent, now < 100 {
          percent = now
          progress?(now)
        }
        return nil
      }
    } lastProgress: {
      percent.map { "\($0) % loaded" }
    }
  }

  /// Compacts a collection and waits until the compaction has completed; returns its last
  /// state (plans completed, failed, timed out). `clustering` asks for a clustering
  /// compaction.
  ///
  /// - Important: Callable from any task.
  @discardableResult
  public func compact(
    _ collection: String, clustering: Bool = false, timeout: Duration = .seconds(300)
  ) async throws(MilvexError) -> CompactionProgress {
    let deadline = ContinuousClock.now + timeout
    let options = MilvusCallOptions(timeout: timeout)
    let described = try await perform(.describeCollection(collection), options: options)
    let id = try await perform(
      .compact(collection, collectionID: described.id, clustering: clustering), options: options)
    var last: CompactionProgress?
    return try await poll("compaction \(id) of collection '\(collection)'", deadline: deadline) {
      remaining throws(MilvexError) in
      let state = try await self.perform(
        .compactionState(id), options: MilvusCallOptions(timeout: remaining))
      last = state
      return state.state == .completed ? state : nil
    } lastProgress: {
      last.map { "\($0.completedPlans) plans completed, \($0.executingPlans) executing" }
    }
  }

  /// Runs `check` until it returns a value, waiting between tries on loop timers (50 ms, then
  /// × 1.5 up to 1 s); ends at `deadline` or when the task is cancelled.
  func poll<Value>(
    _ what: String, deadline: ContinuousClock.Instant,
    _ check: (Duration) async throws(MilvexError) -> Value?,
    lastProgress: () -> String? = { nil }
  ) async throws(MilvexError) -> Value {
    var interval = Duration.milliseconds(50)
    while true {
      let remaining = deadline - .now
      guard remaining > .zero else {
        let progress = lastProgress().map { " (\($0))" } ?? ""
        throw .status(.deadlineExceeded, "\(what) did not finish in time\(progress)")
      }
      if let value = try await check(remaining) { return value }
      await LoopPause.pause(for: min(interval, max(deadline - .now, .zero)), on: connection.loop)
      if Task.isCancelled { throw .status(.cancelled, "waiting for \(what) was cancelled") }
      interval = min(interval * 1.5, .seconds(1))
    }
  }
}
