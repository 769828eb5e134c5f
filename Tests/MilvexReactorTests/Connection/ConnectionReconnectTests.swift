import Foundation
import Logging
import MilvexTesting
import ServiceLifecycle
import Synchronization
import XCTest

@testable import MilvexReactor

/// Timer-driven tests of `Connection` against real servers on 127.0.0.1.
///
/// The backoff schedule and keepalive run on a loop with virtual time (issue 23): each attempt
/// and each PING is checked at its exact instant. The others stay on real time with short
/// real backoff timers and generous bounds; each says why.
final class ConnectionReconnectTests: XCTestCase {
  private var loop: EventLoop!
  private var cleanups: [() -> Void] = []

  override func setUpWithError() throws {
    loop = try EventLoop(threadName: "conn-test")
  }

  override func tearDown() {
    for cleanup in cleanups.reversed() { cleanup() }
    loop.shutdown()
  }

  private func fastConfig(
    port: Int, base: Duration = .milliseconds(20), max: Duration = .milliseconds(500),
    jitter: Double = 0.1
  ) throws -> ConnectionConfig {
    try ConnectionConfig(
      host: "127.0.0.1", port: port, connectTimeout: .seconds(2), reconnectBaseDelay: base,
      reconnectMaxDelay: max, reconnectJitter: jitter, keepaliveTime: .seconds(10),
      keepaliveTimeout: .seconds(5), allowTestingTimings: true)
  }

  /// A loop with virtual time for one test, shut down after the test's connections.
  private func virtualTimeLoop() throws -> EventLoop {
    let loop = try EventLoop.virtualTime(threadName: "conn-vtime")
    cleanups.append { loop.shutdown() }
    return loop
  }

  private func start(
    _ config: ConnectionConfig, on loop: EventLoop? = nil, name: String? = nil,
    logger: Logger? = nil,
    random: any BackoffRandomSource = SystemBackoffRandomSource(),
    log: TransitionLog? = nil
  ) throws -> Connection {
    let connection = try Connection.start(
      config: config, on: loop ?? self.loop, name: name, logger: logger ?? Logger(label: "test"),
      random: random
    ) { transition in log?.record(transition) }
    cleanups.append { connection.disconnect() }
    return connection
  }

  private func h2Server(port: Int? = nil) throws -> PeerProcess {
    let peer = try PeerProcess.announcing(
      script: "misbehaving_server.py",
      arguments: ["--scenario", "echo"] + (port.map { ["--port", "\($0)"] } ?? []))
    cleanups.append { peer.stop() }
    return peer
  }

  // MARK: - Kill and restart

  /// On real time: what it measures is how soon a real process's death and return are noticed
  /// (the socket closing, milvus-lite starting), which a virtual clock cannot speed up.
  func testKilledMilvusLiteIsReplacedAfterRestart() async throws {
    let server = try MilvusLite()
    cleanups.append { server.stop() }
    let log = TransitionLog()
    let connection = try start(
      try fastConfig(port: server.port, base: .milliseconds(50), max: .milliseconds(1000)), log: log
    )
    let (channel, config) = try await connection.waitForChannel(timeout: .seconds(10))
    XCTAssertEqual(config.port, server.port)
    _ = try await channel.unary(
      path: "/milvus.proto.milvus.MilvusService/GetVersion", request: [], timeout: .seconds(5))

    kill(server.peer.process.processIdentifier, SIGKILL)
    let killedAt = ContinuousClock.now
    let left = await log.wait(timeout: .seconds(2)) { $0.to == .reconnecting }
    let reconnectingAfter = ContinuousClock.now - killedAt
    XCTAssertNotNil(left, "left connected")
    XCTAssertLessThan(
      reconnectingAfter, .milliseconds(100) + .milliseconds(400), "reconnecting soon after the kill"
    )
    guard
      case .failure(.notConnected(let host, let port, let lastFailure)) = await result(
        of: connection)
    else {
      return XCTFail("get-channel while reconnecting must say not connected")
    }
    XCTAssertEqual(host, "127.0.0.1")
    XCTAssertEqual(port, server.port)
    XCTAssertNotNil(lastFailure, "why the channel was lost (or the latest attempt failed)")

    // A call on the dead channel fails retriably.
    do {
      _ = try await channel.unary(
        path: "/milvus.proto.milvus.MilvusService/GetVersion", request: [], timeout: .seconds(2))
      XCTFail("the dead channel must fail calls")
    } catch {
      XCTAssertTrue(error.isRetriable, "\(error)")
    }

    let restarted = try MilvusLite(port: server.port)
    cleanups.append { restarted.stop() }
    let listeningAt = ContinuousClock.now
    let back = try await connection.waitForChannel(timeout: .seconds(10))
    // The next attempt comes at most maxDelay * (1 + jitter) after the server listens.
    XCTAssertLessThan(ContinuousClock.now - listeningAt, .milliseconds(1100) + .seconds(2))
    let version = try await back.channel.unary(
      path: "/milvus.proto.milvus.MilvusService/GetVersion", request: [], timeout: .seconds(5))
    XCTAssertNotNil(ProtoScan.string(field: 2, in: version))
    XCTAssertEqual(log.states.suffix(2), [.reconnecting, .connected])
  }

