import XCTest

@testable import MilvexReactor

/// Calls admitted in order under MAX_CONCURRENT_STREAMS, abandoned ones skipped.
final class AdmissionQueueTests: XCTestCase {
  private final class Item {
    let number: Int
    var abandoned = false
    init(_ number: Int) { self.number = number }
  }

  func testFirstComeFirstServedWithinTheStreamLimit() {
    var queue = AdmissionQueue<Item>()
    let items = (0..<5).map(Item.init)
    for item in items { queue.append(item) }
    items[1].abandoned = true
    var open = 0
    var started: [Int] = []
    while let item = queue.next(openStreams: open, limit: 2, isAbandoned: \.abandoned) {
      started.append(item.number)
      open += 1
    }
    XCTAssertEqual(started, [0, 2], "two streams; the abandoned one is skipped")
    XCTAssertNil(queue.next(openStreams: 2, limit: 2, isAbandoned: \.abandoned), "full")
    XCTAssertEqual(
      queue.next(openStreams: 1, limit: 2, isAbandoned: \.abandoned)?.number, 3, "a stream freed")
    XCTAssertNil(
      queue.next(openStreams: 0, limit: 0, isAbandoned: \.abandoned), "before SETTINGS: limit 0")
    XCTAssertEqual(queue.removeAll().map(\.number), [4], "what still waits, to fail")
    XCTAssertTrue(queue.isEmpty)
  }

  /// 100,000 calls through a limit of 10 come out in order, and the storage stays bounded.
  func testLongRunsStayInOrder() {
    var queue = AdmissionQueue<Item>()
    var next = 0
    var expected = 0
    for round in 0..<10_000 {
      for _ in 0..<10 {
        queue.append(Item(next))
        next += 1
      }
      while let item = queue.next(openStreams: 0, limit: 10, isAbandoned: \.abandoned) {
        XCTAssertEqual(item.number, expected, "round \(round)")
        expected += 1
      }
      XCTAssertTrue(queue.isEmpty)
    }
    XCTAssertEqual(expected, 100_000)
  }
}
