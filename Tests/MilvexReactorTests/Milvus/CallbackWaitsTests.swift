import Foundation
import XCTest

@testable import MilvexReactor

/// The loop-thread callback forms of the long operations (issue 22, item 6): flush, index
/// build, load, compaction, `useDatabase`, `close`, `Connection.disconnect`,
/// `GRPCChannel.isReady`. Each completion runs once, on the loop thread; progress runs on the
/// loop thread; a cancel ends a wait at once with CANCELLED and nothing follows; a loop that
/// has shut down still completes every form once. The real Milvus 2.3.5 server
/// (``MilvusServers/plain``) gives the waits visible durations; milvus-lite serves the rest.
final class CallbackWaitsTests: XCTestCase {
  private let schema = WaitTestCollection.schema
  private let ivf = IndexSpec(
    fieldName: "vec", indexType: .ivfFlat, metricType: .l2, params: ["nlist": 64])

  private func rows(_ range: Range<Int>) -> Entities { WaitTestCollection.rows(range) }

  /// What the callbacks of one operation did, in order, and whether each ran on the loop.
  private final class Log<Progress: Sendable, Output: Sendable>: @unchecked Sendable {
    enum Entry {
      case progress(Progress)
      case completion(Result<Output, MilvexError>)
    }
    // @unchecked Sendable: every stored property is touched only with `lock` held.
    private let lock = NSLock()
    private var entries: [Entry] = []
    private var offLoop = 0
    let completed: XCTestExpectation

    init(_ name: String) {
      completed = XCTestExpectation(description: name)
      completed.assertForOverFulfill = false  // counted below, with a message
    }

    func progress(_ value: Progress, onLoop: Bool) {
      lock.withLock {
        entries.append(.progress(value))
        if !onLoop { offLoop += 1 }
      }
    }

    func complete(_ result: Result<Output, MilvexError>, onLoop: Bool) {
      lock.withLock {
        entries.append(.completion(result))
        if !onLoop { offLoop += 1 }
      }
      completed.fulfill()
    }

    var progressValues: [Progress] {
      lock.withLock {
        entries.compactMap { if case .progress(let value) = $0 { value } else { nil } }
      }
    }

    var results: [Result<Output, MilvexError>] {
      lock.withLock {
        entries.compactMap { if case .completion(let result) = $0 { result } else { nil } }
      }
    }

    /// Whether anything was logged after the first completion.
    var anythingAfterCompletion: Bool {
      lock.withLock {
        guard
          let first = entries.firstIndex(where: { if case .completion = $0 { true } else { false } }
          )
        else { return false }
        return first != entries.count - 1
      }
    }

    var callbacksOffTheLoop: Int { lock.withLock { offLoop } }
  }

  /// Waits for `log`'s completion, then a little longer, and checks that it completed exactly
  /// once, that every callback ran on the loop thread and nothing came after the completion.
  /// Returns the result.
  private func outcome<Progress, Output>(
    of log: Log<Progress, Output>, timeout: TimeInterval = 180, file: StaticString = #filePath,
    line: UInt = #line
  ) async throws -> Result<Output, MilvexError> {
    await fulfillment(of: [log.completed], timeout: timeout)
    try await Task.sleep(for: .milliseconds(300))  // time for a second completion to show
    let results = log.results
    XCTAssertEqual(results.count, 1, "completions", file: file, line: line)
    XCTAssertEqual(
      log.callbacksOffTheLoop, 0, "callbacks off the loop thread", file: file, line: line)
    XCTAssertFalse(
      log.anythingAfterCompletion, "a callback after the completion", file: file, line: line)
    guard let result = results.first else { throw MilvexError.protocolViolation("no completion") }
    return result
  }

  private func statusCode(_ result: Result<some Any, MilvexError>) -> GRPCStatusCode? {
    guard case .failure(.grpcStatus(let status)) = result else { return nil }
    return status.code
  }

