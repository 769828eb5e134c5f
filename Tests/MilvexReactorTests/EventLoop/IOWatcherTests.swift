import Foundation
import XCTest

@testable import MilvexReactor

final class IOWatcherTests: XCTestCase {
  private var loop: EventLoop!
  private var fds: [Int32] = [-1, -1]

  override func setUpWithError() throws {
    loop = try EventLoop()
    XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
    for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
  }

  override func tearDown() {
    loop.shutdown()
    for fd in fds where fd >= 0 { close(fd) }
  }

  func testReadableWhenPeerWritesAndEOFWhenPeerCloses() throws {
    let received = LoopConfined<[UInt8]>([])
    let sawEOF = Latch()
    let gotData = Latch()
    let ours = fds[0]
    let watcher = LoopConfined<IOWatcher?>(nil)
    try onLoop(loop) { [loop] in
      watcher.value = try! loop!.watch(fileDescriptor: ours, interest: .read) { events in
        XCTAssertEqual(events, .read)
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(ours, &buffer, buffer.count)
        if count > 0 {
          received.value += buffer[0..<count]
          gotData.open()
        } else if count == 0 {
          watcher.value?.close()
          sawEOF.open()
        }
      }
    }
    XCTAssertEqual(write(fds[1], "hello", 5), 5)
    gotData.waitOrFail("readability")
    close(fds[1])
    fds[1] = -1
    sawEOF.waitOrFail("EOF")
    XCTAssertEqual(String(decoding: received.value, as: UTF8.self), "hello")
    try onLoop(loop) { [loop] in XCTAssertEqual(loop!.activeWatcherCount, 0) }
  }

  func testWriteInterestCanBeToggled() throws {
    let writableEvents = LoopConfined(0)
    let watcher = LoopConfined<IOWatcher?>(nil)
    let firstWritable = Latch()
    let ours = fds[0]
    try onLoop(loop) { [loop] in
      watcher.value = try! loop!.watch(fileDescriptor: ours, interest: []) { events in
        if events.contains(.write) {
          writableEvents.value += 1
          // Output flushed: stop watching writability so the loop does not spin.
          watcher.value?.removeInterest(.write)
          firstWritable.open()
        }
      }
      XCTAssertEqual(loop!.activeWatcherCount, 0, "an empty interest is not watched")
      watcher.value?.addInterest(.write)
      XCTAssertEqual(watcher.value?.interest, .write)
    }
    firstWritable.waitOrFail("writability")
    let quietPeriod = Latch()
    try onLoop(loop) { [loop] in
      _ = try! loop!.scheduleTimer(after: .milliseconds(50)) { quietPeriod.open() }
    }
    quietPeriod.waitOrFail("a quiet period")
    try onLoop(loop) { [loop] in
      XCTAssertEqual(writableEvents.value, 1, "no writable events after interest was removed")
      XCTAssertEqual(watcher.value?.interest, [])
      watcher.value?.addInterest([.write, .read])
      XCTAssertEqual(loop!.activeWatcherCount, 1)
      watcher.value?.close()
      XCTAssertEqual(loop!.activeWatcherCount, 0)
    }
  }

  func testNegativeDescriptorIsRejected() throws {
    let error = LoopConfined<MilvexError?>(nil)
    try onLoop(loop) { [loop] in
      do { _ = try loop!.watch(fileDescriptor: -1, interest: .read) { _ in } } catch let e
        as MilvexError
      { error.value = e } catch {}
    }
    guard case .invalidArgument(let field, _)? = error.value else {
      return XCTFail("\(String(describing: error.value))")
    }
    XCTAssertEqual(field, "fileDescriptor")
  }
}