  func testInFlightCallFailsRetriablyWhenTheServerDies() async throws {
    let server = try h2Server()
    let connection = try start(try fastConfig(port: server.port))
    let (channel, _) = try await connection.waitForChannel(timeout: .seconds(5))
    let pending = begin(channel, "/test.Echo/Never")
    try await roundTrip(channel)  // the call is now open on the server
    kill(server.process.processIdentifier, SIGKILL)
    guard
      case .failure(let error)? = await pending.first(within: .seconds(10), where: { _ in true }),
      case .grpcStatus(let status) = error
    else {
      return XCTFail("the in-flight call must fail")
    }
    XCTAssertEqual(status.code, .unavailable)
    XCTAssertTrue(error.isRetriable)
  }

  // MARK: - Backoff against a refusing port

  /// On virtual time: the next attempt is the only pending timer, at exactly its delay, and
  /// the attempt starts at that instant, not a nanosecond before.
  func testRefusedAttemptsFollowTheBackoffSchedule() async throws {
    let loop = try virtualTimeLoop()
    let port = freeLocalPort()
    let capture = LogCapture()
    let logger = Logger(label: "capture") { _ in capture }
    // Jitter pinned to its midpoint: the delays are exactly 20, 40, 80, 160, 320, 640 ms.
    let connection = try start(
      try fastConfig(port: port, base: .milliseconds(20), max: .seconds(1)), on: loop,
      logger: logger, random: PinnedRandomSource([0.5]))
    let delays: [Duration] = [
      .milliseconds(20), .milliseconds(40), .milliseconds(80), .milliseconds(160),
      .milliseconds(320), .milliseconds(640),
    ]
    var server: PeerProcess?
    for (index, delay) in delays.enumerated() {
      let attempt = index + 1
      let refused = await capture.failures.first(within: .seconds(10)) { $0 == attempt }
      XCTAssertNotNil(refused, "attempt \(attempt) is refused")
      let now = loop.now
      let scheduled = try await loop.pendingTimerDeadlines().map { $0 - now }
      XCTAssertEqual(scheduled, [delay], "after attempt \(attempt), the next waits \(delay)")
      XCTAssertEqual(connection.state, .connecting)
      try await loop.advanceTime(by: delay - .nanoseconds(1))
      XCTAssertEqual(capture.attempts.all.count, attempt, "attempt \(attempt + 1) came early")
      // Once the port listens, the next attempt connects.
      if attempt == delays.count { server = try h2Server(port: port) }
      try await loop.advanceTime(by: .nanoseconds(1))
      XCTAssertEqual(
        capture.attempts.all.count, attempt + 1, "attempt \(attempt + 1) starts after \(delay)")
    }
    try await connection.waitForState(.connected)
    XCTAssertEqual(server?.port, port)
    XCTAssertEqual(capture.failures.all.last, delays.count, "no attempt failed after it listened")
    XCTAssertTrue(
      capture.messages.contains { $0.contains("Connection refused") }, "failures name the reason")
  }

  // MARK: - Half-open connection

