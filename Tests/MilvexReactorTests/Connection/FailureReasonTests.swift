import Foundation
import Logging
import XCTest

@testable import MilvexReactor

/// Issue 10, defect 4: while a connection cannot connect, callers and observers learn why:
/// the last failure is in the `notConnected` error, and every failed attempt is published as
/// a transition (`connecting → connecting: attempt N failed: …`).
final class FailureReasonTests: XCTestCase {
  private var loop: EventLoop!
  private var cleanups: [() -> Void] = []

  override func setUpWithError() throws { loop = try EventLoop(threadName: "reason-test") }

  override func tearDown() {
    for cleanup in cleanups.reversed() { cleanup() }
    loop.shutdown()
  }

  /// Starts a connection to `port` and waits until `attempts` attempts failed; returns the
  /// error of a 300 ms wait for the channel and the failed-attempt transitions.
  private func failures(port: Int, attempts: Int = 2) async throws -> (
    MilvexError?, [StateTransition]
  ) {
    var logger = Logger(label: "reason-test")
    logger.logLevel = .error
    let config = try ConnectionConfig(
      host: "127.0.0.1", port: port, connectTimeout: .milliseconds(300),
      reconnectBaseDelay: .milliseconds(20),
      reconnectMaxDelay: .milliseconds(50), allowTestingTimings: true)
    let transitions = EventRecorder<StateTransition>()
    let connection = try Connection.start(config: config, on: loop, logger: logger) {
      transitions.record($0)
    }
    cleanups.append { connection.disconnect() }
    let enough = await transitions.first(within: .seconds(10)) {
      $0.reason.hasPrefix("attempt \(attempts) failed")
    }
    XCTAssertNotNil(enough, "\(attempts) failed attempts published: \(transitions.all)")
    var error: MilvexError?
    do {
      _ = try await connection.waitForChannel(timeout: .milliseconds(300))
    } catch let caught {
      error = caught
    }
    let failed = transitions.all.filter { $0.reason.contains("failed") }
    for transition in failed {
      XCTAssertEqual(transition.from, .connecting)
      XCTAssertEqual(transition.to, .connecting, "a failed attempt changes no state")
      XCTAssertTrue(transition.reason.contains("next attempt in"), transition.reason)
    }
    XCTAssertEqual(connection.state, .connecting)
    return (error, failed)
  }

  private func assertReason(
    _ error: MilvexError?, contains words: String, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    guard case .notConnected(_, _, let lastFailure?)? = error else {
      return XCTFail(
        "expected notConnected with a last failure, got \(String(describing: error))", file: file,
        line: line)
    }
    XCTAssertTrue(
      lastFailure.contains(words), "'\(lastFailure)' lacks '\(words)'", file: file, line: line)
    XCTAssertTrue(
      "\(error!)".contains(words), "the description carries it too: \(error!)", file: file,
      line: line)
  }

  func testRefused() async throws {
    let (error, failed) = try await failures(port: freeLocalPort())
    assertReason(error, contains: "refused")
    XCTAssertTrue(failed.first?.reason.contains("refused") == true, "\(failed)")
  }

  func testServerThatNeverSendsSettings() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "no-settings"])
    cleanups.append { server.stop() }
    let (error, _) = try await failures(port: server.port, attempts: 1)
    assertReason(error, contains: "SETTINGS")
  }

  func testServerAnsweringInHTTP1() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "garbage"])
    cleanups.append { server.stop() }
    let (error, _) = try await failures(port: server.port)
    assertReason(error, contains: "HTTP/1")
  }

  /// Wrong credentials (Milvus answers Connect with its "user hasn't authenticated" status,
  /// 1800) end the connection at once with the server's words, instead of a reconnect loop
  /// (issue 12): one transition to `disconnected`, and every caller, waiting or later, gets the
  /// non-retriable UNAUTHENTICATED at once.
  func testWrongCredentialsEndTheConnectionWithTheServersWords() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "connect-denied"])
    cleanups.append { server.stop() }
    var logger = Logger(label: "reason-test")
    logger.logLevel = .critical
    let config = try ConnectionConfig(
      host: "127.0.0.1", port: server.port, user: "root", password: "SECRET-PASSWORD",
      connectTimeout: .seconds(5), reconnectBaseDelay: .milliseconds(20),
      reconnectMaxDelay: .milliseconds(50), allowTestingTimings: true)
    let transitions = EventRecorder<StateTransition>()
    let connection = try Connection.start(
      config: config, on: loop, setup: .milvus, logger: logger
    ) {
      transitions.record($0)
    }
    cleanups.append { connection.disconnect() }
    // A caller already waiting when the refusal comes is failed by it, not by its deadline.
    let start = ContinuousClock.now
    var waited: MilvexError?
    do {
      _ = try await connection.waitForChannel(timeout: .seconds(10))
    } catch let caught {
      waited = caught
    }
    XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
    guard case .grpcStatus(let status)? = waited else {
      return XCTFail("expected UNAUTHENTICATED, got \(String(describing: waited))")
    }
    XCTAssertEqual(status.code, .unauthenticated)
    XCTAssertTrue(status.message.contains("auth check failure"), status.message)
    XCTAssertFalse(waited!.isRetriable)
    XCTAssertEqual(connection.state, .disconnected)
    let ended = await transitions.first(within: .seconds(5)) { $0.to == .disconnected }
    XCTAssertEqual(ended?.from, .connecting)
    XCTAssertTrue(ended?.reason.contains("refused the credentials") == true, "\(transitions.all)")
    XCTAssertFalse(
      transitions.all.contains { $0.reason.contains("next attempt") }, "no reconnect loop")
    for transition in transitions.all {
      XCTAssertFalse(transition.reason.contains("SECRET"), transition.reason)
    }
    // Later callers get the same answer at once.
    do {
      _ = try await connection.waitForChannel(timeout: .seconds(1))
      XCTFail("a refused connection gave a channel")
    } catch {
      guard case .grpcStatus(let again) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(again.code, .unauthenticated)
    }
  }
}
