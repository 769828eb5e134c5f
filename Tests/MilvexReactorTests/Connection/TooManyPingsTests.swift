import Foundation
import Logging
import XCTest

@testable import MilvexReactor

/// Issue 10, defect 3: after GOAWAY ENHANCE_YOUR_CALM "too_many_pings" the very next
/// connection already pings at twice the interval (grpc `doc/keepalive.md`), although the
/// replacement starts on the GOAWAY, long before the old connection closes.
final class TooManyPingsTests: XCTestCase {
  func testTheNextConnectionPingsHalfAsOften() throws {
    let server = try PeerProcess.announcing(
      script: "misbehaving_server.py", arguments: ["--scenario", "calm-pings"])
    defer { server.stop() }
    // `PING <connection> <seconds>` lines, read off the peer's stdout on a thread of their own.
    let pings = Locked<[(connection: Int, at: Double)]>([])
    let enough = Latch()
    Thread.detachNewThread {
      while let line = try? server.readLine() {
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[0] == "PING", let connection = Int(parts[1]),
          let at = Double(parts[2])
        else { continue }
        let secondConnectionPings = pings.withLock { pings in
          pings.append((connection, at))
          return pings.filter { $0.connection == 2 }.count
        }
        if secondConnectionPings >= 3 { enough.open() }
      }
    }

    let loop = try EventLoop(threadName: "calm-test")
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

    enough.waitOrFail("three PINGs on the second connection", timeout: .seconds(15))
    let all = pings.withLock { $0 }
    func spacings(_ number: Int) -> [Double] {
      let times = all.filter { $0.connection == number }.map(\.at)
      return zip(times.dropFirst(), times).map { $0 - $1 }
    }
    let first = spacings(1)
    let second = spacings(2)
    XCTAssertEqual(first.count, 1, "connection 1 pinged twice before the GOAWAY: \(all)")
    XCTAssertLessThan(first.first ?? 1, 0.45, "connection 1 pinged every 300 ms: \(first)")
    XCTAssertGreaterThanOrEqual(second.count, 2)
    for spacing in second {
      XCTAssertGreaterThanOrEqual(
        spacing, 0.55, "connection 2 must ping every 600 ms, not 300: \(second)")
    }
    // The replacement was made while connection 1 was still draining (GOAWAY → reconnecting).
    let lost = transitions.all.first { $0.from == .connected && $0.to == .reconnecting }
    XCTAssertNotNil(lost)
    XCTAssertTrue(lost?.reason.contains("too_many_pings") == true, "\(String(describing: lost))")
  }
}
