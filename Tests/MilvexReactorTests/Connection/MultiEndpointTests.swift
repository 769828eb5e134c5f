import Logging
import XCTest

@testable import MilvexReactor

/// Issue 16, item 1: the pure balancer (aggregate state, round-robin, pick-first, health).
final class EndpointBalancerTests: XCTestCase {
  func testTheAggregateStateFollowsTheEndpoints() {
    var balancer = EndpointBalancer(endpoints: 3, policy: .roundRobin)
    XCTAssertEqual(balancer.aggregate, .connecting)
    XCTAssertNil(balancer.endpoint(0, changedTo: .connecting), "an attempt failed: no change")
    XCTAssertEqual(balancer.endpoint(1, changedTo: .connected), .connected)
    XCTAssertNil(balancer.endpoint(0, changedTo: .connected), "still connected")
    XCTAssertNil(balancer.endpoint(1, changedTo: .reconnecting), "one endpoint is left")
    XCTAssertEqual(balancer.endpoint(0, changedTo: .reconnecting), .reconnecting)
    XCTAssertEqual(balancer.endpoint(2, changedTo: .connected), .connected)
    XCTAssertEqual(balancer.endpoint(2, changedTo: .disconnected), .reconnecting)
    XCTAssertNil(balancer.endpoint(0, changedTo: .disconnected))
    XCTAssertEqual(balancer.endpoint(1, changedTo: .disconnected), .disconnected)
  }

  func testRoundRobinTakesTheReadyEndpointsInTurn() {
    var balancer = EndpointBalancer(endpoints: 3, policy: .roundRobin)
    XCTAssertNil(balancer.pick(), "nothing is ready")
    _ = balancer.endpoint(0, changedTo: .connected)
    _ = balancer.endpoint(2, changedTo: .connected)
    XCTAssertEqual((0..<6).map { _ in balancer.pick() }, [0, 2, 0, 2, 0, 2])
    _ = balancer.endpoint(1, changedTo: .connected)
    XCTAssertEqual((0..<6).map { _ in balancer.pick() }, [0, 1, 2, 0, 1, 2])
    _ = balancer.endpoint(0, changedTo: .reconnecting)
    XCTAssertEqual((0..<4).map { _ in balancer.pick() }, [1, 2, 1, 2])
  }

  func testPickFirstUsesTheFirstReadyEndpointInOrder() {
    var balancer = EndpointBalancer(endpoints: 3, policy: .pickFirst)
    _ = balancer.endpoint(2, changedTo: .connected)
    _ = balancer.endpoint(1, changedTo: .connected)
    XCTAssertEqual((0..<3).map { _ in balancer.pick() }, [1, 1, 1])
    _ = balancer.endpoint(0, changedTo: .connected)
    XCTAssertEqual(balancer.pick(), 0, "back to the first as soon as it is ready")
    _ = balancer.endpoint(0, changedTo: .reconnecting)
    XCTAssertEqual(balancer.pick(), 1)
  }

  func testAnUnhealthyEndpointLeavesTheRotationUnlessItIsTheLastOne() {
    var balancer = EndpointBalancer(endpoints: 2, policy: .roundRobin)
    _ = balancer.endpoint(0, changedTo: .connected)
    _ = balancer.endpoint(1, changedTo: .connected)
    balancer.endpoint(0, isHealthy: false)
    XCTAssertEqual((0..<3).map { _ in balancer.pick() }, [1, 1, 1])
    balancer.endpoint(1, isHealthy: false)
    XCTAssertNotNil(balancer.pick(), "every connected endpoint unhealthy: use one anyway")
    balancer.endpoint(0, isHealthy: true)
    XCTAssertEqual((0..<2).map { _ in balancer.pick() }, [0, 0])
  }
}

/// How one call of `testAnEndpointKilledUnderConcurrentCallsLosesNoCall` ended.
private struct CallOutcome: Sendable, CustomStringConvertible {
  /// Whether the call was made after the connection had seen the endpoint die.
  let afterKill: Bool
  /// The endpoint that served it, if it got that far.
  let port: Int?
  let error: MilvexError?

  var description: String { "\(port.map(String.init) ?? "-") \(error.map { "\($0)" } ?? "ok")" }
}

