import Logging
import XCTest

@testable import MilvexReactor

/// Issue 15, item 1: a `Connection` knows nothing of Milvus. Without a set-up step it is a
/// reconnecting gRPC connection to any gRPC server (the h2 test server, the gRPC C++ echo
/// server); with one, the step decides when a channel is ready and what metadata calls carry.
final class PlainGRPCConnectionTests: XCTestCase {
  private var loop: EventLoop!
  private var cleanups: [() -> Void] = []

  override func setUpWithError() throws { loop = try EventLoop(threadName: "plain-grpc-test") }

  override func tearDown() {
    for cleanup in cleanups.reversed() { cleanup() }
    loop.shutdown()
  }

  private var quietLogger: Logger {
    var logger = Logger(label: "plain-grpc-test")
    logger.logLevel = .critical
    return logger
  }

  private func config(port: Int, user: String? = nil, password: String? = nil) throws
    -> ConnectionConfig
  {
    try ConnectionConfig(
      host: "127.0.0.1", port: port, database: "books", user: user, password: password,
      connectTimeout: .seconds(5), reconnectBaseDelay: .milliseconds(50),
      reconnectMaxDelay: .milliseconds(200), allowTestingTimings: true)
  }

  private func start(
    _ config: ConnectionConfig, setup: (any ChannelSetup)? = nil,
    transitions: EventRecorder<StateTransition>? = nil
  ) throws -> Connection {
    let connection = try Connection.start(
      config: config, on: loop, setup: setup, logger: quietLogger
    ) { transitions?.record($0) }
    cleanups.append { connection.disconnect() }
    return connection
  }

  /// The metadata the h2 echo scenario saw on a call, one `name: value` per line.
  private func echoedHeaders(
    _ channel: GRPCChannel, _ metadata: GRPCMetadata = GRPCMetadata()
  ) async throws -> String {
    var metadata = metadata
    metadata.add("x-echo-metadata", "1")
    let reply = try await channel.unary(
      path: "/test.Echo/Call", request: [], metadata: metadata, timeout: .seconds(5))
    return String(decoding: reply, as: UTF8.self)
  }

