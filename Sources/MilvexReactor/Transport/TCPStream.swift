#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A ``ByteStream`` over a connected, non-blocking TCP socket.
///
/// Reads go into the loop's one shared read buffer (``EventLoop/sharedReadBuffer``), so an idle
/// connection holds no read memory. Each ``send(_:)`` appends to one output buffer and writes
/// it at once (the owner batches, so that a loop iteration makes one `write`); after a partial
/// write the rest waits for writability, and the buffer gives its memory back once drained if
/// it grew large.
///
/// - Important: Loop-confined. The output buffer is `@exclusivity(unchecked)` (it is written on
///   every call): only `send` and the writer touch it, on the loop thread, and `produce` gets
///   it `inout` without any other access open.
final class TCPStream: ByteStream {
  let loop: EventLoop
  @exclusivity(unchecked) private var fd: Int32
  @exclusivity(unchecked) private var watcher: IOWatcher?
  @exclusivity(unchecked) private var onEvent: ((ByteStreamEvent) -> Void)?
  @exclusivity(unchecked) private var output: [UInt8] = []
  @exclusivity(unchecked) private var outputOffset = 0

  /// Takes ownership of `fileDescriptor`, a connected non-blocking stream socket.
  init(loop: EventLoop, fileDescriptor: Int32) {
    self.loop = loop
    self.fd = fileDescriptor
  }

  deinit {
    // Normally closed before; never leak the descriptor.
    watcher?.close()
    if fd >= 0 { Glibc.close(fd) }
  }

  private var isOpen: Bool { fd >= 0 }

  func start(_ onEvent: @escaping (ByteStreamEvent) -> Void) throws(MilvexError) {
    self.onEvent = onEvent
    watcher = try loop.watch(fileDescriptor: fd, interest: .read) { [weak self] events in
      guard let self else { return }
      if events.contains(.read) { self.readAvailable() }
      if events.contains(.write), self.isOpen { self.writeOutput(reportDrained: true) }
    }
  }

  var hasPendingOutput: Bool { outputOffset < output.count }

  /// A TCP stream is ready for bytes as soon as it is connected.
  var isEstablished: Bool { true }

  func send(_ produce: (inout [UInt8]) -> Void) {
    guard isOpen else { return }
    produce(&output)
    // While waiting for writability the watcher writes it, after what is queued already.
    guard hasPendingOutput, watcher?.interest.contains(.write) != true else { return }
    writeOutput(reportDrained: false)
  }

  func close() {
    guard isOpen else { return }
    watcher?.close()
    watcher = nil
    Glibc.close(fd)
    fd = -1
    output = []
    outputOffset = 0
    onEvent = nil
  }

  /// Ends the stream for `reason` and tells the owner.
  private func fail(_ reason: StreamCloseReason) {
    let onEvent = self.onEvent
    close()
    onEvent?(.closed(reason))
  }

  private func readAvailable() {
    let buffer = loop.sharedReadBuffer
    // Bounded, so that one busy connection cannot starve the others on the loop.
    for _ in 0..<16 {
      guard isOpen else { return }
      let count = read(fd, buffer.baseAddress, buffer.count)
      if count > 0 {
        onEvent?(.received(UnsafeRawBufferPointer(rebasing: buffer[..<count])))
        if count < buffer.count { return }
      } else if count == 0 {
        return fail(.endOfFile)
      } else {
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK { return }
        if code == EINTR { continue }
        return fail(.failed("read", errno: code))
      }
    }
  }

  /// Writes what is pending; what the socket does not take waits for writability. `.drained`
  /// is reported only when output that had to wait has left (the owner is not inside `send`).
  private func writeOutput(reportDrained: Bool) {
    while hasPendingOutput {
      // `send` with MSG_NOSIGNAL, not `write`: writing to a connection the peer has closed
      // must fail with EPIPE, not raise SIGPIPE and end the application's process.
      let written = output.withUnsafeBytes { bytes in
        Glibc.send(
          fd, bytes.baseAddress! + outputOffset, bytes.count - outputOffset, Int32(MSG_NOSIGNAL))
      }
      if written > 0 {
        outputOffset += written
        continue
      }
      let code = errno
      if written < 0 && code == EINTR { continue }
      if written < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
        watcher?.addInterest(.write)
        return
      }
      return fail(.failed("write", errno: code))
    }
    // Keep a small buffer for the next writes; give a large one back.
    output.removeAll(keepingCapacity: output.capacity <= 16 * 1024)
    outputOffset = 0
    watcher?.removeInterest(.write)
    if reportDrained { onEvent?(.drained) }
  }
}
