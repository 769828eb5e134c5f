import MilvexReactor
import MilvexTesting
import XCTest

/// The example of the article "Testing your application" (Docs/MilvexTesting.docc), run as a
/// test: an application's search through a `MilvusClient` on a virtual-time loop, the server
/// killed, five minutes of reconnect backoff advanced in a moment, the server back on its port,
/// and what the application observed on the way. Keep it in step with the article.
final class ApplicationOutageExampleTests: XCTestCase {
  func testTheApplicationRidesOutAFiveMinuteOutage() async throws {
    let wallStart = ContinuousClock.now

    // --- Docs/MilvexTesting.docc/TestingYourApplication.md, "Minutes of outage in a moment" ---
    let server = try MilvusTestServer(name: "outage")
    try server.start()
    defer { server.stop() }
    server.addCollection("docs", dimension: 4)

    let loop = try EventLoop.virtualTime(threadName: "app")
    defer { loop.shutdown() }
    var config = try ConnectionConfig(uri: server.uri)
    config.reconnectJitter = 0  // the documented schedule: 1 s, 2 s, 4 s … up to 60 s
    let client = try MilvusClient.connect(config: config, on: loop, name: "app")
    let states = StateLog()
    client.connection.onStateChange { states.record($0) }

    try await client.connection.waitForState(.connected)
    let before = try await client.perform(.search("docs", vectors: [[0, 0, 0, 1]]))
    XCTAssertEqual(before.count, 1)

    // The server dies; the connection notices at once (its socket closes), tries again at
    // once, is refused, and backs off.
    let port = server.port
    let refused = client.connection.expectTransition { $0.from == .reconnecting }
    server.stop()
    _ = try await refused.wait()
    let outageStart = loop.now
    var failedAttempts: [Duration] = []  // when each failed, since the outage began
    while loop.now - outageStart < .seconds(300) {
      // The next attempt is the earliest timer; move the clock to it and let the attempt's
      // real connect fail on the closed port.
      guard let next = try await loop.pendingTimerDeadlines().first else { break }
      let attempt = client.connection.expectTransition { $0.from == .reconnecting }
      try await loop.advanceTime(to: next)
      _ = try await attempt.wait()
      failedAttempts.append(loop.now - outageStart)
    }

    // The server comes back on its port; the next attempt connects, searches work again.
    try server.start(on: port)
    let next = try await loop.pendingTimerDeadlines().first
    try await loop.advanceTime(to: try XCTUnwrap(next))
    try await client.connection.waitForState(.connected)
    let reconnectedAfter = loop.now - outageStart
    let after = try await client.perform(.search("docs", vectors: [[0, 0, 0, 1]]))
    XCTAssertEqual(after.count, 1)
    await client.close()
    // --- end of the article's example ---

    // Five minutes of backoff, exactly: 1, 2, 4, 8, 16, 32, then 60 s at most between attempts.
    print("attempts failed at \(failedAttempts); reconnected after \(reconnectedAfter)")
    XCTAssertEqual(
      failedAttempts, [1, 3, 7, 15, 31, 63, 123, 183, 243, 303].map { Duration.seconds($0) })
    XCTAssertEqual(reconnectedAfter, .seconds(363))
    XCTAssertEqual(
      states.transitions.map { "\($0.from)→\($0.to)" }.filter {
        $0 != "reconnecting→reconnecting"
      },
      [
        "connecting→connected", "connected→reconnecting", "reconnecting→connected",
        "connected→disconnected",
      ])
    // The failed attempts, and before them the one made at once when the server went away.
    XCTAssertEqual(
      states.transitions.filter { $0.from == .reconnecting && $0.to == .reconnecting }.count,
      1 + failedAttempts.count)
    XCTAssertEqual(server.calls(to: "Search").count, 2)
    let wall = ContinuousClock.now - wallStart
    print("five minutes of outage took \(wall) of wall time")
    XCTAssertLessThan(wall, .seconds(10), "generous: it takes well under a second here")
  }
}

/// The transitions an application's observer saw (on the loop thread), read by the test.
private final class StateLog: @unchecked Sendable {
  // @unchecked Sendable: `seen` is behind `lock`.
  private let lock = NSLock()
  private var seen: [StateTransition] = []
  func record(_ transition: StateTransition) { lock.withLock { seen.append(transition) } }
  var transitions: [StateTransition] { lock.withLock { seen } }
}

/// The article shows the test's code, line for line.
final class TestingArticleTests: XCTestCase {
  func testTheArticleShowsTheExampleTest() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    let article = try String(
      contentsOf: root.appendingPathComponent("Docs/MilvexTesting.docc/TestingYourApplication.md"),
      encoding: .utf8)
    let test = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
    func lines(_ text: some StringProtocol) -> [String] {
      text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
        !$0.isEmpty
      }
    }
    let begin = try XCTUnwrap(test.range(of: "\"Minutes of outage in a moment\" ---\n"))
    let end = try XCTUnwrap(test.range(of: "// --- end of the article's example ---"))
    let example = lines(test[begin.upperBound..<end.lowerBound])
    let blocks = article.components(separatedBy: "```swift\n").dropFirst().map {
      lines($0.components(separatedBy: "```")[0])
    }
    XCTAssertGreaterThan(example.count, 30)
    XCTAssertTrue(blocks.contains(example), "the article's example differs from this test")
  }
}
