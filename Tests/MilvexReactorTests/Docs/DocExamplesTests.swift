import CLibEV
import MilvexReactor
import XCTest

/// The examples in README.md and Docs/connection.md, compiled and run against milvus-lite, so
/// the documentation cannot drift from the API. Keep them in step with the Markdown.
final class DocExamplesTests: XCTestCase {
  func testReadmeUsage() async throws {
    let server = try MilvusLite()
    defer { server.stop() }
    let seen = TransitionLog()

    // --- README.md "Usage" (the URI names the test server's port) ---
    let loop = try EventLoop(threadName: "milvus")
    let config = try ConnectionConfig(uri: "milvus://127.0.0.1:\(server.port)/default")
    let connection = try Connection.start(config: config, on: loop, name: "primary", setup: .milvus)
    {
      transition in
      print("state: \(transition)")
      seen.record(transition)
    }
    let (channel, _) = try await connection.waitForChannel(timeout: .seconds(10))
    let reply = try await channel.unary(
      path: "/milvus.proto.milvus.MilvusService/GetVersion", request: [], timeout: .seconds(5))
    await connection.disconnect()
    await Task.detached { loop.shutdown() }.value
    // --- end of the README example ---

    XCTAssertNotNil(ProtoScan.string(field: 2, in: reply))
    XCTAssertEqual(seen.states, [.connected, .disconnected])
    XCTAssertNil(Connection.named("primary"))
  }

  /// README.md's embedding example: a host-owned libev loop (the CLibEV product), the library
  /// embedded in it, a load wait in its loop-thread callback form.
  func testReadmeEmbeddingExample() async throws {
    let server = try MilvusLite()
    defer { server.stop() }
    let config = try ConnectionConfig(uri: "milvus://127.0.0.1:\(server.port)/default")
    let setupLoop = try EventLoop(threadName: "setup")
    let setup = try MilvusClient.connect(config: config, on: setupLoop)
    try await setup.perform(
      .createCollection(
        "docs", schema: CollectionSchema(fields: [.primaryKey("id"), .vector("v", dimension: 2)])))
    try await setup.perform(.createIndex(on: "docs", IndexSpec(fieldName: "v", metricType: .l2)))
    await setup.close()
    await Task.detached { setupLoop.shutdown() }.value

    // The host's watchdog: a load that never completes fails the test instead of hanging it.
    let watchdog = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
    defer { watchdog.deallocate() }
    var completions: [Result<Void, MilvexError>] = []
    var onLoopThread: [Bool] = []

    // --- README.md "Usage", a host's own libev loop ---
    let hostLoop = ev_loop_new(UInt32(EVFLAG_AUTO))!  // the host's loop, run by the host
    let loop = MilvexReactor.EventLoop(embeddingIn: hostLoop)
    let client = try MilvusClient.connect(config: config, on: loop)
    client.onLoop.loadCollection("docs", progress: { print("\($0) % loaded") }) { result in
      print("load: \(result)")  // once, on the host's loop thread
      completions.append(result)
      onLoopThread.append(loop.inLoopThread)
      client.onLoop.close()
      ev_break(hostLoop, Int32(EVBREAK_ALL))
    }
    clibev_timer_init(watchdog, { loop, _, _ in ev_break(loop, Int32(EVBREAK_ALL)) }, 60, 0)
    ev_timer_start(hostLoop, watchdog)
    ev_run(hostLoop, 0)
    // --- end of the README example ---

    ev_timer_stop(hostLoop, watchdog)
    XCTAssertEqual(completions.count, 1, "the load wait did not complete once in 60 s")
    if case .failure(let error) = completions.first { XCTFail("load failed: \(error)") }
    XCTAssertEqual(onLoopThread, [true])
    XCTAssertEqual(client.connection.state, .disconnected)
    loop.shutdown()
    ev_loop_destroy(hostLoop)
  }

  func testConnectionGuidePlainGRPCExample() async throws {
    let server = try PeerProcess.cppEchoServer()
    defer { server.stop() }
    let port = server.port

    // --- Docs/connection.md, "The set-up step" (no step: any gRPC server) ---
    let loop = try EventLoop(threadName: "grpc")
    let connection = try Connection.start(
      config: ConnectionConfig(host: "127.0.0.1", port: port), on: loop)
    let (channel, _) = try await connection.waitForChannel(timeout: .seconds(10))
    let reply = try await channel.unary(path: "/echo.Echo/Call", request: Array("hi".utf8))
    await connection.disconnect()
    // --- end of the guide example ---

    XCTAssertEqual(String(decoding: reply, as: UTF8.self), "hi")
    await Task.detached { loop.shutdown() }.value
  }

