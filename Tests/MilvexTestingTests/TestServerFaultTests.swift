import Foundation
import MilvexProtos
import MilvexReactor
import MilvexTesting
import XCTest

/// Every fault control, with what a user of the real client notices.
final class TestServerFaultTests: TestServerTestCase {
  private var noRetries: MilvusCallOptions { MilvusCallOptions(retryPolicy: .never) }

  func testARefusingServerKeepsTheClientReconnectingUntilItAcceptsAgain() async throws {
    try server.start()
    let client = try client(config())
    let transitions = TransitionRecorder(client.connection)
    _ = try await client.perform(.checkHealth())

    server.stopAccepting()
    server.closeAllConnections()
    let lost = await transitions.wait { $0.from == .connected && $0.to == .reconnecting }
    XCTAssertNotNil(lost, "\(transitions.all)")
    // Attempts are refused; a call that cannot wait longer says so, retriably.
    let error = await failure { () async throws(MilvexError) in
      try await client.perform(
        .checkHealth(), options: MilvusCallOptions(timeout: .seconds(1), retryPolicy: .never))
    }
    expectNoConnection(error, because: "Connection refused")
    XCTAssertEqual(server.acceptedConnections, 1, "a refused attempt is never accepted")

    try server.resumeAccepting()
    let back = await transitions.wait { $0.to == .connected && $0.from == .reconnecting }
    XCTAssertNotNil(back, "reconnected within backoff + 10 s: \(transitions.all)")
    _ = try await client.perform(.checkHealth())
    XCTAssertEqual(server.acceptedConnections, 2)
    await client.close()
  }

  func testClosingConnectionsWithEOFFailsTheCallInFlightRetriablyAndTheClientReconnects()
    async throws
  {
    try await closeMidCall(.eof)
  }

  func testResettingConnectionsFailsTheCallInFlightRetriablyAndTheClientReconnects()
    async throws
  {
    try await closeMidCall(.reset)
  }

  private func closeMidCall(_ how: TestServerClose) async throws {
    try server.start()
    server.answer("GetVersion", with: [.never])
    let client = try client(config())
    let transitions = TransitionRecorder(client.connection)
    let options = noRetries
    let call = Task { () async -> Result<String, MilvexError> in
      do throws(MilvexError) {
        return .success(try await client.perform(.serverVersion(), options: options))
      } catch {
        return .failure(error)
      }
    }
    _ = try await server.waitForCalls(count: 1, to: "GetVersion")
    server.closeAllConnections(how)
    let result = await call.value
    guard case .failure(let error) = result else { return XCTFail("\(result)") }
    XCTAssertTrue(error.isRetriable, "\(error)")
    guard case .grpcStatus(let status) = error else { return XCTFail("\(error)") }
    XCTAssertEqual(status.code, .unavailable, "\(error)")
    // The client tells an orderly close (FIN) from an abortive one (RST).
    let words = how == .eof ? "the server closed the connection" : "the server reset the connection"
    XCTAssertTrue(status.message.contains(words), status.message)
    let lost = await transitions.wait { $0.from == .connected && $0.to == .reconnecting }
    XCTAssertNotNil(lost, "\(transitions.all)")
    // The next call goes over a new connection (the queued answer is spent: built-in now).
    let version = try await client.perform(.serverVersion())
    XCTAssertEqual(version, server.version)
    XCTAssertEqual(server.acceptedConnections, 2)
    XCTAssertEqual(server.calls(to: "GetVersion").last?.connection, 2)
    await client.close()
  }

  func testGoAwayNoErrorAnswersTheCallInFlightAndTheClientMovesToANewConnection() async throws {
    try server.start()
    server.answer("GetVersion", with: [.delayed(.milliseconds(300), then: .success)])
    let client = try client(config())
    let transitions = TransitionRecorder(client.connection)
    let options = noRetries
    let call = Task { try await client.perform(.serverVersion(), options: options) }
    _ = try await server.waitForCalls(count: 1, to: "GetVersion")
    server.goAway(.noError)
    // Graceful: the call already started is answered.
    let version = try await call.value
    XCTAssertEqual(version, "")
    let moved = await transitions.wait { $0.from == .connected && $0.to == .reconnecting }
    XCTAssertTrue(moved?.reason.contains("GOAWAY") == true, "\(transitions.all)")
    _ = try await client.perform(.serverVersion())
    XCTAssertEqual(server.calls(to: "GetVersion").last?.connection, 2)
    try await server.wait(until: "the first connection closed") { $0.openConnections == 1 }
    await client.close()
  }

