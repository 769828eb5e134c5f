import Logging
import MilvexTesting
import XCTest

@testable import MilvexReactor

/// Issue 23, item 2, live: every timer of the library follows a loop's virtual time, against
/// real peers on loopback. Each test waits minutes to a month of virtual time in about a second
/// of wall time: I/O completes in real time (the test waits for it, bounded generously), and
/// every time-based decision waits for `advanceTime`.
///
/// Connections other than the keepalive test's use a keepalive time of 30 days: an advance does
/// not read sockets, so a PING sent during a long advance cannot be answered in it (see
/// Docs/testing.md, "Virtual time").
final class VirtualTimeLibraryTimerTests: XCTestCase {
  private var loop: EventLoop!
  private var cleanups: [() -> Void] = []
  private var wallStart = ContinuousClock.now
  private static let month = Duration.seconds(30 * 86_400)

  override func setUpWithError() throws {
    loop = try EventLoop.virtualTime(threadName: "vt-timers")
    wallStart = .now
  }

  override func tearDown() {
    for cleanup in cleanups.reversed() { cleanup() }
    loop.shutdown()
    let wall = ContinuousClock.now - wallStart
    print("virtual-time wall: \(name) \(wall)")
    XCTAssertLessThan(wall, .seconds(30), "virtual time is fast")
  }

  // MARK: - Helpers

  private func config(
    port: Int, connectTimeout: Duration = .seconds(10),
    reconnectBaseDelay: Duration = .seconds(60), keepaliveTime: Duration = month,
    keepaliveTimeout: Duration = .seconds(10), ssl: Bool = false
  ) throws -> ConnectionConfig {
    try ConnectionConfig(
      host: "127.0.0.1", port: port, connectTimeout: connectTimeout, ssl: ssl,
      reconnectBaseDelay: reconnectBaseDelay, reconnectMaxDelay: .seconds(120),
      reconnectJitter: 0, keepaliveTime: keepaliveTime, keepaliveTimeout: keepaliveTimeout)
  }

  private func start(
    _ config: ConnectionConfig, setup: (any ChannelSetup)? = nil, logger: Logger? = nil,
    transitions: EventRecorder<StateTransition> = EventRecorder()
  ) throws -> Connection {
    var quiet = Logger(label: "vt-timers")
    quiet.logLevel = .critical
    let connection = try Connection.start(
      config: config, on: loop, setup: setup, logger: logger ?? quiet
    ) { transitions.record($0) }
    cleanups.append { connection.disconnect() }
    return connection
  }

  private func peer(_ scenario: String) throws -> PeerProcess {
    let server = try PeerProcess.misbehavingServer(scenario)
    cleanups.append { server.stop() }
    return server
  }

