import Foundation
import XCTest

@testable import MilvexReactor

/// What a connection leaves behind: after it disconnected (by the application, by the loop's
/// shutdown, or by its last reference going away) no driver, channel or observer outlives it,
/// even while the application still holds the `Connection`.
final class ConnectionLeakTests: XCTestCase {
  private static let count = 200

  /// A port nothing listens on: every attempt is refused and the connections keep retrying.
  private func refusedConfig() throws -> ConnectionConfig {
    try ConnectionConfig(host: "127.0.0.1", port: freeLocalPort())
  }

  func testSynchronousDisconnectThenShutdownReleasesEveryDriver() throws {
    let loop = try EventLoop(threadName: "leak-test")
    var connections = try (0..<Self.count).map { _ in
      try Connection.start(config: refusedConfig(), on: loop)
    }
    let drivers = try liveDrivers(of: connections, on: loop)
    let handles = WeakReferences(connections)

    for connection in connections { connection.disconnect() }
    loop.shutdown()

    XCTAssertEqual(drivers.alive, 0, "a disconnected connection that is still held keeps no driver")
    XCTAssertTrue(connections.allSatisfy { $0.state == .disconnected })
    connections = []
    XCTAssertEqual(handles.alive, 0, "nothing else holds a disconnected connection")
  }

  func testAwaitedDisconnectReleasesEveryDriverOfConnectedConnections() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "echo"])
    defer { server.stop() }
    let loop = try EventLoop(threadName: "leak-test")
    defer { loop.shutdown() }
    let config = try ConnectionConfig(host: "127.0.0.1", port: server.port)
    let handles = try await connectAndDisconnect(20, config: config, on: loop)
    XCTAssertEqual(handles.alive, 0)
  }

  /// Connects `count` connections, disconnects them (awaited), checks their drivers are gone
  /// while the connections are still held, and returns weak references to the connections.
  private func connectAndDisconnect(
    _ count: Int, config: ConnectionConfig, on loop: EventLoop
  ) async throws -> WeakReferences<Connection> {
    let connections = try (0..<count).map { _ in try Connection.start(config: config, on: loop) }
    for connection in connections { _ = try await connection.waitForChannel(timeout: .seconds(10)) }
    let drivers = try liveDrivers(of: connections, on: loop)
    for connection in connections { await connection.disconnect() }
    XCTAssertEqual(drivers.alive, 0, "a disconnected connection that is still held keeps no driver")
    // `disconnect()` resumes from inside its closure; the loop drops the closure (and the
    // connection it holds) when the batch is over, before it runs this one.
    try onLoop(loop) {}
    return WeakReferences(connections)
  }

  func testLoopShutdownWithoutDisconnectReleasesEveryDriver() throws {
    let loop = try EventLoop(threadName: "leak-test")
    let connections = try (0..<Self.count).map { _ in
      try Connection.start(config: refusedConfig(), on: loop)
    }
    let drivers = try liveDrivers(of: connections, on: loop)

    loop.shutdown()

    XCTAssertEqual(drivers.alive, 0)
    XCTAssertTrue(connections.allSatisfy { $0.state == .disconnected })
  }

  func testReleasingARunningConnectionDisconnectsIt() async throws {
    let loop = try EventLoop(threadName: "leak-test")
    defer { loop.shutdown() }
    let transitions = EventRecorder<StateTransition>()
    let drivers: WeakReferences<ConnectionDriver>
    do {
      let connection = try Connection.start(config: refusedConfig(), on: loop) {
        transitions.record($0)
      }
      drivers = try liveDrivers(of: [connection], on: loop)
    }
    let last = await transitions.first(within: .seconds(10)) { $0.to == .disconnected }
    XCTAssertEqual(last?.reason, "the Connection was released by its owner")
    try onLoop(loop) {}  // the driver is released right after it published
    XCTAssertEqual(drivers.alive, 0)
  }

  func testObserversAreReleasedAfterTheLastTransition() async throws {
    let loop = try EventLoop(threadName: "leak-test")
    defer { loop.shutdown() }
    let connection = try Connection.start(config: refusedConfig(), on: loop)
    let observed = WeakReferences<Marker>([])
    do {
      let marker = Marker()
      observed.append(marker)
      connection.onStateChange { _ in _ = marker }
    }
    var stream: AsyncStream<StateTransition>? = connection.transitions

    await connection.disconnect()

    XCTAssertEqual(observed.alive, 0, "the callback (and what it captured) is released")
    var seen: [ConnectivityState] = []
    for await transition in stream! { seen.append(transition.to) }
    XCTAssertEqual(seen.last, .disconnected, "the stream still ends with the terminal transition")
    stream = nil
    connection.onStateChange { _ in XCTFail("nothing follows the terminal transition") }
  }

  func testADisconnectedConnectionStillAnswersDisconnected() async throws {
    let loop = try EventLoop(threadName: "leak-test")
    defer { loop.shutdown() }
    let connection = try Connection.start(
      config: refusedConfig(), on: loop, name: "leak-test-answers")
    try connection.useDatabase("after")
    await connection.disconnect()

    XCTAssertNil(Connection.named("leak-test-answers"))
    for result in [
      await outcome { try await connection.channel().config },
      await outcome { try await connection.waitForChannel(timeout: .seconds(1)).config },
    ] {
      guard case .failure(MilvexError.disconnected(let reason)) = result else {
        return XCTFail("expected disconnected, got \(result)")
      }
      XCTAssertEqual(reason, "disconnected by the application")
    }
    let database = try await loop.submit { connection.onLoop.database }
    XCTAssertEqual(database, "after", "the database choice outlives the driver")
    let connected = try await connection.isConnected()
    XCTAssertFalse(connected)
  }

  // MARK: - Helpers

  /// Weak references to every connection's driver, taken on the loop once each has started.
  private func liveDrivers(of connections: [Connection], on loop: EventLoop) throws
    -> WeakReferences<ConnectionDriver>
  {
    let drivers = WeakReferences<ConnectionDriver>([])
    try onLoop(loop) {
      for connection in connections {
        if let driver = connection.driverOnLoop { drivers.append(driver) }
      }
    }
    XCTAssertEqual(drivers.count, connections.count, "every driver started")
    return drivers
  }
}

private final class Marker: Sendable {}

/// Weak references that any thread may add to and count.
private final class WeakReferences<Object: AnyObject>: @unchecked Sendable {
  // @unchecked Sendable: `boxes` is only touched under the lock.
  private struct Box { weak var object: Object? }
  private let boxes: Locked<[Box]>

  init(_ objects: [Object]) { boxes = Locked(objects.map { Box(object: $0) }) }

  func append(_ object: Object) { boxes.withLock { $0.append(Box(object: object)) } }
  var count: Int { boxes.withLock { $0.count } }
  var alive: Int { boxes.withLock { $0.filter { $0.object != nil }.count } }
}

private func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
  do { return .success(try await body()) } catch { return .failure(error) }
}