  /// On virtual time: the PING goes out after exactly `keepaliveTime` of quiet, and the
  /// connection is declared dead exactly `keepaliveTimeout` later, not "within 600 ms". A first
  /// round through the working proxy shows that the same steps keep a connection whose peer
  /// answers: the PING's ACK (real I/O, between advances) cancels the timeout.
  func testHalfOpenConnectionIsDetectedByKeepalive() async throws {
    let loop = try virtualTimeLoop()
    let server = try h2Server()
    let proxy = try PeerProcess.announcing(
      script: "fault_proxy.py", arguments: ["--target-port", "\(server.port)"])
    cleanups.append { proxy.stop() }
    let log = TransitionLog()
    var config = try fastConfig(port: proxy.port)
    config.keepaliveTime = .milliseconds(200)
    config.keepaliveTimeout = .milliseconds(300)
    let connection = try start(config, on: loop, log: log)
    try await connection.waitForState(.connected)
    let pending = { @Sendable in
      let now = loop.now
      return try await loop.pendingTimerDeadlines().map { $0 - now }
    }
    // The keepalive starts once the HTTP/2 handshake has finished (real I/O), which can be a
    // moment after the state reads connected.
    let armed = try await eventually { try await pending() == [.milliseconds(200)] }
    let first = try await pending()
    XCTAssertTrue(armed, "the first check is keepaliveTime away: \(first)")

    // The peer answers: the ACK turns the 300 ms timeout back into the 200 ms idle check.
    try await loop.advanceTime(by: .milliseconds(200))
    let afterPing = try await pending()
    XCTAssertEqual(afterPing, [.milliseconds(300)], "a PING went out, its timeout runs")
    let acknowledged = try await eventually { try await pending() == [.milliseconds(200)] }
    let afterAck = try await pending()
    XCTAssertTrue(acknowledged, "the PING is acknowledged: \(afterAck)")

    // Half open: nothing comes back any more.
    try proxy.command("blackhole")
    try await loop.advanceTime(by: .milliseconds(200))
    let afterSecondPing = try await pending()
    XCTAssertEqual(afterSecondPing, [.milliseconds(300)], "the second PING went out")
    try await loop.advanceTime(by: .milliseconds(299))
    try await Task.sleep(for: .milliseconds(200))  // a moment for an ACK that must not come
    XCTAssertEqual(connection.state, .connected, "the PING's answer has 300 ms")
    XCTAssertFalse(log.states.contains(.reconnecting))
    try await loop.advanceTime(by: .milliseconds(1))
    let left = await log.wait(timeout: .seconds(10)) { $0.from == .connected }
    XCTAssertNotNil(left)
    XCTAssertTrue(left?.reason.contains("keepalive") ?? false, left?.reason ?? "")
  }