/// One 200 ms echo call on the endpoint the policy picks.
private func delayedCall(_ connection: Connection, afterKill: Bool) async -> CallOutcome {
  var port: Int?
  do {
    let (channel, config) = try await connection.waitForChannel(timeout: .seconds(10))
    port = config.port
    _ = try await channel.unary(path: "/test.Echo/Delay", request: [7], timeout: .seconds(5))
    return CallOutcome(afterKill: afterKill, port: port, error: nil)
  } catch {
    return CallOutcome(afterKill: afterKill, port: port, error: error)
  }
}

/// Issue 16, item 1, live: one connection to several h2 echo servers.
final class MultiEndpointConnectionTests: XCTestCase {
  private var loop: EventLoop!
  private var cleanups: [() -> Void] = []

  override func setUpWithError() throws { loop = try EventLoop(threadName: "multi-endpoint") }

  override func tearDown() {
    for cleanup in cleanups.reversed() { cleanup() }
    loop.shutdown()
  }

  private func echoServer(port: Int = 0) throws -> PeerProcess {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "echo", "--port", "\(port)"])
    cleanups.append { server.stop() }
    return server
  }

  private func start(
    ports: [Int], policy: LoadBalancingPolicy, transitions: EventRecorder<StateTransition>,
    endpointTransitions: EventRecorder<StateTransition>
  ) throws -> Connection {
    var config = try ConnectionConfig(
      host: "127.0.0.1", port: ports[0], connectTimeout: .seconds(5),
      reconnectBaseDelay: .milliseconds(50), reconnectMaxDelay: .milliseconds(200),
      allowTestingTimings: true)
    config.additionalEndpoints = ports.dropFirst().map { Endpoint(host: "127.0.0.1", port: $0) }
    config.loadBalancing = policy
    var logger = Logger(label: "multi-endpoint")
    logger.logLevel = .critical
    let connection = try Connection.start(config: config, on: loop, logger: logger) {
      transitions.record($0)
    }
    connection.onEndpointStateChange { endpointTransitions.record($0) }
    cleanups.append { connection.disconnect() }
    return connection
  }

  /// The port of the endpoint that served one call (the request's `:authority`).
  private func servedBy(_ connection: Connection) async throws -> Int {
    let (channel, config) = try await connection.waitForChannel(timeout: .seconds(10))
    let reply = try await channel.unary(
      path: "/test.Echo/Call", request: [],
      metadata: GRPCMetadata([("x-echo-metadata", "1")]), timeout: .seconds(5))
    let headers = String(decoding: reply, as: UTF8.self)
    XCTAssertTrue(headers.contains(":authority: 127.0.0.1:\(config.port)"), headers)
    return config.port
  }

  /// Waits until endpoint `port` made a transition matching `matches`, or (for one made
  /// before the recorder was attached) is already in the state it leads to.
  private func waitFor(
    _ connection: Connection, _ recorder: EventRecorder<StateTransition>, port: Int,
    now state: ConnectivityState? = nil,
    _ matches: @escaping @Sendable (StateTransition) -> Bool
  ) async -> Bool {
    if let state, connection.endpointStates[Endpoint(host: "127.0.0.1", port: port)] == state {
      return true
    }
    let found = await recorder.first(within: .seconds(10)) {
      $0.endpoint?.port == port && matches($0)
    }
    return found != nil
  }

  func testRoundRobinSpreadsCallsAndFailsOverWhileAnEndpointIsDown() async throws {
    let first = try echoServer()
    let second = try echoServer()
    let transitions = EventRecorder<StateTransition>()
    let endpoints = EventRecorder<StateTransition>()
    let connection = try start(
      ports: [first.port, second.port], policy: .roundRobin, transitions: transitions,
      endpointTransitions: endpoints)
    let bothUp = await waitFor(connection, endpoints, port: first.port, now: .connected) {
      $0.to == .connected
    }
    let secondUp = await waitFor(connection, endpoints, port: second.port, now: .connected) {
      $0.to == .connected
    }
    XCTAssertTrue(bothUp && secondUp, "\(connection.endpointStates)")
    var served: [Int] = []
    for _ in 0..<6 { served.append(try await servedBy(connection)) }
    XCTAssertEqual(Set(served), [first.port, second.port], "both endpoints serve")
    XCTAssertTrue(zip(served, served.dropFirst()).allSatisfy { $0 != $1 }, "in turn: \(served)")

    // The first endpoint dies: the connection stays connected and every call goes to the other.
    let firstPort = first.port
    first.stop()
    let firstDown = await waitFor(connection, endpoints, port: firstPort) {
      $0.to == .reconnecting
    }
    XCTAssertTrue(firstDown, "\(connection.endpointStates)")
    XCTAssertEqual(connection.state, .connected)
    for _ in 0..<4 {
      let port = try await servedBy(connection)
      XCTAssertEqual(port, second.port)
    }
    XCTAssertFalse(
      transitions.all.contains { $0.to != .connected && $0.from == .connected },
      "the connection as a whole never left connected: \(transitions.all)")

    // Back on its port: back in rotation.
    _ = try echoServer(port: firstPort)
    let firstBack = await waitFor(connection, endpoints, port: firstPort) {
      $0.from == .reconnecting && $0.to == .connected
    }
    XCTAssertTrue(firstBack, "\(endpoints.all)")
    var after: Set<Int> = []
    for _ in 0..<4 { after.insert(try await servedBy(connection)) }
    XCTAssertEqual(after, [firstPort, second.port])
    XCTAssertTrue(
      endpoints.all.contains { $0.endpoint?.port == firstPort && $0.to == .reconnecting },
      "per-endpoint transitions name the endpoint: \(endpoints.all)")
  }

  /// Waits until every endpoint in `ports` is connected.
  private func waitAllConnected(
    _ connection: Connection, _ recorder: EventRecorder<StateTransition>, ports: [Int]
  ) async -> Bool {
    for port in ports {
      let up = await waitFor(connection, recorder, port: port, now: .connected) {
        $0.to == .connected
      }
      if !up { return false }
    }
    return true
  }

  /// Three echo servers and a round-robin connection to them, once every endpoint is connected.
  private func threeConnectedEndpoints() async throws -> (
    servers: [PeerProcess], ports: [Int], connection: Connection,
    endpoints: EventRecorder<StateTransition>
  ) {
    let servers = try (0..<3).map { _ in try echoServer() }
    let ports = servers.map(\.port)
    let endpoints = EventRecorder<StateTransition>()
    let connection = try start(
      ports: ports, policy: .roundRobin, transitions: EventRecorder(),
      endpointTransitions: endpoints)
    let up = await waitAllConnected(connection, endpoints, ports: ports)
    XCTAssertTrue(up, "\(connection.endpointStates)")
    return (servers, ports, connection, endpoints)
  }

  func testRoundRobinSpreadsCallsEvenlyOverThreeReadyEndpoints() async throws {
    let (_, ports, connection, _) = try await threeConnectedEndpoints()
    var served: [Int] = []
    for _ in 0..<30 { served.append(try await servedBy(connection)) }
    for port in ports {
      XCTAssertEqual(served.filter { $0 == port }.count, 10, "an even share: \(served)")
    }
    XCTAssertTrue(
      zip(served, served.dropFirst(3)).allSatisfy { $0 == $1 }, "a fixed turn: \(served)")
  }

  func testAnEndpointKilledUnderConcurrentCallsLosesNoCall() async throws {
    let (servers, ports, connection, endpoints) = try await threeConnectedEndpoints()

    // 12 callers, 15 slow calls (200 ms) each, one after another; the first endpoint is
    // killed while calls are in flight on every endpoint.
    let killed = ports[0]
    let killNoticed = Locked(false)
    let outcomes = Locked<[Int: CallOutcome]>([:])
    let completed = EventRecorder<Int>()
    let callers = (0..<12).map { caller in
      Task {
        for round in 0..<15 {
          let id = caller * 100 + round
          let afterKill = killNoticed.withLock { $0 }
          let outcome = await delayedCall(connection, afterKill: afterKill)
          let count = outcomes.withLock { all in
            XCTAssertNil(all[id], "call \(id) completed twice")
            all[id] = outcome
            return all.count
          }
          completed.record(count)
        }
      }
    }
    let started = await completed.first(within: .seconds(10)) { $0 >= 24 }
    XCTAssertNotNil(started)
    servers[0].stop()
    let down = await endpoints.first(within: .seconds(10)) {
      $0.endpoint?.port == killed && $0.to == .reconnecting
    }
    XCTAssertNotNil(down)
    killNoticed.withLock { $0 = true }
    for caller in callers { await caller.value }

    let all = outcomes.withLock { $0 }
    XCTAssertEqual(all.count, 12 * 15, "every call completed, exactly once")
    let failed = all.values.filter { $0.error != nil }
    XCTAssertTrue(
      failed.allSatisfy { $0.error?.isRetriable == true && !$0.afterKill },
      "only calls made before the kill was noticed may fail, retriably: \(failed)")
    XCTAssertFalse(failed.isEmpty, "the premise: the kill caught calls in flight on it")
    let after = all.values.filter(\.afterKill)
    XCTAssertFalse(after.isEmpty)
    XCTAssertTrue(
      after.allSatisfy { $0.error == nil && $0.port != killed },
      "calls after the kill succeed on the others: \(after.filter { $0.error != nil })")
    XCTAssertEqual(connection.state, .connected)
  }

  func testAllEndpointsDownThenOneBackServesTheWaitingCall() async throws {
    let first = try echoServer()
    let second = try echoServer()
    let (firstPort, secondPort) = (first.port, second.port)
    let transitions = EventRecorder<StateTransition>()
    let endpoints = EventRecorder<StateTransition>()
    let connection = try start(
      ports: [firstPort, secondPort], policy: .roundRobin, transitions: transitions,
      endpointTransitions: endpoints)
    let up = await waitAllConnected(connection, endpoints, ports: [firstPort, secondPort])
    XCTAssertTrue(up)
    first.stop()
    second.stop()
    let allDown = await transitions.first(within: .seconds(10)) { $0.to == .reconnecting }
    XCTAssertNotNil(allDown, "\(transitions.all)")
    XCTAssertEqual(connection.state, .reconnecting)

    let waiting = Task { try await connection.waitForChannel(timeout: .seconds(15)) }
    _ = try echoServer(port: secondPort)
    let (channel, config) = try await waiting.value
    XCTAssertEqual(config.port, secondPort, "the endpoint that came back serves")
    _ = try await channel.unary(path: "/test.Echo/Call", request: [1], timeout: .seconds(5))
    XCTAssertEqual(connection.state, .connected)
    XCTAssertNotEqual(
      connection.endpointStates[Endpoint(host: "127.0.0.1", port: firstPort)], .connected)
  }

  func testPickFirstUsesTheFirstEndpointWhileItIsReady() async throws {
    let first = try echoServer()
    let second = try echoServer()
    let endpoints = EventRecorder<StateTransition>()
    let connection = try start(
      ports: [first.port, second.port], policy: .pickFirst,
      transitions: EventRecorder(), endpointTransitions: endpoints)
    let firstUp = await waitFor(connection, endpoints, port: first.port, now: .connected) {
      $0.to == .connected
    }
    let secondUp = await waitFor(connection, endpoints, port: second.port, now: .connected) {
      $0.to == .connected
    }
    XCTAssertTrue(firstUp && secondUp)
    for _ in 0..<4 {
      let port = try await servedBy(connection)
      XCTAssertEqual(port, first.port)
    }
    first.stop()
    let firstDown = await waitFor(connection, endpoints, port: first.port) {
      $0.to == .reconnecting
    }
    XCTAssertTrue(firstDown)
    let port = try await servedBy(connection)
    XCTAssertEqual(port, second.port)
  }

  func testACallWaitsForTheFirstEndpointToConnect() async throws {
    let downPort = freeLocalPort()
    let server = try echoServer()
    let connection = try start(
      ports: [downPort, server.port], policy: .roundRobin,
      transitions: EventRecorder(), endpointTransitions: EventRecorder())
    // Whichever connects first serves; the endpoint that never answers is skipped.
    for _ in 0..<3 {
      let port = try await servedBy(connection)
      XCTAssertEqual(port, server.port)
    }
    XCTAssertNotEqual(
      connection.endpointStates[Endpoint(host: "127.0.0.1", port: downPort)], .connected)
  }

  func testSeveralURIsMakeOneConfiguration() throws {
    let config = try ConnectionConfig(uris: [
      "milvus://root:Milvus@10.0.0.1:19530/books", "milvus://root:Milvus@10.0.0.2:19531/books",
    ])
    XCTAssertEqual(
      config.endpoints,
      [Endpoint(host: "10.0.0.1", port: 19530), Endpoint(host: "10.0.0.2", port: 19531)])
    XCTAssertEqual(config.database, "books")
    XCTAssertThrowsError(
      try ConnectionConfig(uris: [
        "milvus://root:Milvus@10.0.0.1:19530/books", "milvus://root:Other@10.0.0.2:19530/books",
      ])
    ) { error in
      guard case .invalidArgument(let field, let message) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "uris[1]")
      XCTAssertFalse(message.contains("Other"), "no part of a URI is repeated")
    }
    XCTAssertThrowsError(try ConnectionConfig(uris: []))
    var twice = try ConnectionConfig(host: "10.0.0.1", port: 19530)
    twice.additionalEndpoints = [Endpoint(host: "10.0.0.1", port: 19530)]
    XCTAssertThrowsError(try twice.validate()) { error in
      guard case .invalidArgument(let field, _) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "additionalEndpoints[0]")
    }
  }
}

