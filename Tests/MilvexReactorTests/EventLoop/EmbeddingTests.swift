import CLibEV
import Foundation
import Synchronization
import XCTest

@testable import MilvexReactor

final class EmbeddingTests: XCTestCase {
  func testHostOwnedLoopRunsSubmittedWorkAndTimers() throws {
    let hostLoop = try XCTUnwrap(ev_loop_new(UInt32(EVFLAG_AUTO)))
    defer { ev_loop_destroy(hostLoop) }
    let loop = EventLoop(embeddingIn: hostLoop)
    XCTAssertEqual(loop.mode, .embedded)
    XCTAssertTrue(loop.inLoopThread, "the creating thread runs the host loop")

    let ran = Atomic<Int>(0)
    let timerFired = Atomic<Bool>(false)
    runThreads(2) { _ in
      for _ in 0..<1000 {
        try! loop.execute {
          ran.add(1, ordering: .relaxed)
          if !loop.inLoopThread { XCTFail("work ran off the host thread") }
        }
      }
    }
    try loop.execute {
      _ = try! loop.scheduleTimer(after: .milliseconds(5)) {
        timerFired.store(true, ordering: .relaxed)
      }
    }
    // The host drives its own loop.
    let deadline = ContinuousClock.now + .seconds(10)
    while (ran.load(ordering: .relaxed) < 2000 || !timerFired.load(ordering: .relaxed))
      && ContinuousClock.now < deadline
    {
      ev_run(hostLoop, Int32(EVRUN_ONCE))
    }
    XCTAssertEqual(ran.load(ordering: .relaxed), 2000)
    XCTAssertTrue(timerFired.load(ordering: .relaxed))

    // Idle, the embedded loop's wake-up watcher does not keep the host's ev_run going.
    ev_run(hostLoop, 0)

    loop.shutdown()  // on the host thread: synchronous
    XCTAssertThrowsError(try loop.execute {})
    XCTAssertEqual(ev_pending_count(hostLoop), 0)
  }

  func testHostDrivenLoopRunsUntilShutdownFromAnotherThread() throws {
    let ran = Atomic<Int>(0)
    let created = Latch()
    let runReturned = Latch()
    let holder = Locked<EventLoop?>(nil)
    Thread.detachNewThread {
      let loop = try! EventLoop.hostDriven()
      holder.withLock { $0 = loop }
      created.open()
      loop.run()
      runReturned.open()
    }
    created.waitOrFail("the host thread")
    let loop = try XCTUnwrap(holder.withLock { $0 })
    XCTAssertFalse(loop.inLoopThread)
    for _ in 0..<100 { try loop.execute { ran.add(1, ordering: .relaxed) } }
    loop.shutdown()
    runReturned.waitOrFail("run() to return")
    XCTAssertEqual(ran.load(ordering: .relaxed), 100)
  }

  func testRunOnceProcessesPendingWork() throws {
    let loop = try EventLoop.hostDriven()
    let ran = LoopConfined(false)
    try loop.execute { ran.value = true }
    XCTAssertFalse(ran.value)
    XCTAssertTrue(loop.runOnce(blocking: true))
    XCTAssertTrue(ran.value)
    loop.shutdown()
    XCTAssertFalse(loop.runOnce())
  }
}
