import Foundation
import Synchronization
import XCTest

@testable import MilvexReactor

private final class Token: Sendable {}

final class ShutdownTests: XCTestCase {
  func testShutdownRunsAcceptedWorkAndDropsTimersWithoutFiring() throws {
    let loop = try EventLoop()
    let accepted = Atomic<Int>(0)
    let ran = Atomic<Int>(0)
    let timerFired = Atomic<Bool>(false)
    let timerToken = WeakRef<Token>()
    let ioToken = WeakRef<Token>()
    var fds: [Int32] = [-1, -1]
    XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
    defer { for fd in fds { close(fd) } }
    let watchedFD = fds[0]

    try onLoop(loop) {
      let captured = Token()
      timerToken.object = captured
      for _ in 0..<3 {
        _ = try! loop.scheduleTimer(after: .seconds(3600)) {
          _ = captured
          timerFired.store(true, ordering: .relaxed)
        }
      }
      let ioCaptured = Token()
      ioToken.object = ioCaptured
      _ = try! loop.watch(fileDescriptor: watchedFD, interest: .read) { _ in _ = ioCaptured }
      XCTAssertEqual(loop.activeWatcherCount, 4)
    }
    // Fill the queue from another thread while the loop is blocked, then shut down.
    let release = Latch()
    try loop.execute { release.wait() }
    runThreads(2) { _ in
      for _ in 0..<10_000 {
        do {
          try loop.execute { ran.add(1, ordering: .relaxed) }
          accepted.add(1, ordering: .relaxed)
        } catch {}
      }
    }
    let shutter = Thread { loop.shutdown() }
    shutter.start()
    release.open()
    loop.shutdown()

    XCTAssertEqual(ran.load(ordering: .relaxed), accepted.load(ordering: .relaxed))
    XCTAssertEqual(accepted.load(ordering: .relaxed), 20_000)
    XCTAssertFalse(timerFired.load(ordering: .relaxed))
    XCTAssertNil(timerToken.object, "timer callbacks were released")
    XCTAssertNil(ioToken.object, "I/O watcher callbacks were released")
  }

  func testShutdownTwiceAndFromSeveralThreads() throws {
    let loop = try EventLoop()
    runThreads(4) { _ in loop.shutdown() }
    loop.shutdown()
    XCTAssertThrowsError(try loop.execute {}) { error in
      XCTAssertEqual(error as? MilvexError, .eventLoopShutDown(operation: "execute"))
      XCTAssertTrue("\(error)".contains("shut down"))
    }
  }

  func testShutdownFromTheLoopThreadDoesNotDeadlock() throws {
    let loop = try EventLoop()
    let returned = Latch()
    try loop.execute {
      loop.shutdown()
      do {
        _ = try loop.scheduleTimer(after: .seconds(1)) {}
        XCTFail("scheduling a timer after shutdown must fail")
      } catch let error as MilvexError {
        XCTAssertEqual(error, .eventLoopShutDown(operation: "scheduleTimer"))
      } catch {}
      returned.open()
    }
    returned.waitOrFail("shutdown on the loop thread")
    loop.shutdown()  // joins the thread
    XCTAssertThrowsError(try loop.execute {})
  }

  func testLoopIsFreedAfterShutdown() throws {
    weak var weakLoop: EventLoop?
    try {
      let loop = try EventLoop()
      weakLoop = loop
      try onLoop(loop) { _ = try! loop.scheduleTimer(after: .seconds(60)) {} }
      loop.shutdown()
    }()
    XCTAssertNil(weakLoop, "nothing retains the loop after shutdown")
  }
}