  /// Waits (in wall time, polling) for I/O to bring `condition` about.
  private func eventually(
    _ what: String, within timeout: Duration = .seconds(10), file: StaticString = #filePath,
    line: UInt = #line, _ condition: () async throws -> Bool
  ) async throws {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
      if try await condition() { return }
      try? await Task.sleep(for: .milliseconds(10))
    }
    XCTFail("timed out after \(timeout) waiting for \(what)", file: file, line: line)
  }

  /// A moment of real time for I/O that must *not* change anything.
  private func settle() async { try? await Task.sleep(for: .milliseconds(200)) }

  /// The pending deadlines, as offsets from the loop's now.
  private func pendingDelays() async throws -> [Duration] {
    let now = loop.now
    return try await loop.pendingTimerDeadlines().map { $0 - now }
  }

  // MARK: - Connection timers

  func testTheReconnectBackoffWaitsForTheClock() async throws {
    let capture = LogCapture()
    let logger = Logger(label: "capture") { _ in capture }
    _ = try start(config(port: freeLocalPort()), logger: logger)
    let failed = await capture.failures.first(within: .seconds(10)) { $0 >= 1 }
    XCTAssertNotNil(failed, "the first attempt is refused")
    let pending = try await pendingDelays()
    XCTAssertEqual(pending, [.seconds(60)], "the backoff schedule reads 60 s")
    await settle()
    try await loop.advanceTime(by: .seconds(59))
    await settle()
    XCTAssertEqual(capture.attempts.all.count, 1, "no attempt before the backoff ran out")
    try await loop.advanceTime(by: .seconds(1))
    let second = await capture.attempts.first(within: .seconds(10)) { $0.number == 2 }
    XCTAssertNotNil(second, "the second attempt starts once 60 s passed")
    _ = await capture.failures.first(within: .seconds(10)) { $0 >= 2 }
    let next = try await pendingDelays()
    XCTAssertEqual(next, [.seconds(120)], "then the delay doubles")
  }

  func testTheConnectTimeoutWaitsForTheClock() async throws {
    let server = try peer("no-settings")
    let transitions = EventRecorder<StateTransition>()
    _ = try start(
      config(port: server.port, connectTimeout: .seconds(20)), transitions: transitions)
    await settle()
    XCTAssertFalse(transitions.all.contains { $0.reason.contains("connect timeout") })
    try await loop.advanceTime(by: .seconds(19))
    await settle()
    XCTAssertFalse(transitions.all.contains { $0.reason.contains("connect timeout") })
    try await loop.advanceTime(by: .seconds(1))
    let timedOut = await transitions.first(within: .seconds(10)) {
      $0.reason.contains("connect timeout after 20.0 seconds")
    }
    XCTAssertNotNil(timedOut, "\(transitions.all)")
  }

  func testTheTLSHandshakeTimeoutWaitsForTheClock() async throws {
    let server = try peer("tls-handshake-stall")
    let transitions = EventRecorder<StateTransition>()
    _ = try start(
      config(port: server.port, connectTimeout: .seconds(30), ssl: true), transitions: transitions)
    await settle()
    try await loop.advanceTime(by: .seconds(29))
    await settle()
    XCTAssertFalse(transitions.all.contains { $0.reason.contains("handshake") })
    try await loop.advanceTime(by: .seconds(1))
    let timedOut = await transitions.first(within: .seconds(10)) {
      $0.reason.contains("handshake")
    }
    XCTAssertNotNil(timedOut, "\(transitions.all)")
  }

  /// The set-up handshake (Milvus's `Connect` for a `MilvusClient`) is a call with the connect
  /// timeout as its deadline; here it goes to a method the peer never answers.
  func testTheSetUpHandshakeTimeoutWaitsForTheClock() async throws {
    let server = try peer("echo")
    let transitions = EventRecorder<StateTransition>()
    let setup = NeverAnsweredSetup()
    _ = try start(
      config(port: server.port, connectTimeout: .seconds(40)), setup: setup,
      transitions: transitions)
    try await eventually("the handshake sent") { setup.started.withLock { $0 } == 1 }
    try await loop.advanceTime(by: .seconds(39))
    await settle()
    XCTAssertFalse(transitions.all.contains { $0.reason.contains("handshake") })
    try await loop.advanceTime(by: .seconds(1))
    let timedOut = await transitions.first(within: .seconds(10)) {
      $0.reason.contains("handshake failed") && $0.reason.contains("DEADLINE_EXCEEDED")
    }
    XCTAssertNotNil(timedOut, "\(transitions.all)")
  }

  func testKeepalivePingAndItsTimeoutWaitForTheClock() async throws {
    let server = try peer("no-ping-ack")
    let transitions = EventRecorder<StateTransition>()
    let connection = try start(
      config(port: server.port, keepaliveTime: .seconds(10), keepaliveTimeout: .seconds(10)),
      transitions: transitions)
    _ = try await connection.waitForChannel(timeout: .seconds(10))
    await settle()
    try await loop.advanceTime(by: .seconds(10))  // idle for 10 s: the PING goes out
    await settle()
    XCTAssertEqual(connection.state, .connected, "the PING's answer has 10 s")
    let pending = try await pendingDelays()
    XCTAssertTrue(pending.contains(.seconds(10)), "the PING timeout is pending: \(pending)")
    try await loop.advanceTime(by: .seconds(10))
    let dead = await transitions.first(within: .seconds(10)) {
      $0.reason.contains("keepalive timeout")
    }
    XCTAssertNotNil(dead, "\(transitions.all)")
  }

  func testAThirtyDayCallDeadlineWaitsForTheClock() async throws {
    let server = try peer("echo")
    let connection = try start(config(port: server.port))
    let channel = try await connection.waitForChannel(timeout: .seconds(10)).channel
    let month = Self.month
    let done = Locked(false)
    let call = Task {
      let result = await outcome {
        try await channel.unary(path: "/test.Echo/Never", request: [1], timeout: month)
      }
      done.withLock { $0 = true }
      return result
    }
    try await eventually("the call's deadline timer") {
      try await pendingDelays().contains(Self.month)
    }
    try await loop.advanceTime(by: Self.month - .seconds(1))
    await settle()
    XCTAssertFalse(done.withLock { $0 }, "the call is still open 1 s before its deadline")
    try await loop.advanceTime(by: .seconds(1))
    let result = await call.value
    guard case .failure(.grpcStatus(let status)) = result else {
      return XCTFail("\(result)")
    }
    XCTAssertEqual(status.code, .deadlineExceeded)
  }

  func testAWaitForReadyDeadlineWaitsForTheClock() async throws {
    let connection = try start(config(port: freeLocalPort()))
    let done = Locked(false)
    let wait = Task {
      let result = await outcome {
        try await connection.waitForChannel(timeout: .seconds(300)).config.port
      }
      done.withLock { $0 = true }
      return result
    }
    try await eventually("the wait's deadline") {
      try await pendingDelays().contains(.seconds(300))
    }
    try await loop.advanceTime(by: .seconds(299))
    await settle()
    XCTAssertFalse(done.withLock { $0 }, "the wait is still open 1 s before its deadline")
    try await loop.advanceTime(by: .seconds(1))
    let result = await wait.value
    guard case .failure(.notConnected) = result else { return XCTFail("\(result)") }
  }

  func testHealthProbesWaitForTheClock() async throws {
    let servers = try (0..<2).map { _ in try peer("echo") }
    var config = try config(port: servers[0].port)
    config.additionalEndpoints = [Endpoint(host: "127.0.0.1", port: servers[1].port)]
    config.healthCheckInterval = .seconds(600)
    let setup = CountingSetup()
    let connection = try start(config, setup: setup)
    try await eventually("both endpoints connected") {
      connection.endpointStates.values.allSatisfy { $0 == .connected }
        && connection.endpointStates.count == 2
    }
    try await loop.advanceTime(by: .seconds(599))
    XCTAssertEqual(setup.probes.withLock { $0 }, 0)
    try await loop.advanceTime(by: .seconds(1))
    XCTAssertEqual(setup.probes.withLock { $0 }, 2, "each connected endpoint is probed")
    try await loop.advanceTime(by: .seconds(600))
    XCTAssertEqual(setup.probes.withLock { $0 }, 4)
  }

  func testChannelRecyclingWaitsForTheClock() async throws {
    let server = try peer("echo")
    var config = try config(port: server.port)
    config.maxChannelAge = .seconds(1000)
    let setup = CountingSetup()
    let connection = try start(config, setup: setup)
    _ = try await connection.waitForChannel(timeout: .seconds(10))
    XCTAssertEqual(setup.setUps.withLock { $0 }, 1)
    let ageTimer = try await pendingDelays().filter { $0 < Self.month }
    XCTAssertEqual(ageTimer.count, 1, "the age timer, besides keepalive: \(ageTimer)")
    XCTAssertTrue(ageTimer.allSatisfy { $0 >= .seconds(900) && $0 <= .seconds(1100) })
    try await loop.advanceTime(by: .seconds(899))  // below the age less its 10 % jitter
    await settle()
    XCTAssertEqual(setup.setUps.withLock { $0 }, 1)
    // Exactly to the age, not beyond: the replacement's connect timeout would pass in the
    // same advance, before its socket could connect.
    let due = try await loop.pendingTimerDeadlines()[0]
    try await loop.advanceTime(to: due)
    try await eventually("the replacement channel set up") { setup.setUps.withLock { $0 } == 2 }
    XCTAssertEqual(connection.state, .connected)
  }

  func testAddressRefreshWaitsForTheClock() async throws {
    let dns = try PeerProcess.announcing(script: "dns_server.py", arguments: [])
    cleanups.append { dns.stop() }
    let hostName = "vt-cluster.test"
    let first = try PeerProcess.announcing(
      script: "misbehaving_server.py",
      arguments: ["--scenario", "echo", "--host", "127.0.0.2"])
    cleanups.append { first.stop() }
    let second = try PeerProcess.announcing(
      script: "misbehaving_server.py",
      arguments: ["--scenario", "echo", "--host", "127.0.0.3", "--port", "\(first.port)"])
    cleanups.append { second.stop() }
    try dns.command("SET \(hostName) 127.0.0.2")
    var config = try ConnectionConfig(
      host: hostName, port: first.port, reconnectBaseDelay: .seconds(60), reconnectJitter: 0,
      keepaliveTime: Self.month)
    config.addressResolution = .everyAddress(refreshInterval: .seconds(3600))
    config.dnsServer = Endpoint(host: "127.0.0.1", port: dns.port)
    let connection = try start(config)
    try await eventually("the first address connected") {
      connection.endpointStates.values.contains(.connected)
    }
    let queries = try XCTUnwrap(Int(dns.query("COUNT \(hostName)")))
    try dns.command("SET \(hostName) 127.0.0.2,127.0.0.3")
    try await loop.advanceTime(by: .seconds(3599))
    await settle()
    XCTAssertEqual(try XCTUnwrap(Int(dns.query("COUNT \(hostName)"))), queries)
    XCTAssertEqual(connection.endpointStates.count, 1)
    try await loop.advanceTime(by: .seconds(1))
    try await eventually("both addresses connected after the refresh") {
      connection.endpointStates.count == 2
        && connection.endpointStates.values.allSatisfy { $0 == .connected }
    }
    XCTAssertGreaterThan(try XCTUnwrap(Int(dns.query("COUNT \(hostName)"))), queries)
  }

  // MARK: - Milvus client timers

  /// A client of the `milvus-flaky` server, and its per-method call counts.
  private func flakyClient(_ policy: RetryPolicy = RetryPolicy()) throws -> MilvusClient {
    let server = try peer("milvus-flaky")
    let client = try MilvusClient.connect(
      config: config(port: server.port), on: loop, retryPolicy: policy)
    cleanups.append { client.connection.disconnect() }
    return client
  }

  private func counts(_ client: MilvusClient) async throws -> [String: Int] {
    var counts: [String: Int] = [:]
    for name in try await client.perform(.listDatabases()) {
      let parts = name.split(separator: "=")
      counts[String(parts[0])] = Int(parts[1])
    }
    return counts
  }

  func testRetryDelaysWaitForTheClock() async throws {
    let client = try flakyClient(
      RetryPolicy(baseDelay: .seconds(60), maxDelay: .seconds(600), jitter: 0))
    let version = Task {
      await outcome {
        try await client.perform(
          .serverVersion(), options: MilvusCallOptions(timeout: .seconds(3600)))
      }
    }
    try await eventually("the first attempt answered") {
      let answered = try await counts(client)["GetVersion"] == 1
      let pending = try await pendingDelays()
      return answered && pending.contains(.seconds(60))
    }
    try await loop.advanceTime(by: .seconds(59))
    await settle()
    let stillOne = try await counts(client)["GetVersion"]
    XCTAssertEqual(stillOne, 1)
    try await loop.advanceTime(by: .seconds(1))
    try await eventually("the second attempt answered") {
      let answered = try await counts(client)["GetVersion"] == 2
      let pending = try await pendingDelays()
      return answered && pending.contains(.seconds(120))
    }
    try await loop.advanceTime(by: .seconds(120))
    let result = await version.value
    XCTAssertEqual(try result.get(), "flaky-3", "two rate-limited answers, then success")
  }

  func testServerWaitPollsWaitForTheClock() async throws {
    let client = try flakyClient()
    _ = try await client.perform(.listDatabases())
    let checks = Locked(0)
    let outcome = Locked<Result<Never?, MilvexError>?>(nil)
    try await loop.submit {
      let machine = ServerWaitMachine<Never>(
        what: "the test's condition", timeout: .seconds(86_400), firstDelay: .seconds(90),
        maxDelay: .seconds(90))
      let plan = ServerWaitPlan<Never>(machine: machine) { wait, timeout in
        wait.perform(.listDatabases(), timeout: timeout) { result in
          let count = checks.withLock {
            $0 += 1; return $0
          }
          switch result {
          case .failure(let error): wait.answer(.failed(error))
          case .success: wait.answer(count >= 3 ? .finished(nil) : .pending(nil))
          }
        }
      }
      client.startWaitOnLoop(
        plan, startedAt: client.connection.loop.now,
        cancellation: CallCancellation(loop: client.connection.loop), progress: nil
      ) { result in outcome.withLock { $0 = result } }
    }
    try await eventually("the first check") {
      let checked = checks.withLock { $0 } == 1
      let pending = try await pendingDelays()
      return checked && pending.contains(.seconds(90))
    }
    try await loop.advanceTime(by: .seconds(89))
    await settle()
    XCTAssertEqual(checks.withLock { $0 }, 1)
    try await loop.advanceTime(by: .seconds(1))
    try await eventually("the second check") {
      let checked = checks.withLock { $0 } == 2
      let pending = try await pendingDelays()
      return checked && pending.contains(.seconds(90))
    }
    XCTAssertNil(outcome.withLock { $0 })
    try await loop.advanceTime(by: .seconds(90))
    try await eventually("the wait finished") { outcome.withLock { $0 } != nil }
    guard case .success? = outcome.withLock({ $0 }) else {
      return XCTFail("\(String(describing: outcome.withLock { $0 }))")
    }
    XCTAssertEqual(checks.withLock { $0 }, 3)
  }
}