  /// Polls `condition` (every 10 ms of wall time, for up to 10 s) while I/O brings it about.
  private func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
    let end = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < end {
      if try await condition() { return true }
      try await Task.sleep(for: .milliseconds(10))
    }
    return false
  }

  // MARK: - Many connections

  /// On real time: the spread of 500 jittered schedules is a statistic over real concurrency
  /// (500 sockets refused and reconnecting at once), not a schedule to check instant by instant;
  /// the exact schedule of one connection is `testRefusedAttemptsFollowTheBackoffSchedule`.
  func testFiveHundredConnectionsReconnectSpreadByJitter() async throws {
    let server = try h2Server()
    let port = server.port
    let count = 500
    let connectedAt = Locked<[Int: [ContinuousClock.Instant]]>([:])
    // Milestones: "connected 1" once all are connected, "reconnecting", then "connected 2".
    let milestones = EventRecorder<String>()
    let reconnecting = Atomic<Int>(0)
    let capture = LogCapture()
    var connections: [Connection] = []
    for index in 0..<count {
      let connection = try Connection.start(
        config: try fastConfig(
          port: port, base: .milliseconds(50), max: .milliseconds(400), jitter: 0.5), on: loop,
        logger: Logger(label: "capture") { _ in capture }
      ) { transition in
        if transition.to == .connected {
          let round = connectedAt.withLock { times -> Int? in
            times[index, default: []].append(.now)
            let round = times[index]!.count
            return times.count == count && times.values.allSatisfy { $0.count >= round }
              ? round : nil
          }
          if let round { milestones.record("connected \(round)") }
        }
        if transition.to == .reconnecting, reconnecting.add(1, ordering: .relaxed).newValue == count
        {
          milestones.record("reconnecting")
        }
      }
      connections.append(connection)
    }
    cleanups.append { for connection in connections { connection.disconnect() } }
    let firstRound = await milestones.first(within: .seconds(30)) { $0 == "connected 1" }
    XCTAssertNotNil(firstRound, "all connected")

    server.stop()
    let allReconnecting = await milestones.first(within: .seconds(10)) { $0 == "reconnecting" }
    XCTAssertNotNil(allReconnecting, "all reconnecting")
    // Let the backoff schedules diverge: on average three refused attempts per connection.
    let diverged = await capture.failures.first(within: .seconds(30)) { $0 == 3 * count }
    XCTAssertNotNil(diverged)
    let restarted = try h2Server(port: port)
    let restartedAt = ContinuousClock.now
    XCTAssertEqual(restarted.port, port)
    let secondRound = await milestones.first(within: .seconds(30)) { $0 == "connected 2" }
    XCTAssertNotNil(secondRound, "all connected again")
    let offsets = connectedAt.withLock {
      $0.values.map { ($0[1] - restartedAt) / .milliseconds(1) }
    }
    XCTAssertEqual(offsets.count, count, "all 500 connections are connected again")
    let mean = offsets.reduce(0, +) / Double(offsets.count)
    let deviation = (offsets.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(offsets.count))
      .squareRoot()
    let spread = (offsets.max() ?? 0) - (offsets.min() ?? 0)
    XCTAssertGreaterThan(
      spread, 100, "reconnects spread over more than 100 ms (spread \(spread) ms)")
    XCTAssertGreaterThan(deviation, 30, "reconnect times deviate (σ = \(deviation) ms)")
  }

  // MARK: - Surface

  func testInvalidConfigAndNames() throws {
    XCTAssertThrowsError(try ConnectionConfig(port: 70000)) { error in
      guard case .invalidArgument(let field, _) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "port")
    }
    let config = try fastConfig(port: freeLocalPort())
    let first = try start(config, name: "primary")
    XCTAssertTrue(Connection.named("primary") === first)
    XCTAssertThrowsError(try start(config, name: "primary")) { error in
      guard case .invalidArgument(let field, let message) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "name")
      XCTAssertTrue(message.contains("primary"))
    }
    // TLS is accepted, and its configuration reaches the channels (no handshake here: nothing
    // listens on the port).
    var tls = config
    tls.ssl = true
    tls.tls = TLSConfiguration(serverName: "milvus.example")
    let secure = try start(tls)
    XCTAssertEqual(secure.config.tls.serverName, "milvus.example")
    XCTAssertEqual(
      ConnectionDriver.channelConfiguration(for: secure.config, logger: Logger(label: "test")).tls,
      tls.tls)
  }

  func testDisconnectInEveryStateFreesTheNameAndFailsWaiters() async throws {
    // connecting (nothing listens)
    let refusing = try start(try fastConfig(port: freeLocalPort()), name: "a")
    // Submitted from this thread before the disconnect, so the waiter is registered first.
    let waiting = EventRecorder<
      Result<(channel: GRPCChannel, config: ConnectionConfig), MilvexError>
    >()
    refusing.waitForChannel(timeout: .seconds(10)) { result in
      waiting.record(result.map { ($0.0, $0.1) })
    }
    await refusing.disconnect()
    guard
      case .failure(.disconnected)? = await waiting.first(within: .seconds(5), where: { _ in true })
    else {
      return XCTFail("a waiter must fail with disconnected")
    }
    XCTAssertNil(Connection.named("a"))
    XCTAssertEqual(refusing.state, .disconnected)
    do {
      _ = try await refusing.waitForChannel(timeout: .seconds(1))
      XCTFail("waiting after disconnect must fail at once")
    } catch {
      guard case .disconnected = error else { return XCTFail("\(error)") }
      XCTAssertFalse(error.isRetriable)
    }

    // connected, with a call in flight
    let server = try h2Server()
    let connected = try start(try fastConfig(port: server.port), name: "a")
    let (channel, _) = try await connected.waitForChannel(timeout: .seconds(5))
    let call = begin(channel, "/test.Echo/Never")
    try await roundTrip(channel)  // the call is now open on the server
    var transitions = connected.transitions.makeAsyncIterator()
    await connected.disconnect()
    guard
      case .failure(let callError)? = await call.first(within: .seconds(5), where: { _ in true }),
      case .disconnected = callError
    else {
      return XCTFail("in-flight calls fail with disconnected")
    }
    let last = await transitions.next()
    XCTAssertEqual(last?.to, .disconnected)
    XCTAssertNil(Connection.named("a"))
    await connected.disconnect()  // idempotent

    // reconnecting
    let log = TransitionLog()
    let dying = try start(try fastConfig(port: server.port), log: log)
    _ = try await dying.waitForChannel(timeout: .seconds(5))
    server.stop()
    _ = await log.wait(timeout: .seconds(3)) { $0.to == .reconnecting }
    await dying.disconnect()
    XCTAssertEqual(dying.state, .disconnected)
    let connectedAnswer = try await dying.isConnected(timeout: .seconds(2))
    XCTAssertFalse(connectedAnswer)
  }

  /// On real time: a soak of real concurrency (8 threads asking while a real server restarts).
  func testEightThreadsAskForTheChannelWhileTheServerRestarts() async throws {
    let server = try h2Server()
    let port = server.port
    let connection = try start(
      try fastConfig(port: port, base: .milliseconds(20), max: .milliseconds(100)))
    _ = try await connection.waitForChannel(timeout: .seconds(5))
    let answered = Atomic<Int>(0)
    let unexpected = Locked<[String]>([])
    let perThread = 10_000
    let allAnswered = EventRecorder<Int>()
    // Restarts the server while the threads below are asking.
    let restarter = Task.detached {
      server.stop()
      return try PeerProcess.announcing(
        script: "misbehaving_server.py", arguments: ["--scenario", "echo", "--port", "\(port)"])
    }
    runThreads(8) { _ in
      for index in 0..<perThread {
        if index % 2 == 0 {
          connection.channel { result in
            switch result {
            case .success, .failure(.notConnected): break
            case .failure(let error): unexpected.withLock { $0.append("\(error)") }
            }
            if answered.add(1, ordering: .relaxed).newValue == 8 * perThread {
              allAnswered.record(0)
            }
          }
        } else {
          connection.isConnected { _ in
            if answered.add(1, ordering: .relaxed).newValue == 8 * perThread {
              allAnswered.record(0)
            }
          }
        }
      }
    }
    let second = try await restarter.value
    cleanups.append { second.stop() }
    let done = await allAnswered.first(within: .seconds(30)) { _ in true }
    XCTAssertNotNil(
      done, "every call answered (\(answered.load(ordering: .relaxed)) of \(8 * perThread))")
    XCTAssertEqual(unexpected.withLock { $0 }, [])
    _ = try await connection.waitForChannel(timeout: .seconds(5))
    let isUp = try await connection.isConnected(timeout: .seconds(2))
    XCTAssertTrue(isUp)
  }

  func testRunsInAServiceGroupAndDisconnectsOnGracefulShutdown() async throws {
    let server = try h2Server()
    let connection = try start(try fastConfig(port: server.port), name: "service")
    _ = try await connection.waitForChannel(timeout: .seconds(5))
    let group = ServiceGroup(
      services: [connection], gracefulShutdownSignals: [], cancellationSignals: [],
      logger: Logger(label: "test"))
    let running = Task { try await group.run() }
    await group.triggerGracefulShutdown()
    try await running.value
    XCTAssertEqual(connection.state, .disconnected)
    XCTAssertNil(Connection.named("service"))
  }

  // MARK: - Helpers

  /// Starts a call now (queued before anything this thread submits later); its result goes
  /// to the recorder.
  private func begin(_ channel: GRPCChannel, _ path: String) -> EventRecorder<
    Result<[UInt8], MilvexError>
  > {
    let outcome = EventRecorder<Result<[UInt8], MilvexError>>()
    channel.unary(path: path, request: [], timeout: .seconds(10)) { outcome.record($0) }
    return outcome
  }

  /// An echo round trip: every call begun before it on `channel` has reached the server.
  private func roundTrip(_ channel: GRPCChannel) async throws {
    let echoed = try await channel.unary(
      path: "/test.Echo/Call", request: [7], timeout: .seconds(5))
    XCTAssertEqual(echoed, [7])
  }

  private func result(of connection: Connection) async -> Result<
    (channel: GRPCChannel, config: ConnectionConfig), MilvexError
  > {
    do { return .success(try await connection.channel()) } catch { return .failure(error) }
  }
}