  private func statusMessage(_ result: Result<some Any, MilvexError>) -> String {
    guard case .failure(.grpcStatus(let status)) = result else { return "\(result)" }
    return status.message
  }

  // MARK: - The real server

  func testCallbackWaitsOnTheRealServer() async throws {
    let loop = try EventLoop(threadName: "callback-waits")
    defer { loop.shutdown() }
    let (client, name) = try await WaitTestCollection.create(prefix: "cbwaits", on: loop)
    do {

      // Flush: 2.3.5 counts only flushed rows, so the count proves the wait.
      let flush = Log<Never, Void>("flush")
      client.flush([name]) { flush.complete($0, onLoop: loop.inLoopThread) }
      try await outcome(of: flush).get()
      let statistics = try await client.perform(.collectionStatistics(name))
      XCTAssertEqual(statistics.rowCount, 20_500)

      // An index build cannot finish in 50 ms: DEADLINE_EXCEEDED names the index.
      let short = Log<IndexDescription, IndexDescription>("short index wait")
      client.createIndex(
        on: name, ivf, timeout: .milliseconds(50),
        progress: { short.progress($0, onLoop: loop.inLoopThread) },
        completion: { short.complete($0, onLoop: loop.inLoopThread) })
      let tooShort = try await outcome(of: short)
      XCTAssertEqual(statusCode(tooShort), .deadlineExceeded, "\(tooShort)")
      XCTAssertTrue(
        statusMessage(tooShort).hasPrefix(
          "the index on 'vec' of collection '\(name)' did not finish in time"),
        statusMessage(tooShort))

      // Cancelled from another thread while it is under way (its CreateIndex request is in
      // flight: the cancel reaches the loop through the queue in microseconds, the request takes
      // a round trip to the coordinator): CANCELLED once, nothing after it. Not at its first
      // progress report: the 50 ms wait above started the build, which a loaded machine lets
      // finish before any report of this wait.
      let cancelled = Log<IndexDescription, IndexDescription>("cancelled index wait")
      let handle = client.createIndex(
        on: name, ivf, progress: { cancelled.progress($0, onLoop: loop.inLoopThread) },
        completion: { cancelled.complete($0, onLoop: loop.inLoopThread) })
      handle.cancel()
      handle.cancel()  // idempotent
      let cancelResult = try await outcome(of: cancelled)
      XCTAssertEqual(statusCode(cancelResult), .cancelled, "\(cancelResult)")
      XCTAssertEqual(
        statusMessage(cancelResult),
        "waiting for the index on 'vec' of collection '\(name)' was cancelled")

      // The build runs to the end: progress on the loop, the last report is the result.
      let index = Log<IndexDescription, IndexDescription>("index wait")
      client.createIndex(
        on: name, ivf, progress: { index.progress($0, onLoop: loop.inLoopThread) },
        completion: { index.complete($0, onLoop: loop.inLoopThread) })
      let built = try await outcome(of: index).get()
      XCTAssertEqual(built.state, .finished)
      XCTAssertEqual(built.totalRows, 20_500)
      XCTAssertEqual(built.indexedRows, built.totalRows)
      XCTAssertEqual(index.progressValues.last, built)

      // Partitions, from any thread.
      let partitions = Log<Int, Void>("load p1")
      client.loadPartitions(
        ["p1"], in: name, progress: { partitions.progress($0, onLoop: loop.inLoopThread) },
        completion: { partitions.complete($0, onLoop: loop.inLoopThread) })
      try await outcome(of: partitions).get()
      XCTAssertEqual(partitions.progressValues.last, 100)
      XCTAssertEqual(partitions.progressValues, partitions.progressValues.sorted())
      let partitionState = try await client.perform(.loadState(of: name, partitions: ["p1"]))
      XCTAssertEqual(partitionState, .loaded)
      try await client.perform(.releasePartitions(["p1"], in: name))

      // The loop form, from inside a loop callback, cancelled at its first progress report
      // (on the loop: at once).
      let cancelledLoad = Log<Int, Void>("cancelled load")
      try loop.execute {
        var handle: MilvusCallHandle?
        handle = client.onLoop.loadCollection(
          name,
          progress: { percent in
            cancelledLoad.progress(percent, onLoop: loop.inLoopThread)
            handle?.cancel()
          }, completion: { cancelledLoad.complete($0, onLoop: loop.inLoopThread) })
      }
      let loadCancelled = try await outcome(of: cancelledLoad, timeout: 60)
      XCTAssertEqual(statusCode(loadCancelled), .cancelled, "\(loadCancelled)")
      XCTAssertEqual(
        statusMessage(loadCancelled), "waiting for loading collection '\(name)' was cancelled")
      XCTAssertEqual(cancelledLoad.progressValues.count, 1, "\(cancelledLoad.progressValues)")

      // The loop form to the end.
      let load = Log<Int, Void>("load")
      try loop.execute {
        client.onLoop.loadCollection(
          name, progress: { load.progress($0, onLoop: loop.inLoopThread) },
          completion: { load.complete($0, onLoop: loop.inLoopThread) })
      }
      try await outcome(of: load).get()
      XCTAssertEqual(load.progressValues.last, 100)
      let loaded = try await client.perform(.loadingProgress(of: name))
      XCTAssertEqual(loaded, 100)

      // Compaction after deletes.
      _ = try await client.perform(.delete(from: name, filter: "id < 1000"))
      try await client.flush([name])
      let compaction = Log<Never, CompactionProgress>("compaction")
      client.compact(name) { compaction.complete($0, onLoop: loop.inLoopThread) }
      let compacted = try await outcome(of: compaction).get()
      XCTAssertEqual(compacted.state, .completed)
      XCTAssertEqual(compacted.failedPlans, 0)

      // A missing database: 2.3.5 lacks DescribeDatabase, so the list decides (code 800).
      let missing = Log<Never, Void>("useDatabase")
      client.useDatabase("no_such_db_\(name)") { missing.complete($0, onLoop: loop.inLoopThread) }
      let missingResult = try await outcome(of: missing)
      guard case .failure(.milvus(let code, let reason)) = missingResult else {
        return XCTFail("\(missingResult)")
      }
      XCTAssertEqual(code, 800)
      XCTAssertEqual(reason, "database not found[database=no_such_db_\(name)]")
    } catch {
      _ = try? await client.perform(.dropCollection(name))
      await client.close()
      throw error
    }
    try await client.perform(.dropCollection(name))

    // close(completion:) completes once the connection has disconnected.
    let closed = Log<Never, ConnectivityState>("close")
    client.close { closed.complete(.success(client.connection.state), onLoop: loop.inLoopThread) }
    let closedValue = try await outcome(of: closed).get()
    XCTAssertEqual(closedValue, .disconnected)
    await assertMilvexError({ try await client.perform(.listCollections()) }) {
      if case .disconnected = $0 { true } else { false }
    }
  }

