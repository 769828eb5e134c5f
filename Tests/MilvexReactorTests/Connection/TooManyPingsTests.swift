import Foundation
import Logging
import MilvexTesting
import XCTest

@testable import MilvexReactor

/// Issue 10, defect 3: after GOAWAY ENHANCE_YOUR_CALM "too_many_pings" the very next
/// connection already pings at twice the interval (grpc `doc/keepalive.md`), although the
/// replacement starts on the GOAWAY, long before the old connection closes.
///
/// On virtual time (issue 23): each PING is checked at its exact instant on the loop's clock
/// (none a millisecond before, one at it), instead of spacings of the peer's arrival times
/// against tolerances. The peer's 1.5 s before it closes the first connection stays real, so
/// the replacement still overlaps it.
final class TooManyPingsTests: XCTestCase {
  func testTheNextConnectionPingsHalfAsOften() async throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "calm-pings"])
    defer { server.stop() }
    // The connection number of each `PING <connection> <seconds>` line, read off the peer's
    // stdout on a thread of its own.
    let pings = Locked<[Int]>([])
    Thread.detachNewThread {
      while let line = try? server.readLine() {
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "PING", let connection = Int(parts[1]) else {
          continue
        }
        pings.withLock { $0.append(connection) }
      }
    }
    func pingCount(_ connection: Int) -> Int {
      pings.withLock { $0.filter { $0 == connection } }.count
    }

    let loop = try EventLoop.virtualTime(threadName: "calm-test")
    defer { loop.shutdown() }
    var logger = Logger(label: "calm-test")
    logger.logLevel = .error
    let config = try ConnectionConfig(
      host: "127.0.0.1", port: server.port, reconnectBaseDelay: .milliseconds(50),
      keepaliveTime: .milliseconds(300), keepaliveTimeout: .seconds(2), allowTestingTimings: true)
    let transitions = EventRecorder<StateTransition>()
    let connection = try Connection.start(config: config, on: loop, logger: logger) {
      transitions.record($0)
    }
    defer { connection.disconnect() }
    try await connection.waitForState(.connected)

    /// Advances to 1 ms before `interval` (no PING on `number` may arrive), then by `rest` (one
    /// PING must), and waits for the peer to see it.
    func expectPing(
      on number: Int, after interval: Duration, within rest: Duration = .milliseconds(1),
      _ what: String
    ) async throws {
      let before = pingCount(number)
      try await loop.advanceTime(by: interval - .milliseconds(1))
      try await Task.sleep(for: .milliseconds(200))  // a moment for a PING that must not come
      XCTAssertEqual(pingCount(number), before, "\(what): no PING before \(interval)")
      try await loop.advanceTime(by: rest)
      let arrived = await eventually { pingCount(number) == before + 1 }
      XCTAssertTrue(arrived, "\(what): a PING (\(pings.withLock { $0 }))")
    }

    /// A new connection's first PING: not before `interval` of quiet; exactly then if no byte
    /// of the handshake arrives late (a read restarts the quiet time, and the reads between
    /// advances happen at the clock's instant), so within another `interval`. The PINGs after
    /// an acknowledged one are checked exactly.
    func expectFirstPing(on number: Int, after interval: Duration, _ what: String) async throws {
      try await expectPing(on: number, after: interval, within: interval, what)
    }

    /// Whether a keepalive check is pending `interval` from now.
    func checkPending(in interval: Duration) async -> Bool {
      let now = loop.now
      return (try? await loop.pendingTimerDeadlines())?.contains(now + interval) == true
    }

    // The keepalive starts once the HTTP/2 handshake has finished (real I/O), which can be a
    // moment after the state reads connected.
    let armed = await eventually { await checkPending(in: .milliseconds(300)) }
    XCTAssertTrue(armed, "connection 1 checks its keepalive in 300 ms")
    try await expectFirstPing(on: 1, after: .milliseconds(300), "connection 1's first PING")
    // The ACK (real I/O, at the clock's instant) restarts the 300 ms of quiet.
    let acknowledged = await eventually { await checkPending(in: .milliseconds(300)) }
    XCTAssertTrue(acknowledged, "the first PING is acknowledged")
    try await expectPing(on: 1, after: .milliseconds(300), "connection 1's second PING")

    // The second PING earns GOAWAY too_many_pings; the replacement connects while the peer
    // still holds connection 1 open.
    let lost = await transitions.first(within: .seconds(10)) {
      $0.from == .connected && $0.to == .reconnecting
    }
    XCTAssertTrue(lost?.reason.contains("too_many_pings") == true, "\(String(describing: lost))")
    try await connection.waitForState(.connected)
    let armedAgain = await eventually { await checkPending(in: .milliseconds(600)) }
    XCTAssertTrue(armedAgain, "connection 2 checks its keepalive in 600 ms")

    try await expectFirstPing(on: 2, after: .milliseconds(600), "connection 2's first PING")
    let acknowledgedAgain = await eventually { await checkPending(in: .milliseconds(600)) }
    XCTAssertTrue(acknowledgedAgain, "connection 2's PING is acknowledged")
    try await expectPing(on: 2, after: .milliseconds(600), "connection 2's second PING")
    XCTAssertEqual(pingCount(1), 2, "connection 1 pinged twice before the GOAWAY")
  }
}

/// Polls `condition` (every 10 ms of wall time, for up to 10 s) while I/O brings it about.
private func eventually(_ condition: () async -> Bool) async -> Bool {
  let end = ContinuousClock.now + .seconds(10)
  while ContinuousClock.now < end {
    if await condition() { return true }
    try? await Task.sleep(for: .milliseconds(10))
  }
  return false
}