  func testGoAwayTooManyPingsDoublesTheClientsKeepaliveInterval() async throws {
    try server.start()
    let config = try config {
      $0.keepaliveTime = .milliseconds(300)
      $0.keepaliveTimeout = .seconds(2)
    }
    let client = try client(config)
    let transitions = TransitionRecorder(client.connection)
    _ = try await client.perform(.checkHealth())
    try await server.wait(until: "two PINGs on connection 1") {
      $0.pings.filter { $0.connection == 1 }.count >= 2
    }
    server.goAway(.tooManyPings)
    let lost = await transitions.wait { $0.from == .connected && $0.to == .reconnecting }
    XCTAssertTrue(lost?.reason.contains("too_many_pings") == true, "\(transitions.all)")
    try await server.wait(until: "three PINGs on connection 2", timeout: .seconds(15)) {
      $0.pings.filter { $0.connection == 2 }.count >= 3
    }
    func spacings(_ connection: Int) -> [Duration] {
      let times = server.pings.filter { $0.connection == connection }.map(\.arrival)
      return zip(times.dropFirst(), times).map { $0 - $1 }
    }
    for spacing in spacings(1) {
      XCTAssertLessThan(spacing, .milliseconds(500), "connection 1 pinged every 300 ms")
    }
    for spacing in spacings(2) {
      XCTAssertGreaterThanOrEqual(
        spacing, .milliseconds(550), "connection 2 must ping every 600 ms: \(spacings(2))")
    }
    await client.close()
  }

  func testABlackholedServerMakesTheConnectTimeOutUntilItAnswersAgain() async throws {
    try server.start()
    server.blackhole(true)
    let client = try client(config { $0.connectTimeout = .milliseconds(300) })
    let transitions = TransitionRecorder(client.connection)
    let error = await failure { () async throws(MilvexError) in
      try await client.perform(
        .checkHealth(), options: MilvusCallOptions(timeout: .seconds(1), retryPolicy: .never))
    }
    expectNoConnection(
      error,
      because: "connect timeout after 0.3 seconds while waiting for the server's HTTP/2 SETTINGS")
    XCTAssertGreaterThanOrEqual(server.acceptedConnections, 2, "accepted, then tried again")
    XCTAssertEqual(server.calls.count, 0, "nothing was ever answered")
    XCTAssertNil(transitions.all.first { $0.to == .connected })

    server.blackhole(false)
    _ = try await client.perform(.checkHealth())
    XCTAssertEqual(server.calls(to: "CheckHealth").count, 1)
    await client.close()
  }

  func testLateSettingsDelayTheConnectOrExceedTheConnectTimeout() async throws {
    try server.start()
    server.settingsDelay(.milliseconds(600))
    let patient = try client(config { $0.connectTimeout = .seconds(3) })
    let took = try await Self.measure {
      _ = try await patient.perform(.checkHealth())
    }
    XCTAssertGreaterThanOrEqual(took, .milliseconds(590))
    XCTAssertLessThan(took, .seconds(5))
    XCTAssertEqual(server.acceptedConnections, 1)
    await patient.close()

    let impatient = try client(config { $0.connectTimeout = .milliseconds(200) })
    let error = await failure { () async throws(MilvexError) in
      try await impatient.perform(
        .checkHealth(), options: MilvusCallOptions(timeout: .seconds(1), retryPolicy: .never))
    }
    expectNoConnection(
      error,
      because: "connect timeout after 0.2 seconds while waiting for the server's HTTP/2 SETTINGS")
    await impatient.close()
  }

  func testRestartingOnTheSamePortLetsTheClientReconnect() async throws {
    try server.start()
    let port = server.port
    let client = try client(config())
    let transitions = TransitionRecorder(client.connection)
    _ = try await client.perform(.checkHealth())
    try server.restart(downtime: .milliseconds(300))
    XCTAssertEqual(server.port, port)
    let lost = await transitions.wait { $0.from == .connected && $0.to == .reconnecting }
    XCTAssertNotNil(lost)
    _ = try await client.perform(.checkHealth())
    XCTAssertEqual(server.acceptedConnections, 2)
    XCTAssertEqual(server.calls(to: "CheckHealth").map(\.connection), [1, 2])
    await client.close()
  }

  /// The Milvus client's words for a call that found no connection within its deadline:
  /// retriable UNAVAILABLE naming the server and the last attempt's failure.
  private func expectNoConnection(
    _ error: MilvexError?, because reason: String, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    guard case .grpcStatus(let status)? = error else {
      return XCTFail("\(String(describing: error))", file: file, line: line)
    }
    XCTAssertEqual(status.code, .unavailable, file: file, line: line)
    XCTAssertTrue(
      status.message.contains("no connection to 127.0.0.1:\(server.port)"), status.message,
      file: file, line: line)
    XCTAssertTrue(status.message.contains(reason), status.message, file: file, line: line)
    XCTAssertTrue(error?.isRetriable == true, file: file, line: line)
  }
}
