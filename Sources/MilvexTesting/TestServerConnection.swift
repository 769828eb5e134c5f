import MilvexReactor

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// One accepted connection of a ``MilvusTestServer``: the glue between its socket, its TLS
/// session (`TestServerTLSSession`) and its HTTP/2 session (`TestServerSession`). It
/// decides nothing: the core's `TestServerScript` chose how it is served, and the core
/// decides each call's answer.
///
/// Phases: `holding` (plaintext kept, nothing of HTTP/2 sent: the SETTINGS are late),
/// `serving`, `blackhole` (everything read is discarded, nothing is ever sent), `closed`.
///
/// - Important: Loop-confined: created, driven and closed on the server's loop thread.
final class TestServerConnection {
  enum Phase {
    case holding([UInt8])
    case serving
    case blackhole
    case closed
  }

  let number: Int
  private let fd: Int32
  private let loop: EventLoop
  private unowned let core: TestServerCore
  private var watcher: IOWatcher?
  private let tls: TestServerTLSSession?
  private(set) var session: TestServerSession?
  private(set) var phase: Phase
  private var output: [UInt8] = []
  private var outputOffset = 0
  /// Close once the output has left (after GOAWAY too_many_pings).
  private var closeWhenFlushed = false
  /// Close once no stream is open and the output has left (after GOAWAY NO_ERROR).
  private var closeWhenIdle = false
  private var timers: [LoopTimer] = []

  init(
    number: Int, fd: Int32, loop: EventLoop, core: TestServerCore,
    tls: TestServerTLSSession?, phase: Phase
  ) {
    self.number = number
    self.fd = fd
    self.loop = loop
    self.core = core
    self.tls = tls
    self.phase = phase
  }

  /// Starts reading. Throws when the loop refuses the watcher (the connection is closed).
  func start() throws(MilvexError) {
    watcher = try loop.watch(fileDescriptor: fd, interest: .read) { [weak self] events in
      guard let self else { return }
      if events.contains(.read) { self.readAvailable() }
      if events.contains(.write) {
        self.writeOutput()
        self.closeIfDone()
      }
    }
  }

  /// Ends the holding phase: the HTTP/2 session starts (its SETTINGS go out) and reads the
  /// bytes held so far.
  func releasePreface() {
    guard case .holding(let held) = phase else { return }
    do {
      session = try TestServerSession()
    } catch {
      return close(.eof)
    }
    phase = .serving
    if !held.isEmpty { feedSession(held) }
    flush()
  }

  /// Runs `body` after `delay` on the loop, unless the connection closed first.
  func after(_ delay: Duration, _ body: @escaping () -> Void) {
    guard
      let timer = try? loop.scheduleTimer(
        after: delay,
        { [weak self] in
          guard let self, !self.isClosed else { return }
          body()
        })
    else { return }
    timers.append(timer)
  }

  var isClosed: Bool {
    if case .closed = phase { return true }
    return false
  }

  // MARK: - Reading

