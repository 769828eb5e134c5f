import Foundation
import XCTest

@testable import MilvexReactor

/// Every call completes exactly once: under concurrency from many threads, while waiting for a
/// connection that never comes, when the client is closed, and when the loop shuts down with a
/// retry pending.
final class MilvusClientBehaviourTests: XCTestCase {
  func testConcurrentCallsFromManyThreadsEachCompleteOnce() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    try await client.perform(
      .createCollection("many", schema: TestData.schema, consistencyLevel: .strong))
    _ = try await client.perform(.insert(into: "many", .columns(TestData.columns(0..<200))))
    try await client.perform(.createIndex(on: "many", IndexSpec(fieldName: "vec", metricType: .l2)))
    try await client.perform(
      .createIndex(on: "many", IndexSpec(fieldName: "vec2", metricType: .ip)))
    try await client.loadCollection("many")

    let threads = 4
    let perThread = 100
    let answers = Locked<[Int: Int]>([:])  // probe → completions
    let wrong = Locked<[String]>([])
    let done = Latch()
    let finished = Locked(0)
    runThreads(threads) { thread in
      for n in 0..<perThread {
        let probe = (thread * perThread + n) % 200
        client.perform(
          .search("many", vectors: [TestData.vector(probe)], annsField: "vec", limit: 1)
        ) { result in
          answers.withLock { $0[thread * perThread + n, default: 0] += 1 }
          switch result {
          case .success(let hits) where hits.first?.first?.id == .int(Int64(probe)): break
          case .success(let hits): wrong.withLock { $0.append("probe \(probe): \(hits)") }
          case .failure(let error): wrong.withLock { $0.append("probe \(probe): \(error)") }
          }
          if finished.withLock({
            $0 += 1; return $0
          }) == threads * perThread {
            done.open()
          }
        }
      }
    }
    done.waitOrFail("\(threads * perThread) searches", timeout: .seconds(120))
    XCTAssertEqual(wrong.withLock { $0 }, [])
    let counts = answers.withLock { $0 }
    XCTAssertEqual(counts.count, threads * perThread)
    XCTAssertEqual(Set(counts.values), [1], "each completion exactly once")
    await fixture.stop()
  }

  func testACallWaitsForTheConnectionWithinItsDeadline() async throws {
    let loop = try EventLoop(threadName: "no-server")
    defer { loop.shutdown() }
    let port = freeLocalPort()  // nothing listens here
    let client = try MilvusClient.connect(
      config: ConnectionConfig(
        host: "127.0.0.1", port: port, reconnectBaseDelay: .milliseconds(100)), on: loop)
    let started = ContinuousClock.now
    await assertMilvexError({
      try await client.perform(
        .listCollections(), options: MilvusCallOptions(timeout: .milliseconds(400)))
    }) { error in
      // UNAVAILABLE with the last connect error, as gRPC clients report it; the cause is typed.
      guard case .grpcStatus(let status) = error, status.code == .unavailable,
        case .notConnected(_, let reported, let lastFailure)? = status.cause
      else { return false }
      return reported == port && status.message.contains("refused")
        && lastFailure?.contains("refused") == true
    }
    let elapsed = ContinuousClock.now - started
    XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(390))
    XCTAssertLessThan(elapsed, .seconds(3))

    // A call still waiting when the client is closed fails with `disconnected`, once.
    let failed = Latch()
    let completions = Locked(0)
    client.perform(.listCollections(), options: MilvusCallOptions(timeout: .seconds(30))) {
      result in
      completions.withLock { $0 += 1 }
      if case .failure(.disconnected) = result { failed.open() } else { XCTFail("\(result)") }
    }
    await client.close()
    failed.waitOrFail("the waiting call to fail")
    _ = try? await loop.submit {}  // anything else would have run by now
    XCTAssertEqual(completions.withLock { $0 }, 1)
  }

  func testLoopShutdownCompletesACallWaitingToRetry() throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "milvus-flaky"])
    defer { server.stop() }
    let loop = try EventLoop(threadName: "retry-shutdown")
    let slow = RetryPolicy(maxAttempts: 3, baseDelay: .seconds(20), maxDelay: .seconds(20))
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: server.port), on: loop, retryPolicy: slow)
    let answered = Latch()
    let result = Locked<Result<String, MilvexError>?>(nil)
    let waiting = Latch()
    // The first GetVersion is rate limited; the retry waits 20 s.
    client.perform(.serverVersion(), options: MilvusCallOptions(timeout: .seconds(60))) { outcome in
      result.withLock { $0 = outcome }
      answered.open()
    }
    // The flaky server counts the GetVersion once the first attempt is answered.
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
      let counted = Latch()
      let names = Locked<[String]>([])
      client.perform(.listDatabases()) { outcome in
        names.withLock { $0 = (try? outcome.get()) ?? [] }
        counted.open()
      }
      counted.waitOrFail("the counters")
      if names.withLock({ $0 }).contains("GetVersion=1") { waiting.open(); break }
    }
    XCTAssertTrue(waiting.wait(timeout: .zero), "the first attempt was answered")
    XCTAssertFalse(answered.wait(timeout: .milliseconds(50)), "still waiting to retry")
    loop.shutdown()
    answered.waitOrFail("the call to complete at loop shutdown", timeout: .seconds(5))
    guard case .failure(.eventLoopShutDown) = result.withLock({ $0 }) else {
      return XCTFail("\(String(describing: result.withLock { $0 }))")
    }
  }

  func testCancellingTheTaskEndsTheCallAtOnce() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "milvus-flaky"])
    defer { server.stop() }
    let loop = try EventLoop(threadName: "cancel-test")
    defer { loop.shutdown() }
    let slow = RetryPolicy(maxAttempts: 3, baseDelay: .seconds(20), maxDelay: .seconds(20))
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: server.port), on: loop, retryPolicy: slow)
    _ = try await client.perform(.listDatabases())  // connected

    // In flight: Flush is never answered.
    let flushing = Task {
      try await client.perform(.flush(["c"]), options: MilvusCallOptions(timeout: .seconds(60)))
    }
    // Waiting to retry: the first GetVersion is rate limited, the retry would wait 20 s.
    let versioning = Task {
      try await client.perform(.serverVersion(), options: MilvusCallOptions(timeout: .seconds(60)))
    }
    // Both have reached the server once its counters show them.
    let deadline = ContinuousClock.now + .seconds(10)
    var names: [String] = []
    while ContinuousClock.now < deadline,
      !(names.contains("Flush=1") && names.contains("GetVersion=1"))
    {
      names = try await client.perform(.listDatabases())
    }
    XCTAssertTrue(names.contains("Flush=1") && names.contains("GetVersion=1"), "\(names)")

    let started = ContinuousClock.now
    flushing.cancel()
    versioning.cancel()
    await assertMilvexError({ try await flushing.value }) {
      if case .grpcStatus(let status) = $0 { return status.code == .cancelled }
      return false
    }
    await assertMilvexError({ try await versioning.value }) {
      if case .grpcStatus(let status) = $0 { return status.code == .cancelled }
      return false
    }
    XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))

    // The callback form's handle does the same, and the completion still runs once.
    let completions = Locked<[Result<Void, MilvexError>]>([])
    let ended = Latch()
    let handle = client.perform(.flush(["c"]), options: MilvusCallOptions(timeout: .seconds(60))) {
      result in
      completions.withLock { $0.append(result) }
      ended.open()
    }
    let sentBy = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < sentBy,
      !(try await client.perform(.listDatabases())).contains("Flush=2")
    {}
    handle.cancel()
    handle.cancel()
    ended.waitOrFail("the cancelled callback")
    _ = try await client.perform(.listDatabases())
    XCTAssertEqual(completions.withLock { $0.count }, 1)
    guard case .failure(.grpcStatus(let status)) = completions.withLock({ $0[0] }),
      status.code == .cancelled
    else {
      return XCTFail("\(completions.withLock { $0 })")
    }

    // The connection is unharmed; GetVersion was not sent again.
    let after = try await client.perform(.listDatabases())
    XCTAssertTrue(after.contains("GetVersion=1"), "\(after)")
    await client.close()
  }

  /// Another process re-creates a collection with another schema: this client checks against
  /// the schema it saw until told to forget it.
  func testStaleSchemaUntilForgotten() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    let other = try MilvusClient(
      connection: Connection.start(
        config: ConnectionConfig(host: "127.0.0.1", port: fixture.server.port), on: fixture.loop,
        setup: .milvus))
    let wide = CollectionSchema(fields: [.primaryKey("id"), .vector("v", dimension: 8)])
    let narrow = CollectionSchema(fields: [.primaryKey("id"), .vector("v", dimension: 4)])
    try await client.perform(.createCollection("remade", schema: wide))
    try await other.perform(.dropCollection("remade"))
    try await other.perform(.createCollection("remade", schema: narrow))

    let row: Row = ["id": 1, "v": [0.1, 0.2, 0.3, 0.4]]
    await assertMilvexError({ try await client.perform(.insert(into: "remade", rows: [row])) }) {
      $0.invalidField == "rows[0].v"
    }
    client.forgetCachedSchemas()
    let inserted = try await client.perform(.insert(into: "remade", rows: [row]))
    XCTAssertEqual(inserted.insertCount, 1)
    await other.close()
    await fixture.stop()
  }

  /// A call cancelled while it waits for the connection completes at once, and sends nothing
  /// once the connection comes.
  func testACallCancelledWhileWaitingIsNeverSent() async throws {
    let loop = try EventLoop(threadName: "cancel-waiting")
    defer { loop.shutdown() }
    let port = freeLocalPort()
    let client = try MilvusClient.connect(
      config: ConnectionConfig(
        host: "127.0.0.1", port: port, reconnectBaseDelay: .milliseconds(100),
        reconnectMaxDelay: .milliseconds(200), allowTestingTimings: true),
      on: loop)
    let ended = Latch()
    let result = Locked<Result<[String], MilvexError>?>(nil)
    let handle = client.perform(
      .listCollections(), options: MilvusCallOptions(timeout: .seconds(30))
    ) { outcome in
      result.withLock { $0 = outcome }
      ended.open()
    }
    handle.cancel()
    ended.waitOrFail("the cancelled call", timeout: .seconds(5))
    guard case .failure(.grpcStatus(let status)) = result.withLock({ $0 }),
      status.code == .cancelled
    else {
      return XCTFail("\(String(describing: result.withLock { $0 }))")
    }
    // Now the server comes; the connection connects and would resume the waiting call.
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py",
      arguments: ["--scenario", "milvus-flaky", "--port", "\(port)"])
    defer { server.stop() }
    let names = try await client.perform(
      .listDatabases(), options: MilvusCallOptions(timeout: .seconds(10)))
    XCTAssertFalse(
      names.contains { $0.hasPrefix("ShowCollections") }, "the cancelled call was sent: \(names)")
    await client.close()
  }
}