/// Records transitions and lets a test wait for one.
final class TransitionLog: Sendable {
  private let recorder = EventRecorder<StateTransition>()

  func record(_ transition: StateTransition) { recorder.record(transition) }

  var states: [ConnectivityState] { recorder.all.map(\.to) }

  func wait(timeout: Duration, _ matches: @escaping @Sendable (StateTransition) -> Bool) async
    -> StateTransition?
  {
    await recorder.first(within: timeout, where: matches)
  }
}

/// A log handler that keeps the messages and the times of connect attempts.
final class LogCapture: LogHandler, @unchecked Sendable {
  // @unchecked Sendable: all state is behind `lock`.
  private let lock = Locked<(messages: [String], attempts: Int, failures: Int)>(([], 0, 0))
  /// Each connect attempt, numbered from 1, with its time.
  let attempts = EventRecorder<(number: Int, at: ContinuousClock.Instant)>()
  /// The running count of failed attempts.
  let failures = EventRecorder<Int>()
  var metadata: Logger.Metadata = [:]
  var logLevel: Logger.Level = .trace

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    let now = ContinuousClock.now
    let text = "\(event.message) \(event.metadata ?? [:])"
    let message = "\(event.message)"
    let (attempt, failure) = lock.withLock { state -> (Int?, Int?) in
      state.messages.append(text)
      if message == "connecting" {
        state.attempts += 1
        return (state.attempts, nil)
      }
      if message == "connect attempt failed" {
        state.failures += 1
        return (nil, state.failures)
      }
      return (nil, nil)
    }
    if let attempt { attempts.record((attempt, now)) }
    if let failure { failures.record(failure) }
  }

  var messages: [String] { lock.withLock { $0.messages } }
}