  // MARK: - milvus-lite

  /// useDatabase's callback forms switch the database before completing (milvus-lite has
  /// DescribeDatabase); a missing one is the server's error and leaves the database as it was.
  func testUseDatabaseCallbackFormsOnMilvusLite() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    let loop = fixture.loop
    try await client.perform(.createDatabase("cb_db"))

    let used = Log<Never, String>("useDatabase")
    client.useDatabase("cb_db") { result in
      used.complete(
        result.map { client.connection.onLoop.database }, onLoop: loop.inLoopThread)
    }
    let usedValue = try await outcome(of: used).get()
    XCTAssertEqual(usedValue, "cb_db", "switched before completing")

    let missing = Log<Never, String>("useDatabase (missing)")
    try loop.execute {
      client.onLoop.useDatabase("cb_missing") { result in
        missing.complete(
          result.map { "unexpected" }.mapError { error in
            XCTAssertEqual(client.connection.onLoop.database, "cb_db", "unchanged")
            return error
          }, onLoop: loop.inLoopThread)
      }
    }
    let missingResult = try await outcome(of: missing)
    guard case .failure(.milvus) = missingResult else { return XCTFail("\(missingResult)") }

    try await client.useDatabase("default")
    try await client.perform(.dropDatabase("cb_db"))
    await fixture.stop()
  }

  /// A wait on milvus-lite from the loop: flush, index, load and compaction complete once on
  /// the loop, and a wait cancelled before it could start (the handle cancels at once on the
  /// loop) completes with CANCELLED before any call.
  func testLoopFormsOnMilvusLite() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    let loop = fixture.loop
    try await client.perform(.createCollection("cbl", schema: schema))
    _ = try await client.perform(.insert(into: "cbl", rows(0..<200)))

    let steps = Log<String, String>("loop forms")
    try loop.execute {
      client.onLoop.flush(["cbl"]) { flushed in
        guard case .success = flushed else {
          return steps.complete(flushed.map { "" }, onLoop: loop.inLoopThread)
        }
        steps.progress("flushed", onLoop: loop.inLoopThread)
        client.onLoop.createIndex(
          on: "cbl", IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)
        ) {
          built in
          guard case .success = built else {
            return steps.complete(built.map { _ in "" }, onLoop: loop.inLoopThread)
          }
          steps.progress("indexed", onLoop: loop.inLoopThread)
          client.onLoop.loadCollection("cbl") { loaded in
            guard case .success = loaded else {
              return steps.complete(loaded.map { "" }, onLoop: loop.inLoopThread)
            }
            steps.progress("loaded", onLoop: loop.inLoopThread)
            client.onLoop.compact("cbl") { compacted in
              steps.complete(compacted.map { "\($0.state)" }, onLoop: loop.inLoopThread)
            }
          }
        }
      }
    }
    let stepsValue = try await outcome(of: steps).get()
    XCTAssertEqual(stepsValue, "completed")
    XCTAssertEqual(steps.progressValues, ["flushed", "indexed", "loaded"])

    let early = Log<Int, Void>("cancelled at once")
    try loop.execute {
      let handle = client.onLoop.loadPartitions(["_default"], in: "cbl") {
        early.complete($0, onLoop: loop.inLoopThread)
      }
      handle.cancel()
    }
    let earlyResult = try await outcome(of: early)
    XCTAssertEqual(statusCode(earlyResult), .cancelled, "\(earlyResult)")

    try await client.perform(.dropCollection("cbl"))
    await fixture.stop()
  }

  /// Connection.disconnect(reason:completion:) completes on the loop once disconnected; later
  /// calls fail with the reason; GRPCChannel.isReady answers on the loop.
  func testDisconnectAndIsReadyCallbackForms() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    let loop = fixture.loop
    _ = try await client.perform(.listCollections())
    let (channel, _) = try await client.connection.channel()

    let ready = Log<Never, Bool>("isReady")
    channel.isReady { ready.complete(.success($0), onLoop: loop.inLoopThread) }
    let readyValue = try await outcome(of: ready).get()
    XCTAssertEqual(readyValue, true)
    let readyAsync = await channel.isReady()
    XCTAssertTrue(readyAsync)

    let disconnected = Log<Never, ConnectivityState>("disconnect")
    client.connection.disconnect(reason: "the test is over") {
      disconnected.complete(.success(client.connection.state), onLoop: loop.inLoopThread)
    }
    let disconnectedValue = try await outcome(of: disconnected).get()
    XCTAssertEqual(disconnectedValue, .disconnected)
    await assertMilvexError({ try await client.perform(.listCollections()) }) {
      $0 == .disconnected(reason: "the test is over")
    }
    let notReady = Log<Never, Bool>("isReady after disconnect")
    channel.isReady { notReady.complete(.success($0), onLoop: loop.inLoopThread) }
    let notReadyValue = try await outcome(of: notReady).get()
    XCTAssertEqual(notReadyValue, false)
    await fixture.stop()
  }

  // MARK: - After the loop has shut down

  /// Every callback form still completes exactly once when the loop has shut down: at once,
  /// on the calling thread, with eventLoopShutDown naming the operation (close and
  /// disconnect: the shutdown disconnected the connection; isReady: false).
  func testCallbackFormsCompleteOnceAfterTheLoopShutDown() throws {
    let loop = try EventLoop(threadName: "callback-shutdown")
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: 1, timeout: .seconds(5)), on: loop)
    let channel = try GRPCChannel.connect(
      configuration: GRPCChannelConfiguration(host: "127.0.0.1", port: 1), loop: loop)
    loop.shutdown()

    let calls = Locked<[String]>([])
    func record<Output>(_ operation: String) -> @Sendable (Result<Output, MilvexError>) -> Void {
      { result in
        XCTAssertFalse(loop.inLoopThread)
        let outcome =
          switch result {
          case .success: "\(operation): success"
          case .failure(let error): "\(operation): \(error)"
          }
        calls.withLock { $0.append(outcome) }
      }
    }
    client.flush(["c"], completion: record("flush"))
    client.createIndex(on: "c", ivf, completion: record("createIndex"))
    client.loadCollection("c", completion: record("loadCollection"))
    client.loadPartitions(["p"], in: "c", completion: record("loadPartitions"))
    client.compact("c", completion: record("compact"))
    client.useDatabase("d", completion: record("useDatabase"))
    client.close { calls.withLock { $0.append("close") } }
    client.connection.disconnect { calls.withLock { $0.append("disconnect") } }
    channel.isReady { ready in calls.withLock { $0.append("isReady: \(ready)") } }
    // Every completion ran before its call returned; nothing comes later.
    Thread.sleep(forTimeInterval: 0.2)
    let shutDown = { (operation: String) in
      "\(operation): \(MilvexError.eventLoopShutDown(operation: operation))"
    }
    XCTAssertEqual(
      calls.withLock { $0 },
      [
        shutDown("flush"), shutDown("createIndex"), shutDown("loadCollection"),
        shutDown("loadPartitions"), shutDown("compact"), shutDown("useDatabase"), "close",
        "disconnect", "isReady: false",
      ])
  }

  // MARK: - Misuse

  /// A loop-thread form called off the loop thread starts nothing and completes once, at
  /// once, on the calling thread, with invalidArgument (field `thread`) naming the operation;
  /// its handle cancels nothing. `onLoop.close()` off the loop disconnects soon. No crash.
  func testLoopFormsCalledOffTheLoopAreAnsweredNotTrapped() async throws {
    let loop = try EventLoop(threadName: "callback-misuse")
    defer { loop.shutdown() }
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: 1, timeout: .seconds(5)), on: loop)
    var outcomes: [String] = []
    func record<Output>(_ result: Result<Output, MilvexError>) {
      XCTAssertFalse(loop.inLoopThread)
      guard case .failure(.invalidArgument(let field, let message)) = result else {
        return outcomes.append("unexpected: \(result)")
      }
      outcomes.append("\(field): \(message)")
    }
    let view = client.onLoop
    view.flush(["c"]) { record($0) }.cancel()
    view.createIndex(on: "c", ivf) { record($0) }.cancel()
    view.loadCollection("c") { record($0) }.cancel()
    view.loadPartitions(["p"], in: "c") { record($0) }.cancel()
    view.compact("c") { record($0) }.cancel()
    view.useDatabase("d") { record($0) }.cancel()
    XCTAssertEqual(
      outcomes,
      ["flush", "createIndex", "loadCollection", "loadPartitions", "compact", "useDatabase"].map {
        "thread: MilvusClient.onLoop.\($0) was called off the event loop thread and started "
          + "nothing; from other threads use MilvusClient.\($0)"
      })

    view.close()
    let deadline = ContinuousClock.now + .seconds(5)
    while client.connection.state != .disconnected, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(10))
    }
    XCTAssertEqual(client.connection.state, .disconnected)
  }
}
