import Foundation
import XCTest

@testable import MilvexReactor

/// The byte stream under HTTP/2, against a peer socket the test drives by hand: bytes both
/// ways, partial writes under a small send buffer, EOF in the middle, a reset, a local close.
final class TCPStreamTests: XCTestCase {
  private var loop: EventLoop!

  override func setUpWithError() throws { loop = try EventLoop(threadName: "stream-test") }
  override func tearDown() { loop.shutdown() }

  /// What the stream reported, recorded on the loop thread.
  private final class Recorder: @unchecked Sendable {
    // @unchecked Sendable: written on the loop thread, read after `done` opened (or locked).
    let received = Locked<[UInt8]>([])
    let events = Locked<[String]>([])
    let done = Latch()
  }

  /// A connected non-blocking socket pair: one end for the stream, one for the test.
  private func socketPair() -> (stream: Int32, peer: Int32) {
    var fds: [Int32] = [0, 0]
    XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
    XCTAssertEqual(fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK), 0)
    return (fds[0], fds[1])
  }

  /// Starts a stream over `fd` on the loop; returns it (kept alive by the caller).
  private func start(
    _ fd: Int32, _ recorder: Recorder, until finished: @escaping @Sendable ([String]) -> Bool
  )
    throws -> LoopConfined<TCPStream?>
  {
    let stream = LoopConfined<TCPStream?>(nil)
    try onLoop(loop) { [loop] in
      let tcp = TCPStream(loop: loop!, fileDescriptor: fd)
      stream.value = tcp
      try! tcp.start { event in
        switch event {
        case .received(let bytes): recorder.received.withLock { $0 += bytes }
        case .drained: recorder.events.withLock { $0.append("drained") }
        case .closed(let reason): recorder.events.withLock { $0.append("closed: \(reason)") }
        }
        if finished(recorder.events.withLock { $0 }) { recorder.done.open() }
      }
    }
    return stream
  }

  /// Closes and drops a stream on the loop thread, where a loop-confined object must end.
  private func release(_ stream: LoopConfined<TCPStream?>) throws {
    try onLoop(loop) {
      stream.value?.close()
      stream.value = nil
    }
  }

  func testBytesInAndEndOfFileInTheMiddleOfAMessage() throws {
    let (fd, peer) = socketPair()
    defer { close(peer) }
    let recorder = Recorder()
    let stream = try start(fd, recorder) { $0.contains { $0.hasPrefix("closed") } }
    let sent = Array("half a frame".utf8)
    XCTAssertEqual(write(peer, sent, sent.count), sent.count)
    shutdown(peer, Int32(SHUT_WR))
    recorder.done.waitOrFail("the end of the stream")
    XCTAssertEqual(recorder.received.withLock { $0 }, sent, "the bytes before the EOF arrive first")
    XCTAssertEqual(recorder.events.withLock { $0 }, ["closed: \(StreamCloseReason.endOfFile)"])
    try release(stream)
  }

  func testPartialWritesWaitForTheSocketAndReportDrained() throws {
    let (fd, peer) = socketPair()
    defer { close(peer) }
    var small: Int32 = 4096
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
    let recorder = Recorder()
    let stream = try start(fd, recorder) { $0.contains("drained") }
    let payload = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let pendingAfterSend = LoopConfined(false)
    try onLoop(loop) {
      stream.value!.send { $0 += payload }
      pendingAfterSend.value = stream.value!.hasPendingOutput
    }
    XCTAssertTrue(pendingAfterSend.value, "4 MiB cannot fit a 4 KiB send buffer at once")
    // Read it all on this thread, slowly at first.
    var got: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 7_000)
    while got.count < payload.count {
      let count = read(peer, &chunk, chunk.count)
      XCTAssertGreaterThan(count, 0)
      if count <= 0 { break }
      got += chunk[..<count]
      if got.count < 100_000 { usleep(200) }
    }
    recorder.done.waitOrFail("the drained event")
    XCTAssertEqual(got.count, payload.count)
    XCTAssertTrue(got == payload, "every byte, in order")
    let pendingAtEnd = LoopConfined(true)
    try onLoop(loop) { pendingAtEnd.value = stream.value!.hasPendingOutput }
    XCTAssertFalse(pendingAtEnd.value)
    XCTAssertEqual(recorder.events.withLock { $0 }, ["drained"], "reported once, and no close")
    try release(stream)
  }

  func testResetByThePeer() throws {
    // A real TCP pair: only TCP has resets.
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(listener, $0, length) }
    }
    listen(listener, 1)
    withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        _ = getsockname(listener, $0, &length)
      }
    }
    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        XCTAssertEqual(connect(client, $0, length), 0)
      }
    }
    let server = accept(listener, nil, nil)
    XCTAssertGreaterThanOrEqual(server, 0)
    XCTAssertEqual(fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK), 0)

    let recorder = Recorder()
    let stream = try start(client, recorder) { $0.contains { $0.hasPrefix("closed") } }
    // Unread data plus SO_LINGER 0 makes the close send RST.
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    setsockopt(server, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    close(server)
    recorder.done.waitOrFail("the reset")
    XCTAssertEqual(recorder.events.withLock { $0 }, ["closed: \(StreamCloseReason.reset)"])
    try release(stream)
  }

  func testLocalCloseReportsNothing() throws {
    let (fd, peer) = socketPair()
    let recorder = Recorder()
    let stream = try start(fd, recorder) { _ in false }
    try onLoop(loop) { stream.value!.close() }
    var byte: UInt8 = 0
    XCTAssertEqual(read(peer, &byte, 1), 0, "the peer sees the close")
    close(peer)
    XCTAssertEqual(recorder.events.withLock { $0 }, [], "the owner's own close is not an event")
    try release(stream)
  }

  /// A write into a socket whose peer is gone fails with a typed reason and never raises
  /// SIGPIPE: with SIGPIPE's default action and the signal unblocked on the loop thread, as in
  /// an application that did nothing about it, a `write` would end this process.
  func testWriteToAClosedPeerFailsTypedWithoutSIGPIPE() throws {
    let previous = signal(SIGPIPE, SIG_DFL)
    defer { signal(SIGPIPE, previous) }
    let (fd, peer) = socketPair()
    close(peer)
    let recorder = Recorder()
    let stream = LoopConfined<TCPStream?>(nil)
    try onLoop(loop) { [loop] in
      var pipeSignal = sigset_t()
      sigemptyset(&pipeSignal)
      sigaddset(&pipeSignal, SIGPIPE)
      pthread_sigmask(SIG_UNBLOCK, &pipeSignal, nil)
      // Start and send in one go, before the loop can notice the EOF.
      let tcp = TCPStream(loop: loop!, fileDescriptor: fd)
      stream.value = tcp
      try! tcp.start { event in
        if case .closed(let reason) = event {
          recorder.events.withLock { $0.append("closed: \(reason)") }
          recorder.done.open()
        }
      }
      tcp.send { $0 += [1, 2, 3] }
    }
    recorder.done.waitOrFail("the failed write")
    XCTAssertEqual(
      recorder.events.withLock { $0 }, ["closed: \(StreamCloseReason.reset)"], "EPIPE is a reset")
    try release(stream)
  }

  func testReadBufferIsSharedByTheLoop() throws {
    let first = LoopConfined<UnsafeMutableRawBufferPointer?>(nil)
    let second = LoopConfined<UnsafeMutableRawBufferPointer?>(nil)
    try onLoop(loop) { [loop] in
      first.value = loop!.sharedReadBuffer
      second.value = loop!.sharedReadBuffer
    }
    XCTAssertEqual(first.value?.baseAddress, second.value?.baseAddress)
    XCTAssertEqual(first.value?.count, 64 * 1024)
  }
}
