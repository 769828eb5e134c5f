import Foundation
import Synchronization
import XCTest

@testable import MilvexReactor

final class SubmissionQueueTests: XCTestCase {
  func testEightProducersRunEveryClosureOnceInPerThreadOrder() throws {
    let loop = try EventLoop(threadName: "test-loop")
    let producers = 8
    let perProducer = 100_000
    // Loop-confined: the next expected sequence number per producer, and violations.
    let next = LoopConfined([Int](repeating: 0, count: producers))
    let outOfOrder = LoopConfined(0)
    let ranOffLoop = Atomic<Int>(0)
    let shutDownReturned = Atomic<Bool>(false)
    let ranAfterShutdown = Atomic<Int>(0)

    runThreads(producers) { producer in
      for sequence in 0..<perProducer {
        try! loop.execute {
          if shutDownReturned.load(ordering: .acquiring) {
            ranAfterShutdown.add(1, ordering: .relaxed)
          }
          if !loop.inLoopThread { ranOffLoop.add(1, ordering: .relaxed) }
          if next.value[producer] != sequence { outOfOrder.value += 1 }
          next.value[producer] = sequence + 1
        }
      }
    }
    loop.shutdown()
    shutDownReturned.store(true, ordering: .releasing)

    XCTAssertEqual(
      next.value, [Int](repeating: perProducer, count: producers),
      "every closure of every producer ran")
    XCTAssertEqual(outOfOrder.value, 0, "closures from one thread ran in submission order")
    XCTAssertEqual(ranOffLoop.load(ordering: .relaxed), 0, "closures ran on the loop thread")
    XCTAssertEqual(ranAfterShutdown.load(ordering: .relaxed), 0)
    XCTAssertThrowsError(try loop.execute {}) { error in
      XCTAssertEqual(error as? MilvexError, .eventLoopShutDown(operation: "execute"))
    }
  }

  func testWorkSubmittedFromTheLoopThreadIsQueuedNotRunReentrantly() throws {
    let loop = try EventLoop()
    defer { loop.shutdown() }
    let events = LoopConfined<[String]>([])
    let done = Latch()
    try loop.execute {
      events.value.append("outer start")
      try! loop.execute {
        events.value.append("inner")
        done.open()
      }
      events.value.append("outer end")
    }
    done.waitOrFail("the inner closure")
    XCTAssertEqual(events.value, ["outer start", "outer end", "inner"])
  }

  func testAsyncSubmitReturnsTheResultFromTheLoopThread() async throws {
    let loop = try EventLoop()
    let answer = try await loop.submit { loop.inLoopThread ? 42 : -1 }
    XCTAssertEqual(answer, 42)
    await Task.detached { loop.shutdown() }.value
    do {
      _ = try await loop.submit { 1 }
      XCTFail("submit after shutdown must fail")
    } catch {
      XCTAssertEqual(error, .eventLoopShutDown(operation: "execute"))
      XCTAssertFalse(error.isRetriable)
    }
  }

  func testInLoopThreadIsFalseElsewhere() throws {
    let loop = try EventLoop()
    defer { loop.shutdown() }
    XCTAssertFalse(loop.inLoopThread)
    let seen = Atomic<Bool>(false)
    try onLoop(loop) { seen.store(loop.inLoopThread, ordering: .relaxed) }
    XCTAssertTrue(seen.load(ordering: .relaxed))
  }
}
