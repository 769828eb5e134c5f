import MilvexReactor
import MilvexTesting
import XCTest

/// What an application's tests see: virtual time through the public API alone.
final class VirtualTimePublicAPITests: XCTestCase {
  func testAnApplicationTimerAndAConnectionBackoffFollowTheClock() async throws {
    let loop = try EventLoop.virtualTime(threadName: "vt-public")
    defer { loop.shutdown() }
    XCTAssertTrue(loop.hasVirtualTime)
    let start = loop.now
    let fired = FiredFlag()
    try await loop.submit {
      _ = try? loop.scheduleTimer(after: .seconds(86_400)) { fired.set() }
    }
    let pending = try await loop.pendingTimerDeadlines()
    XCTAssertEqual(pending, [start + .seconds(86_400)])
    try await loop.advanceTime(by: .seconds(86_399))
    XCTAssertFalse(fired.isSet)
    try await loop.advanceTime(to: start + .seconds(86_400))
    XCTAssertTrue(fired.isSet, "a day passed before advanceTime returned")
    XCTAssertEqual(loop.now, start + .seconds(86_400))
  }
}

/// A flag set on the loop thread and read by the test after the advance returned.
private final class FiredFlag: @unchecked Sendable {
  // @unchecked Sendable: `value` is behind `lock`.
  private let lock = NSLock()
  private var value = false
  func set() { lock.withLock { value = true } }
  var isSet: Bool { lock.withLock { value } }
}
