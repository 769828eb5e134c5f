import MilvexReactor
import MilvexTesting
import XCTest

/// MilvexTesting's waits on a live connection (issue 23, item 4): for a state, for a
/// transition, each bounded by wall time and failing with words that say what was awaited.
final class ConnectionWaitsTests: XCTestCase {
  private func config(port: Int) throws -> ConnectionConfig {
    try ConnectionConfig(
      host: "127.0.0.1", port: port, connectTimeout: .milliseconds(500),
      reconnectBaseDelay: .milliseconds(50), reconnectMaxDelay: .milliseconds(200),
      reconnectJitter: 0, allowTestingTimings: true)
  }

  func testWaitsForStatesAndTransitionsAsTheServerComesAndGoes() async throws {
    let port = freeLocalPort()
    let loop = try EventLoop(threadName: "waits")
    defer { loop.shutdown() }
    let connection = try Connection.start(config: try config(port: port), on: loop, name: "waits")

    // Nobody listens: a failed attempt is a transition connecting → connecting.
    try await connection.waitForState(.connecting, timeout: .milliseconds(1))
    let failed = try await connection.waitForTransition(timeout: .seconds(10)) {
      $0.from == .connecting && $0.to == .connecting
    }
    XCTAssertTrue(failed.reason.contains("attempt"), failed.reason)

    // Waiting for a state that cannot come in time fails with the deadline and the state.
    do {
      try await connection.waitForState(.connected, timeout: .milliseconds(300))
      XCTFail("connected with no server")
    } catch let error {
      guard case .grpcStatus(let status) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(status.code, .deadlineExceeded)
      XCTAssertTrue(status.message.contains("connection 'waits' did not reach state connected"))
      XCTAssertTrue(status.message.contains("it is connecting"), status.message)
    }

    // A server on the port: the next attempt connects; the server gone, it reconnects.
    let server = try PeerProcess.cppEchoServer(port: port)
    try await connection.waitForState(.connected, timeout: .seconds(10))
    XCTAssertEqual(connection.state, .connected)
    // Already there: returns at once.
    try await connection.waitForState(.connected, timeout: .milliseconds(1))
    server.stop()
    try await connection.waitForState(.reconnecting, timeout: .seconds(10))

    // A wait that the connection's end cuts short says so.
    async let waiting: Void = connection.waitForState(.connected, timeout: .seconds(10))
    try await Task.sleep(for: .milliseconds(50))
    await connection.disconnect()
    do {
      try await waiting
      XCTFail("connected with the server gone")
    } catch let error {
      guard case .disconnected(let reason) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertTrue(reason.contains("was disconnected while waiting for state connected"), reason)
    }
    try await connection.waitForState(.disconnected, timeout: .milliseconds(1))
  }
}