  private func readAvailable() {
    for _ in 0..<16 {
      guard !isClosed else { return }
      let count = core.readBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if count > 0 {
        core.readBuffer.withUnsafeBytes { received(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        if count < core.readBuffer.count { return }
      } else if count == 0 {
        return close(.eof)
      } else {
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK { return }
        if code == EINTR { continue }
        return close(.eof)
      }
    }
  }

  private func received(_ bytes: UnsafeRawBufferPointer) {
    if case .blackhole = phase { return }
    guard let tls else { return plaintext(bytes) }
    switch tls.receive(bytes) {
    case .success(let plain):
      if !plain.isEmpty { plain.withUnsafeBytes { plaintext($0) } }
      flush()
    case .failure:
      write(tls.takeCiphertext())  // the alert, if any
      close(.eof)
    }
  }

  private func plaintext(_ bytes: UnsafeRawBufferPointer) {
    switch phase {
    case .holding(var held):
      held += bytes
      phase = .holding(held)
    case .serving:
      feedSession(Array(bytes))
      flush()
    case .blackhole, .closed:
      break
    }
  }

  private func feedSession(_ bytes: [UInt8]) {
    guard let session else { return }
    let outcome = bytes.withUnsafeBytes { session.receive($0) }
    switch outcome {
    case .success(let events):
      for event in events { handle(event) }
    case .failure:
      flush()  // nghttp2's GOAWAY
      closeWhenFlushed = true
    }
  }

  private func handle(_ event: TestServerSessionEvent) {
    switch event {
    case .request(let request):
      core.handle(request, on: self)
    case .ping:
      core.recordPing(on: self)
    case .streamClosed:
      break
    }
  }

  // MARK: - Answering

  /// Answers stream `streamID` with `answer` (now, or after its delay).
  func answer(streamID: Int32, method: String, service: String, _ answer: TestServerAnswer?) {
    guard let session, !isClosed else { return }
    switch answer {
    case nil:
      session.respond(
        streamID: streamID, status: GRPCStatusCode.unimplemented.rawValue,
        message: "unknown method \(method) for service \(service)")
    case .response(let bytes)?:
      session.respond(streamID: streamID, message: bytes)
    case .milvusError(let code, let reason)?:
      session.respond(
        streamID: streamID,
        message: TestServerScript.milvusErrorResponse(method: method, code: code, reason: reason))
    case .grpcStatus(let code, let message)?:
      session.respond(streamID: streamID, status: code.rawValue, message: message)
    case .delayed(let delay, let then)?:
      after(delay) { [weak self] in
        self?.answer(streamID: streamID, method: method, service: service, then)
      }
      return
    case .never?:
      return
    }
    flush()
  }

  // MARK: - Faults

  /// Sends GOAWAY: NO_ERROR closes once the open calls are answered; too_many_pings closes
  /// as soon as the frame has left.
  func goAway(_ kind: TestServerGoAway) {
    guard let session, case .serving = phase else { return }
    switch kind {
    case .noError:
      session.goAway(errorCode: 0, debugData: "")
      closeWhenIdle = true
    case .tooManyPings:
      session.goAway(errorCode: 0xb, debugData: "too_many_pings")
      closeWhenFlushed = true
    }
    flush()
  }

  /// Closes the socket: FIN (`.eof`) or RST (`.reset`, `SO_LINGER` 0). Idempotent.
  func close(_ how: TestServerClose) {
    guard !isClosed else { return }
    phase = .closed
    watcher?.close()
    watcher = nil
    for timer in timers { timer.cancel() }
    timers = []
    switch how {
    case .eof:
      shutdown(fd, Int32(SHUT_RDWR))
    case .reset:
      var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }
    Glibc.close(fd)
    output = []
    session = nil
    core.connectionClosed(self)
  }

  // MARK: - Writing

  /// Moves what nghttp2 (and TLS) want to send to the socket.
  func flush() {
    guard !isClosed else { return }
    var plain: [UInt8] = []
    if let session, tls?.isEstablished ?? true {
      _ = session.drainOutput(into: &plain)
    }
    if let tls {
      tls.send(plain)
      write(tls.takeCiphertext())
    } else {
      write(plain)
    }
    closeIfDone()
  }

  /// Closes once the output has left, when a GOAWAY ended the connection (for NO_ERROR, once
  /// its calls ended too).
  private func closeIfDone() {
    guard !isClosed, outputOffset >= output.count else { return }
    // nghttp2 is done when both sides sent GOAWAY, or after a protocol error it answered.
    if closeWhenFlushed || (closeWhenIdle && session?.openStreams.isEmpty != false)
      || session?.isFinished == true
    {
      close(.eof)
    }
  }

  private func write(_ bytes: [UInt8]) {
    guard !isClosed, !bytes.isEmpty else { return }
    output += bytes
    if watcher?.interest.contains(.write) != true { writeOutput() }
  }

  private func writeOutput() {
    while outputOffset < output.count {
      // The loop's condition makes the buffer non-empty, so it has a base address.
      let written = output.withUnsafeBytes { bytes -> Int in
        guard let base = bytes.baseAddress else { return 0 }
        return send(fd, base + outputOffset, bytes.count - outputOffset, Int32(MSG_NOSIGNAL))
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
      return close(.eof)
    }
    output.removeAll(keepingCapacity: true)
    outputOffset = 0
    watcher?.removeInterest(.write)
  }
}
