import Synchronization
import XCTest

@testable import MilvexReactor

/// Work registered to run before the loop polls, by work that itself runs then.
final class BeforePollTests: XCTestCase {
  func testATaskRegisteredByABeforePollTaskRunsBeforeTheLoopBlocks() throws {
    let loop = try EventLoop(threadName: "before-poll")
    defer { loop.shutdown() }
    // A chain of three, each registered by the previous one, with nothing else to wake the
    // loop: libev alone would run the second only after its next (unbounded) poll.
    let ran = Latch()
    let order = Mutex<[Int]>([])
    try loop.execute {
      loop.runBeforeNextPoll {
        order.withLock { $0.append(1) }
        loop.runBeforeNextPoll {
          order.withLock { $0.append(2) }
          loop.runBeforeNextPoll {
            order.withLock { $0.append(3) }
            ran.open()
          }
        }
      }
    }
    XCTAssertTrue(ran.wait(timeout: .seconds(2)), "ran: \(order.withLock { $0 })")
    XCTAssertEqual(order.withLock { $0 }, [1, 2, 3])
  }

  func testATaskThatKeepsRegisteringItselfDoesNotStallTheLoop() throws {
    let loop = try EventLoop(threadName: "before-poll")
    defer { loop.shutdown() }
    let rounds = LoopConfined(0)
    let stopped = LoopConfined(false)
    let done = Latch()
    @Sendable func again() {
      guard !stopped.value else { return }
      rounds.value += 1
      loop.runBeforeNextPoll { again() }
    }
    try loop.execute { again() }
    // Work submitted from another thread still gets its turn.
    try loop.execute {
      stopped.value = true
      done.open()
    }
    XCTAssertTrue(done.wait(timeout: .seconds(5)))
    try loop.execute { XCTAssertGreaterThan(rounds.value, 0) }
  }
}