/// The outcome of `body` as a value (its errors are ``MilvexError``s).
private func outcome<T: Sendable>(
  _ body: @Sendable () async throws -> T
) async -> Result<T, MilvexError> {
  do {
    return .success(try await body())
  } catch {
    return .failure(error as? MilvexError ?? .protocolViolation("\(error)"))
  }
}

/// A set-up step that counts the channels it set up and the health probes it answered
/// (always healthy).
private final class CountingSetup: ChannelSetup, @unchecked Sendable {
  // @unchecked Sendable: the counters are locks.
  let setUps = Locked(0)
  let probes = Locked(0)

  func setUp(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (ChannelSetupOutcome<Void>) -> Void
  ) {
    setUps.withLock { $0 += 1 }
    completion(.ready(()))
  }

  func defaultMetadata(config: ConnectionConfig, session: Void?) -> GRPCMetadata {
    GRPCMetadata()
  }

  func probe(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (String?) -> Void
  ) {
    probes.withLock { $0 += 1 }
    completion(nil)
  }
}

/// A set-up step whose handshake call the echo peer never answers.
private final class NeverAnsweredSetup: ChannelSetup, @unchecked Sendable {
  // @unchecked Sendable: the counter is a lock.
  let started = Locked(0)

  func setUp(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (ChannelSetupOutcome<Void>) -> Void
  ) {
    started.withLock { $0 += 1 }
    channel.onLoop.unary(path: "/test.Echo/Never", request: [], timeout: timeout) { result in
      switch result {
      case .success: completion(.ready(()))
      case .failure(let error): completion(.failed(reason: "handshake failed: \(error)"))
      }
    }
  }

  func defaultMetadata(config: ConnectionConfig, session: Void?) -> GRPCMetadata {
    GRPCMetadata()
  }
}