  func testConnectionGuideSeveralEndpointsExample() async throws {
    let servers = try (0..<2).map { _ in try PeerProcess.cppEchoServer() }
    defer { for server in servers { server.stop() } }
    let (first, second) = (servers[0].port, servers[1].port)
    let loop = try EventLoop(threadName: "endpoints")

    // --- Docs/connection.md, "Several endpoints, health and channel recycling" ---
    let uris = ["milvus://127.0.0.1:\(first)", "milvus://127.0.0.1:\(second)"]
    var config = try ConnectionConfig(uris: uris)
    config.loadBalancing = .roundRobin  // or .pickFirst
    config.healthCheckInterval = .seconds(5)  // the set-up step's probe; Milvus: CheckHealth
    config.maxChannelAge = .seconds(600)  // replace each channel after 10 min (±10 %)
    let connection = try Connection.start(config: config, on: loop)
    // --- end of the guide example ---

    var served: Set<Int> = []
    for _ in 0..<40 where served.count < 2 {
      let (channel, used) = try await connection.waitForChannel(timeout: .seconds(10))
      _ = try await channel.unary(path: "/echo.Echo/Call", request: [1])
      served.insert(used.port)
    }
    XCTAssertEqual(served, [first, second])
    await connection.disconnect()
    await Task.detached { loop.shutdown() }.value
  }

  func testConnectionGuideHostNameExample() async throws {
    let dns = try PeerProcess.announcing(script: "dns_server.py", arguments: [])
    defer { dns.stop() }
    let first = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "echo", "--host", "127.0.0.2"])
    defer { first.stop() }
    let port = first.port
    let second = try PeerProcess.announcing(
      script: "misbehaving_server.py",
      arguments: ["--scenario", "echo", "--host", "127.0.0.3", "--port", "\(port)"])
    defer { second.stop() }
    let proxies = "milvus-proxies.test"
    try dns.command("SET \(proxies) 127.0.0.2,127.0.0.3")
    let dnsPort = dns.port
    let loop = try EventLoop(threadName: "host-name")

    // --- Docs/connection.md, "A host name with one address per proxy" ---
    var config = try ConnectionConfig(host: proxies, port: port)  // one address per proxy
    config.addressResolution = .everyAddress(refreshInterval: .seconds(30))
    config.dnsServer = Endpoint(host: "127.0.0.1", port: dnsPort)  // optional
    let connection = try Connection.start(config: config, on: loop)
    // --- end of the guide example ---

    var served: Set<String> = []
    for _ in 0..<40 where served.count < 2 {
      let (channel, _) = try await connection.waitForChannel(timeout: .seconds(10))
      let reply = try await channel.unary(
        path: "/test.Echo/Call", request: [], metadata: GRPCMetadata([("x-echo-served-by", "1")]))
      served.insert(String(decoding: reply, as: UTF8.self))
    }
    XCTAssertEqual(served, ["127.0.0.2:\(port)", "127.0.0.3:\(port)"])
    XCTAssertEqual(connection.endpointStates.count, 2, "\(connection.endpointStates)")
    await connection.disconnect()
    await Task.detached { loop.shutdown() }.value
  }

  func testConnectionGuideExample() async throws {
    let server = try MilvusLite()
    defer { server.stop() }

    // --- Docs/connection.md (user and password are sent as authorization metadata) ---
    let loop = try EventLoop(threadName: "milvus")
    let config = try ConnectionConfig(uri: "milvus://root:Milvus@127.0.0.1:\(server.port)/default")
    let connection = try Connection.start(config: config, on: loop, name: "primary", setup: .milvus)
    {
      transition in
      print("state: \(transition)")
    }
    let (channel, usedConfig) = try await connection.waitForChannel(timeout: .seconds(10))
    await connection.disconnect()
    // --- end of the guide example ---

    XCTAssertEqual(usedConfig.user, "root")
    XCTAssertFalse("\(usedConfig)".contains("Milvus@"), "the description redacts the password")
    do {
      _ = try await channel.unary(
        path: "/milvus.proto.milvus.MilvusService/GetVersion", request: [], timeout: .seconds(2))
      XCTFail("the channel of a disconnected connection is closed")
    } catch {
      guard case .disconnected = error else { return XCTFail("\(error)") }
    }
    await Task.detached { loop.shutdown() }.value
  }
}