  func testWithoutASetUpStepCallsCarryNoMilvusMetadata() async throws {
    let server = try PeerProcess.misbehavingServer("echo")
    cleanups.append { server.stop() }
    let connection = try start(config(port: server.port, user: "root", password: "Milvus"))
    XCTAssertNil(connection.setup)
    let (channel, used) = try await connection.waitForChannel(timeout: .seconds(10))
    XCTAssertEqual(used.database, "books")
    let headers = try await echoedHeaders(channel)
    XCTAssertTrue(headers.contains("x-echo-metadata: 1"), headers)
    for key in ["authorization", "dbname", "identifier"] {
      XCTAssertFalse(headers.contains("\(key):"), "no \(key) without a set-up step: \(headers)")
    }
    // The Milvus client needs Milvus's step, and says so instead of calling without it.
    XCTAssertThrowsError(try MilvusClient(connection: connection)) { error in
      guard case .invalidArgument(let field, let message) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "connection")
      XCTAssertTrue(message.contains("setup: .milvus"), message)
    }
  }

  /// A server that answers Milvus's `Connect` with a refusal: the Milvus step ends the
  /// connection, a plain connection never sends `Connect` and serves calls.
  func testAServerThatIsNotMilvusIsServedWithoutTheMilvusStep() async throws {
    let server = try PeerProcess.misbehavingServer("connect-denied")
    cleanups.append { server.stop() }
    let plain = try start(config(port: server.port))
    let (channel, _) = try await plain.waitForChannel(timeout: .seconds(10))
    let reply = try await channel.unary(path: "/any.Service/Method", request: [1, 2, 3])
    XCTAssertFalse(reply.isEmpty)
    let isConnected = try await plain.isConnected()
    XCTAssertTrue(isConnected)

    let milvus = try start(config(port: server.port), setup: .milvus)
    await assertMilvexError({ try await milvus.waitForChannel(timeout: .seconds(10)) }) {
      guard case .grpcStatus(let status) = $0 else { return false }
      return status.code == .unauthenticated
    }
    XCTAssertEqual(milvus.state, .disconnected)
  }

  /// The gRPC C++ echo server: calls, then the server killed and started again on its port,
  /// and the connection back (reconnecting → connected) serving calls.
  func testTheCppEchoServerIsServedAcrossARestart() async throws {
    var server = try PeerProcess.cppEchoServer()
    let port = server.port
    cleanups.append { server.stop() }
    let transitions = EventRecorder<StateTransition>()
    let connection = try start(config(port: port), transitions: transitions)
    let (channel, _) = try await connection.waitForChannel(timeout: .seconds(10))
    let replies = try await withThrowingTaskGroup(of: [UInt8].self) { group in
      for index in 0..<32 {
        group.addTask {
          try await channel.unary(
            path: "/bench.Echo/Call", request: Array("call \(index)".utf8), timeout: .seconds(5))
        }
      }
      return try await group.reduce(into: Set<String>()) {
        $0.insert(String(decoding: $1, as: UTF8.self))
      }
    }
    XCTAssertEqual(replies, Set((0..<32).map { "call \($0)" }))

    server.stop()
    let lost = await transitions.first(within: .seconds(10)) { $0.to == .reconnecting }
    XCTAssertNotNil(lost, "the lost channel is noticed: \(transitions.all)")
    server = try PeerProcess.cppEchoServer(port: port)
    let back = await transitions.first(within: .seconds(10)) {
      $0.from == .reconnecting && $0.to == .connected
    }
    XCTAssertNotNil(back, "reconnected: \(transitions.all)")
    let (again, _) = try await connection.waitForChannel(timeout: .seconds(10))
    XCTAssertFalse(again === channel, "a new channel replaced the lost one")
    let reply = try await again.unary(
      path: "/bench.Echo/Call", request: Array("after".utf8), timeout: .seconds(5))
    XCTAssertEqual(String(decoding: reply, as: UTF8.self), "after")
  }

  /// A step of one's own: its failure is a failed attempt (retried with backoff), its session
  /// feeds the metadata, and a database change reaches the live channel through it.
  func testAnInjectedStepDecidesReadinessAndMetadata() async throws {
    let server = try PeerProcess.misbehavingServer("echo")
    cleanups.append { server.stop() }
    let transitions = EventRecorder<StateTransition>()
    let connection = try start(
      config(port: server.port), setup: TicketSetup(failFirst: 2), transitions: transitions)
    let (channel, _) = try await connection.waitForChannel(timeout: .seconds(10))
    let failed = transitions.all.filter { $0.reason.contains("ticket office closed") }
    XCTAssertEqual(failed.count, 2, "two failed attempts published: \(transitions.all)")
    var headers = try await echoedHeaders(channel)
    XCTAssertTrue(headers.contains("x-ticket: 3"), headers)
    XCTAssertTrue(headers.contains("x-database: books"), headers)

    try connection.useDatabase("films")
    headers = try await echoedHeaders(channel)
    XCTAssertTrue(headers.contains("x-database: films"), headers)
    XCTAssertTrue(headers.contains("x-ticket: 3"), headers)
  }

  func testAStepThatRefusesEndsTheConnection() async throws {
    let server = try PeerProcess.misbehavingServer("echo")
    cleanups.append { server.stop() }
    let connection = try start(config(port: server.port), setup: TicketSetup(refuse: true))
    await assertMilvexError({ try await connection.waitForChannel(timeout: .seconds(10)) }) {
      guard case .invalidArgument(let field, _) = $0 else { return false }
      return field == "ticket"
    }
    XCTAssertEqual(connection.state, .disconnected)
  }
}

/// A test step: fails its first `failFirst` attempts, then is ready with the attempt number as
/// its session (sent as `x-ticket`), or refuses for good.
private final class TicketSetup: ChannelSetup, @unchecked Sendable {
  // @unchecked Sendable: `attempts` is touched on the loop thread only.
  private let failFirst: Int
  private let refuse: Bool
  private var attempts = 0

  init(failFirst: Int = 0, refuse: Bool = false) {
    self.failFirst = failFirst
    self.refuse = refuse
  }

  func setUp(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (ChannelSetupOutcome<Int>) -> Void
  ) {
    channel.loop.assertInLoopThread()
    attempts += 1
    if refuse {
      let error = MilvexError.invalidArgument(field: "ticket", message: "no tickets for you")
      return completion(.refused(error, reason: "no tickets for you"))
    }
    if attempts <= failFirst { return completion(.failed(reason: "ticket office closed")) }
    completion(.ready(attempts))
  }

  func defaultMetadata(config: ConnectionConfig, session ticket: Int?) -> GRPCMetadata {
    var metadata = GRPCMetadata([("x-database", config.database)])
    if let ticket { metadata.add("x-ticket", "\(ticket)") }
    return metadata
  }
}