/// Issue 16, item 1: the health probe takes an unhealthy endpoint out of rotation.
final class EndpointHealthTests: XCTestCase {
  func testAnUnhealthyEndpointGetsNoCallsUntilItIsHealthyAgain() async throws {
    let loop = try EventLoop(threadName: "endpoint-health")
    defer { loop.shutdown() }
    let servers = try (0..<2).map { _ in try PeerProcess.misbehavingServer("echo") }
    defer { for server in servers { server.stop() } }
    let sick = Locked<Set<Int>>([])
    var config = try ConnectionConfig(
      host: "127.0.0.1", port: servers[0].port, connectTimeout: .seconds(5),
      allowTestingTimings: true)
    config.additionalEndpoints = [Endpoint(host: "127.0.0.1", port: servers[1].port)]
    config.healthCheckInterval = .milliseconds(30)
    var logger = Logger(label: "endpoint-health")
    logger.logLevel = .critical
    let connection = try Connection.start(
      config: config, on: loop, setup: ProbedSetup(sick: sick), logger: logger)
    defer { connection.disconnect() }
    let endpoints = EventRecorder<StateTransition>()
    connection.onEndpointStateChange { endpoints.record($0) }
    func served() async throws -> Int {
      let (channel, used) = try await connection.waitForChannel(timeout: .seconds(10))
      _ = try await channel.unary(path: "/test.Echo/Call", request: [], timeout: .seconds(5))
      return used.port
    }
    // Both serve while healthy (the second may still be connecting at first).
    var ports: Set<Int> = []
    for _ in 0..<40 where ports.count < 2 { ports.insert(try await served()) }
    XCTAssertEqual(ports, Set(servers.map(\.port)))

    sick.withLock { $0 = [servers[0].port] }
    let out = await endpoints.first(within: .seconds(5)) {
      $0.endpoint?.port == servers[0].port && $0.reason.contains("health check failed")
    }
    XCTAssertNotNil(out, "\(endpoints.all)")
    for _ in 0..<6 {
      let port = try await served()
      XCTAssertEqual(port, servers[1].port, "the unhealthy endpoint gets no calls")
    }
    XCTAssertEqual(
      connection.endpointStates[Endpoint(host: "127.0.0.1", port: servers[0].port)],
      .connected, "its channel stays open")

    sick.withLock { $0 = [] }
    let back = await endpoints.first(within: .seconds(5)) {
      $0.endpoint?.port == servers[0].port && $0.reason.contains("back in rotation")
    }
    XCTAssertNotNil(back, "\(endpoints.all)")
    ports = []
    for _ in 0..<6 { ports.insert(try await served()) }
    XCTAssertEqual(ports, Set(servers.map(\.port)))
  }
}

/// A set-up step whose probe reports the endpoints in `sick` unhealthy.
private struct ProbedSetup: ChannelSetup {
  let sick: Locked<Set<Int>>

  func setUp(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (ChannelSetupOutcome<Void>) -> Void
  ) {
    completion(.ready(()))
  }

  func defaultMetadata(config: ConnectionConfig, session: Void?) -> GRPCMetadata {
    GRPCMetadata()
  }

  func probe(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (String?) -> Void
  ) {
    completion(sick.withLock { $0.contains(config.port) } ? "marked sick by the test" : nil)
  }
}
