import Logging
import XCTest

@testable import MilvexReactor

/// Issue 16, item 1, live: a host name with several addresses is several endpoints, resolved
/// by a DNS server the test controls (`Tests/Peers/dns_server.py`), each address an h2 echo
/// server listening on its own loopback address and the same port.
final class DNSEndpointTests: XCTestCase {
  private let hostName = "milvus-cluster.test"
  private var loop: EventLoop!
  private var dns: PeerProcess!
  private var cleanups: [() -> Void] = []

  override func setUpWithError() throws {
    loop = try EventLoop(threadName: "dns-endpoints")
    dns = try PeerProcess.announcing(script: "dns_server.py", arguments: [])
    cleanups.append { [dns] in dns?.stop() }
  }

  override func tearDown() {
    for cleanup in cleanups.reversed() { cleanup() }
    loop.shutdown()
  }

  /// An echo server on `host` (a loopback address), on `port` (0: any free one).
  private func echoServer(_ host: String, port: Int = 0) throws -> PeerProcess {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py",
      arguments: ["--scenario", "echo", "--host", host, "--port", "\(port)"])
    cleanups.append { server.stop() }
    return server
  }

  /// Echo servers on each of `addresses`, all on one port (the first one's free port): the
  /// servers behind one name. Returns them in order, and the port.
  private func echoServers(_ addresses: [String]) throws -> ([PeerProcess], Int) {
    let first = try echoServer(addresses[0])
    let rest = try addresses.dropFirst().map { try echoServer($0, port: first.port) }
    return ([first] + rest, first.port)
  }

  /// Makes `name` resolve to `addresses` (none: NXDOMAIN).
  private func resolve(to addresses: [String]) throws {
    try dns.command("SET \(hostName) \(addresses.isEmpty ? "-" : addresses.joined(separator: ","))")
  }

  private func start(
    port: Int, refresh: Duration, endpoints: EventRecorder<StateTransition>,
    transitions: EventRecorder<StateTransition> = EventRecorder()
  ) throws -> Connection {
    var config = try ConnectionConfig(
      host: hostName, port: port, connectTimeout: .seconds(5),
      reconnectBaseDelay: .milliseconds(50), reconnectMaxDelay: .milliseconds(200),
      allowTestingTimings: true)
    config.addressResolution = .everyAddress(refreshInterval: refresh)
    config.dnsServer = Endpoint(host: "127.0.0.1", port: dns.port)
    var logger = Logger(label: "dns-endpoints")
    logger.logLevel = .critical
    let connection = try Connection.start(config: config, on: loop, logger: logger) {
      transitions.record($0)
    }
    connection.onEndpointStateChange { endpoints.record($0) }
    cleanups.append { connection.disconnect() }
    return connection
  }

  /// The endpoint of one address of the name.
  private func endpoint(_ address: String, port: Int) -> Endpoint {
    var endpoint = Endpoint(host: hostName, port: port)
    endpoint.address = address
    return endpoint
  }

  /// Waits (on endpoint transitions, no polling) until the endpoint states are `expected`.
  private func waitForEndpoints(
    _ connection: Connection, _ recorder: EventRecorder<StateTransition>,
    _ expected: [Endpoint: ConnectivityState]
  ) async -> Bool {
    if connection.endpointStates == expected { return true }
    let found = await recorder.first(within: .seconds(15)) { _ in
      connection.endpointStates == expected
    }
    return found != nil || connection.endpointStates == expected
  }

  func testEveryAddressOfTheNameIsAnEndpointAndTakesCalls() async throws {
    let (_, port) = try echoServers(["127.0.0.2", "127.0.0.3"])
    try resolve(to: ["127.0.0.2", "127.0.0.3"])
    let endpoints = EventRecorder<StateTransition>()
    let connection = try start(port: port, refresh: .seconds(30), endpoints: endpoints)
    let up = await waitForEndpoints(
      connection, endpoints,
      [
        endpoint("127.0.0.2", port: port): .connected,
        endpoint("127.0.0.3", port: port): .connected,
      ]
    )
    XCTAssertTrue(up, "\(connection.endpointStates)")
    var served: [String] = []
    for _ in 0..<6 { served.append(try await servedBy(connection)) }
    XCTAssertEqual(Set(served), ["127.0.0.2:\(port)", "127.0.0.3:\(port)"])
    XCTAssertEqual(Set(served.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)).count, 1)

    // Each channel connects to its address and still names the host.
    let (channel, config) = try await connection.waitForChannel(timeout: .seconds(5))
    XCTAssertEqual(config.host, hostName)
    let reply = try await channel.unary(
      path: "/test.Echo/Call", request: [], metadata: GRPCMetadata([("x-echo-metadata", "1")]),
      timeout: .seconds(5))
    let headers = String(decoding: reply, as: UTF8.self)
    XCTAssertTrue(headers.contains(":authority: \(hostName):\(port)"), headers)
    XCTAssertTrue(
      endpoints.all.contains { $0.description.hasPrefix("\(hostName):\(port) (127.0.0.") },
      "transitions name the host and the address: \(endpoints.all)")
  }

  func testAddressesThatAppearJoinAndThoseThatVanishLeaveAfterTheirCalls() async throws {
    let (_, port) = try echoServers(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    try resolve(to: ["127.0.0.2", "127.0.0.3"])
    let endpoints = EventRecorder<StateTransition>()
    let connection = try start(port: port, refresh: .milliseconds(200), endpoints: endpoints)
    let (two, three, four) = (
      endpoint("127.0.0.2", port: port), endpoint("127.0.0.3", port: port),
      endpoint("127.0.0.4", port: port)
    )
    let up = await waitForEndpoints(connection, endpoints, [two: .connected, three: .connected])
    XCTAssertTrue(up, "\(connection.endpointStates)")

    // Slow calls in flight on every endpoint while 127.0.0.2 leaves the name.
    let slowCalls = (0..<4).map { _ in
      Task { try await servedBy(connection, path: "/test.Echo/Delay") }
    }
    try resolve(to: ["127.0.0.3", "127.0.0.4"])
    let moved = await waitForEndpoints(
      connection, endpoints, [three: .connected, four: .connected])
    XCTAssertTrue(moved, "\(connection.endpointStates)")
    var slowServed: Set<String> = []
    for call in slowCalls { slowServed.insert(try await call.value) }
    XCTAssertTrue(slowServed.contains("127.0.0.2:\(port)"), "\(slowServed)")
    XCTAssertTrue(
      endpoints.all.contains {
        $0.endpoint == two && $0.to == .disconnected
          && $0.reason.contains("no longer resolves to 127.0.0.2")
      }, "\(endpoints.all)")

    var served: Set<String> = []
    for _ in 0..<6 { served.insert(try await servedBy(connection)) }
    XCTAssertEqual(served, ["127.0.0.3:\(port)", "127.0.0.4:\(port)"])
    XCTAssertEqual(connection.state, .connected)
  }

  func testANameThatDoesNotResolveYetIsRetriedAndCallsWaitForIt() async throws {
    let server = try echoServer("127.0.0.2")
    try resolve(to: [])
    let transitions = EventRecorder<StateTransition>()
    let connection = try start(
      port: server.port, refresh: .seconds(30), endpoints: EventRecorder(),
      transitions: transitions)
    let expected = "could not resolve '\(hostName)'"
    let failed = await transitions.first(within: .seconds(10)) { $0.reason.contains(expected) }
    XCTAssertNotNil(failed, "\(transitions.all)")
    XCTAssertEqual(connection.state, .connecting)
    do {
      _ = try await connection.waitForChannel(timeout: .milliseconds(200))
      XCTFail("no address yet")
    } catch {
      guard case .notConnected(_, _, let lastFailure) = error else {
        return XCTFail("\(error)")
      }
      XCTAssertTrue(lastFailure?.contains(hostName) == true, "\(lastFailure ?? "nil")")
    }
    // A caller that waits is served once the name resolves.
    let waiting = Task { try await servedBy(connection) }
    try resolve(to: ["127.0.0.2"])
    let served = try await waiting.value
    XCTAssertEqual(served, "127.0.0.2:\(server.port)")
    XCTAssertEqual(connection.state, .connected)
  }

  func testAFailingEndpointMakesTheNameResolveAgainBeforeTheRefresh() async throws {
    let (servers, port) = try echoServers(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    try resolve(to: ["127.0.0.2", "127.0.0.3"])
    let endpoints = EventRecorder<StateTransition>()
    // A refresh far beyond the test: only the failure can make it resolve again.
    let connection = try start(port: port, refresh: .seconds(300), endpoints: endpoints)
    let (three, four) = (endpoint("127.0.0.3", port: port), endpoint("127.0.0.4", port: port))
    let up = await waitForEndpoints(
      connection, endpoints, [endpoint("127.0.0.2", port: port): .connected, three: .connected])
    XCTAssertTrue(up, "\(connection.endpointStates)")
    let queriesBefore = try XCTUnwrap(Int(dns.query("COUNT \(hostName)")))

    // The proxy at 127.0.0.2 is replaced by one at 127.0.0.4.
    try resolve(to: ["127.0.0.3", "127.0.0.4"])
    servers[0].stop()
    let replaced = await waitForEndpoints(
      connection, endpoints, [three: .connected, four: .connected])
    XCTAssertTrue(replaced, "\(connection.endpointStates) after \(endpoints.all)")
    let queriesAfter = try XCTUnwrap(Int(dns.query("COUNT \(hostName)")))
    XCTAssertGreaterThan(queriesAfter, queriesBefore)
    XCTAssertEqual(connection.state, .connected)
  }

  func testDisconnectingWhileTheNameIsUnresolvedEndsEverything() async throws {
    try resolve(to: [])
    let transitions = EventRecorder<StateTransition>()
    let connection = try start(
      port: freeLocalPort(), refresh: .seconds(30), endpoints: EventRecorder(),
      transitions: transitions)
    let waiting = Task { try await connection.waitForChannel(timeout: .seconds(20)) }
    _ = await transitions.first(within: .seconds(10)) { $0.reason.contains("could not resolve") }
    let started = ContinuousClock.now
    await connection.disconnect()
    do {
      _ = try await waiting.value
      XCTFail("the connection ended")
    } catch {
      guard case .disconnected = error as? MilvexError else { return XCTFail("\(error)") }
    }
    XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
    let ended = await transitions.first(within: .seconds(5)) { $0.to == .disconnected }
    XCTAssertNotNil(ended)
    XCTAssertEqual(connection.state, .disconnected)
  }
}

/// The server (`address:port`) that answered one call.
private func servedBy(_ connection: Connection, path: String = "/test.Echo/Call") async throws
  -> String
{
  let (channel, _) = try await connection.waitForChannel(timeout: .seconds(10))
  let reply = try await channel.unary(
    path: path, request: [], metadata: GRPCMetadata([("x-echo-served-by", "1")]),
    timeout: .seconds(5))
  return String(decoding: reply, as: UTF8.self)
}

/// Issue 16, item 1: the settings of name expansion, and where a member's channels connect.
final class AddressResolutionConfigTests: XCTestCase {
  func testTheSettingsAreValidated() async throws {
    var config = try ConnectionConfig(host: "milvus.example")
    config.addressResolution = .everyAddress(refreshInterval: .milliseconds(10))
    await assertMilvexError({ [config] in try config.validate() }) { error in
      guard case .invalidArgument(let field, _) = error else { return false }
      return field == "addressResolution.refreshInterval"
    }
    config.addressResolution = .everyAddress(refreshInterval: .seconds(30))
    XCTAssertNoThrow(try config.validate())
    config.dnsServer = Endpoint(host: "dns.example", port: 53)
    await assertMilvexError({ [config] in try config.validate() }) { error in
      guard case .invalidArgument(let field, let message) = error else { return false }
      return field == "dnsServer" && message.contains("not a host name")
    }
    config.dnsServer = Endpoint(host: "::1", port: 5353)
    XCTAssertNoThrow(try config.validate())
    XCTAssertEqual(config.nameServers, "[::1]:5353")
    XCTAssertTrue(
      config.description.contains("addressResolution: every_address (refresh 30000 ms)"))
    var pinned = Endpoint(host: "10.0.0.1", port: 19530)
    pinned.address = "10.0.0.1"
    config.additionalEndpoints = [pinned]
    await assertMilvexError({ [config] in try config.validate() }) { error in
      guard case .invalidArgument(let field, _) = error else { return false }
      return field == "additionalEndpoints[0].address"
    }
  }

  func testAMemberConnectsToItsAddressAndKeepsTheHostNameForTLS() throws {
    var config = try ConnectionConfig(host: "milvus.example", ssl: true)
    config.dnsServer = Endpoint(host: "127.0.0.1", port: 5353)
    let address = try XCTUnwrap(SocketAddress(ipLiteral: "10.0.0.7", port: 443))
    let member = config.forEndpoint(Endpoint(host: "milvus.example", port: 443), at: address)
    let channel = ConnectionDriver.channelConfiguration(for: member, logger: Logger(label: "t"))
    XCTAssertEqual(channel.host, "milvus.example", "TLS verifies and sends SNI for the name")
    XCTAssertEqual(channel.effectiveAuthority, "milvus.example:443")
    XCTAssertEqual(channel.connectAddress, "10.0.0.7")
    XCTAssertEqual(channel.nameServers, "127.0.0.1:5353")
    XCTAssertEqual(address.ipText, "10.0.0.7")
    XCTAssertEqual(SocketAddress(ipLiteral: "fd00::7", port: 1)?.ipText, "fd00::7")
  }
}
