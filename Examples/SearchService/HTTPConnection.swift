import CLibEV
import CMilvexHTTPParser
import Foundation

/// Answers one request, exactly once, through `respond` (at once or later, on the loop thread).
typealias RequestHandler = (HTTPRequest, _ respond: @escaping (HTTPResponse) -> Void) -> Void

/// What the connections of one server share: the loop, the parser's callbacks, the read buffer,
/// the limits and the request handler.
///
/// - Important: Loop thread only.
final class HTTPConnectionContext {
  /// The host's libev loop.
  let loop: OpaquePointer
  /// The largest request body accepted; a larger one is answered 413.
  let maxBodyBytes: Int
  /// The longest request target accepted; a longer one is answered 414.
  let maxTargetBytes = 8 * 1024
  /// Requests received but not answered yet, per connection, before it stops reading
  /// (pipelining back-pressure).
  let maxQueuedRequests = 32
  /// Response bytes waiting for a slow reader, per connection, before it stops answering.
  let maxPendingOutput = 1 << 20
  /// How long a closing connection reads and discards what the client still sends, so that
  /// the kernel does not reset the connection and destroy the last response unread.
  let lingerSeconds = 2.0
  /// How long a connection may go without receiving anything while it has nothing to answer
  /// (an idle keep-alive connection, or a request that stalls half sent) before it closes.
  let idleSeconds = 60.0
  /// Answers requests.
  let handler: RequestHandler
  /// The callbacks of every connection's parser (they find the connection through `data`).
  let settings = UnsafeMutablePointer<http_parser_settings>.allocate(capacity: 1)
  /// One buffer for every read: reads happen one at a time and are parsed at once.
  let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

  /// A context for connections on `loop`.
  init(loop: OpaquePointer, maxBodyBytes: Int, handler: @escaping RequestHandler) {
    self.loop = loop
    self.maxBodyBytes = maxBodyBytes
    self.handler = handler
    HTTPConnection.installCallbacks(in: settings)
  }

  deinit {
    settings.deallocate()
    readBuffer.deallocate()
  }
}

/// One client's HTTP/1.1 connection: reads and parses requests (nodejs/http-parser), answers
/// them one at a time in arrival order (so pipelined requests get their responses in order),
/// keeps the connection alive between them, and closes it gracefully.
///
/// ```
///   open ──(Connection: close, a bad request, peer EOF, drain)──▶ closing after responses
///     │                                                              │ last response written
///     │ idle at drain or for 60 s / force / I/O error                ▼
///     └─────────────────────────────────────▶ closed ◀── lingering (write side shut,
///                                                          reading and discarding, ≤ 2 s)
/// ```
///
/// - Important: Loop thread only; every callback runs on the loop thread.
final class HTTPConnection {
  private enum State {
    /// Reading and answering requests.
    case open
    /// No more requests are read; the ones received are answered, then it lingers.
    case closingAfterResponses
    /// Everything is answered and the write side is shut; discarding input until EOF.
    case lingering
    case closed
  }

  /// A request to answer, or a broken one to refuse (and close after).
  private enum Pending {
    case request(HTTPRequest)
    case failure(HTTPError)
  }

  /// The peer's address, for log lines.
  let peer: String
  private let fileDescriptor: Int32
  private let context: HTTPConnectionContext
  private let onClose: (HTTPConnection) -> Void
  private var watcher: HostIOWatcher!
  private var state = State.open
  private let parser = UnsafeMutablePointer<http_parser>.allocate(capacity: 1)

  // The request being parsed.
  private var messageInProgress = false
  private var target: [UInt8] = []
  private var body: [UInt8] = []
  private var headerName: [UInt8] = []
  private var headerValue: [UInt8] = []
  private var parsingHeaderValue = false
  private var expectsContinue = false
  /// Set by a callback that stops the parser because of a limit (413, 414).
  private var limitExceeded: HTTPError?
  /// Bytes read but not parsed because the parser is paused (back-pressure).
  private var unparsed: [UInt8] = []

  private var pending: [Pending] = []
  private var inFlight = false
  private var processing = false
  private var output: [UInt8] = []
  private var outputSent = 0
  private var draining = false
  private var peerClosedInput = false
  private var lingerTimer: HostTimer?
  private var idleTimer: HostTimer?

  /// Takes over the connected, non-blocking `fileDescriptor` and starts reading.
  ///
  /// - Parameter onClose: called once, when the connection has closed its descriptor.
  init(
    fileDescriptor: Int32, peer: String, context: HTTPConnectionContext,
    onClose: @escaping (HTTPConnection) -> Void
  ) {
    self.fileDescriptor = fileDescriptor
    self.peer = peer
    self.context = context
    self.onClose = onClose
    http_parser_init(parser, HTTP_REQUEST)
    parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    watcher = HostIOWatcher(loop: context.loop, fileDescriptor: fileDescriptor) {
      [unowned self] events in
      // Closing removes the server's reference: keep this alive until the callback returns.
      withExtendedLifetime(self) {
        if events & Int32(EV_WRITE) != 0 { writable() }
        if events & Int32(EV_READ) != 0, state != .closed { readable() }
      }
    }
    idleTimer = HostTimer(
      loop: context.loop, after: context.idleSeconds, repeating: context.idleSeconds
    ) { [unowned self] in
      idleTimeElapsed()
    }
    updateInterest()
  }

  deinit {
    parser.deallocate()
  }

  /// Whether nothing is being received, waiting or being answered: closing now loses nothing.
  var isIdle: Bool {
    !messageInProgress && pending.isEmpty && !inFlight && outputSent == output.count
  }

  // MARK: - Shutting down

  /// The server stops: an idle connection closes now; a busy one finishes the request it is
  /// receiving and those it has, answers them (the last with `Connection: close`) and closes.
  func drain() {
    guard state == .open else { return }
    draining = true
    // What the client sent before the signal may still be unread: a request that has begun
    // there is in flight too.
    if readingWanted && !peerClosedInput {
      readable()
      guard state == .open else { return }
    }
    if isIdle {
      close()
      return
    }
    if !messageInProgress { http_parser_pause(parser, 1) }
    closeAfterResponses()
  }

  /// Closes the descriptor now, whatever is pending (drain deadline, I/O errors).
  func close() {
    guard state != .closed else { return }
    state = .closed
    watcher.stop()
    lingerTimer?.cancel()
    lingerTimer = nil
    idleTimer?.cancel()
    idleTimer = nil
    Glibc.close(fileDescriptor)
    pending = []
    onClose(self)
  }

  /// Nothing was received for ``HTTPConnectionContext/idleSeconds``: close, unless an answer
  /// is being made or written (a Milvus call has its own deadline; a slow reader has the drain).
  private func idleTimeElapsed() {
    guard state == .open, !inFlight, pending.isEmpty, outputSent == output.count else { return }
    if messageInProgress {
      log("\(peer): closing, a request stalled half sent for \(Int(context.idleSeconds)) s")
    }
    close()
  }

  private func closeAfterResponses() {
    if state == .open { state = .closingAfterResponses }
    finishIfDone()
  }

  /// After the last response of a closing connection: shut the write side and read what the
  /// client still sends until it closes too (or the linger time is over). Closing with unread
  /// input would send a reset, which can destroy the response before the client reads it.
  private func finishIfDone() {
    guard state == .closingAfterResponses, !messageInProgress, pending.isEmpty, !inFlight,
      outputSent == output.count
    else { return }
    if peerClosedInput {
      close()
      return
    }
    state = .lingering
    shutdown(fileDescriptor, Int32(SHUT_WR))
    lingerTimer = HostTimer(loop: context.loop, after: context.lingerSeconds) {
      [unowned self] in close()
    }
    updateInterest()
  }

  // MARK: - Reading and parsing

  private var readingWanted: Bool {
    switch state {
    case .open:
      return http_errno(rawValue: parser.pointee.http_errno) != HPE_PAUSED
    case .closingAfterResponses:
      // The request being received when the drain began may still complete.
      return messageInProgress && http_errno(rawValue: parser.pointee.http_errno) == HPE_OK
    case .lingering: return true
    case .closed: return false
    }
  }

  private func updateInterest() {
    guard state != .closed else { return }
    var events: Int32 = 0
    if readingWanted && !peerClosedInput { events |= Int32(EV_READ) }
    if outputSent < output.count { events |= Int32(EV_WRITE) }
    watcher.setEvents(events)
  }

  private func readable() {
    let buffer = context.readBuffer
    let count = recv(fileDescriptor, buffer.baseAddress, buffer.count, 0)
    if count < 0 {
      if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return }
      close()
      return
    }
    if count == 0 {
      peerClosedInput = true
      if state == .lingering || isIdle {
        close()
        return
      }
      // A request cut short cannot be answered; the complete ones still are.
      messageInProgress = false
      closeAfterResponses()
      updateInterest()
      return
    }
    guard state != .lingering else { return }  // discarded
    idleTimer?.restart()
    parse(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
    processPending()
    updateInterest()
  }

  /// Feeds `bytes` to the parser and queues what it completed.
  private func parse(_ bytes: UnsafeRawBufferPointer) {
    let parsed = http_parser_execute(
      parser, context.settings, bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
      bytes.count)
    let error = http_errno(rawValue: parser.pointee.http_errno)
    if error == HPE_PAUSED {
      // Kept for later: the queue is full, or no more requests are wanted.
      unparsed.append(contentsOf: bytes[parsed...])
    } else if error != HPE_OK {
      messageInProgress = false
      pending.append(.failure(limitExceeded ?? Self.parseFailure(error)))
      closeAfterResponses()
    } else if parser.pointee.upgrade != 0 {
      // CONNECT or an `Upgrade` header: what follows is not HTTP/1.1 this server speaks. The
      // request itself is answered (405 or 404, or normally), then the connection closes.
      closeAfterResponses()
    }
  }

  /// Resumes a paused parser once the queue has room again; returns whether it did.
  private func resumeParsing() -> Bool {
    guard state == .open, !draining, pending.count < context.maxQueuedRequests,
      http_errno(rawValue: parser.pointee.http_errno) == HPE_PAUSED
    else { return false }
    http_parser_pause(parser, 0)
    let bytes = unparsed
    unparsed = []
    if !bytes.isEmpty {
      bytes.withUnsafeBytes { parse($0) }
    }
    return true
  }

  private static func parseFailure(_ error: http_errno) -> HTTPError {
    let name = String(cString: http_errno_name(error))
    let description = String(cString: http_errno_description(error))
    if error == HPE_HEADER_OVERFLOW {
      return HTTPError(
        .requestHeaderFieldsTooLarge, "the request's headers are over 80 KiB (\(name))")
    }
    return HTTPError(.badRequest, "malformed HTTP/1.1 request: \(description) (\(name))")
  }

  // The parser's callbacks, on this connection (a non-zero return stops the parser).

  private func messageBegan() -> Int32 {
    messageInProgress = true
    target = []
    body = []
    headerName = []
    headerValue = []
    parsingHeaderValue = false
    expectsContinue = false
    return 0
  }

  private func received(target bytes: UnsafeRawBufferPointer) -> Int32 {
    guard target.count + bytes.count <= context.maxTargetBytes else {
      limitExceeded = HTTPError(
        .uriTooLong, "the request target is longer than \(context.maxTargetBytes) bytes")
      return -1
    }
    target.append(contentsOf: bytes)
    return 0
  }

  private func received(headerName bytes: UnsafeRawBufferPointer) -> Int32 {
    if parsingHeaderValue { headerEnded() }
    headerName.append(contentsOf: bytes)
    return 0
  }

  private func received(headerValue bytes: UnsafeRawBufferPointer) -> Int32 {
    parsingHeaderValue = true
    headerValue.append(contentsOf: bytes)
    return 0
  }

  /// One header is complete. The parser itself handles `Content-Length`, `Transfer-Encoding`
  /// and `Connection`; only `Expect` is ours.
  private func headerEnded() {
    let name = String(decoding: headerName, as: UTF8.self)
    if name.caseInsensitiveCompare("Expect") == .orderedSame {
      let value = String(decoding: headerValue, as: UTF8.self)
      expectsContinue = value.trimmingCharacters(in: .whitespaces).lowercased() == "100-continue"
    }
    headerName = []
    headerValue = []
    parsingHeaderValue = false
  }

  private func headersCompleted() -> Int32 {
    if parsingHeaderValue { headerEnded() }
    let length = parser.pointee.content_length
    if length != UInt64.max, length > UInt64(context.maxBodyBytes) {
      limitExceeded = bodyTooLarge("of \(length) bytes")
      return -1
    }
    // `Expect: 100-continue`: the client waits for this before sending the body. Only sent
    // when no earlier response is pending, which it would overtake; otherwise the client sends
    // the body after its own timeout anyway.
    if expectsContinue, pending.isEmpty, !inFlight, outputSent == output.count {
      write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
    }
    return 0
  }

  private func received(body bytes: UnsafeRawBufferPointer) -> Int32 {
    guard body.count + bytes.count <= context.maxBodyBytes else {
      limitExceeded = bodyTooLarge("over \(body.count + bytes.count) bytes (chunked)")
      return -1
    }
    body.append(contentsOf: bytes)
    return 0
  }

  private func bodyTooLarge(_ size: String) -> HTTPError {
    HTTPError(
      .payloadTooLarge,
      "the request body \(size) is larger than the limit of \(context.maxBodyBytes) bytes")
  }

  private func messageCompleted() -> Int32 {
    messageInProgress = false
    let keepAlive = http_should_keep_alive(parser) != 0
    let method = String(cString: http_method_str(http_method(rawValue: parser.pointee.method)))
    let request = HTTPRequest(
      method: method, target: String(decoding: target, as: UTF8.self), body: body,
      keepAlive: keepAlive, receivedAt: .now)
    pending.append(.request(request))
    target = []
    body = []
    if !keepAlive || draining {
      // No request after this one is read.
      http_parser_pause(parser, 1)
      closeAfterResponses()
    } else if pending.count >= context.maxQueuedRequests {
      http_parser_pause(parser, 1)
    }
    return 0
  }

  /// Sets the parser callbacks, each of which finds its connection through the parser's `data`.
  static func installCallbacks(in settings: UnsafeMutablePointer<http_parser_settings>) {
    http_parser_settings_init(settings)
    settings.pointee.on_message_begin = { HTTPConnection.connection($0).messageBegan() }
    settings.pointee.on_url = {
      HTTPConnection.connection($0).received(target: HTTPConnection.bytes($1, $2))
    }
    settings.pointee.on_header_field = {
      HTTPConnection.connection($0).received(headerName: HTTPConnection.bytes($1, $2))
    }
    settings.pointee.on_header_value = {
      HTTPConnection.connection($0).received(headerValue: HTTPConnection.bytes($1, $2))
    }
    settings.pointee.on_headers_complete = { HTTPConnection.connection($0).headersCompleted() }
    settings.pointee.on_body = {
      HTTPConnection.connection($0).received(body: HTTPConnection.bytes($1, $2))
    }
    settings.pointee.on_message_complete = { HTTPConnection.connection($0).messageCompleted() }
  }

  private static func connection(_ parser: UnsafeMutablePointer<http_parser>?) -> HTTPConnection {
    Unmanaged<HTTPConnection>.fromOpaque(parser!.pointee.data).takeUnretainedValue()
  }

  private static func bytes(_ start: UnsafePointer<CChar>?, _ count: Int) -> UnsafeRawBufferPointer
  {
    UnsafeRawBufferPointer(start: start, count: count)
  }

  // MARK: - Answering

  /// Answers pending requests one at a time, in order: the next starts when the previous
  /// response is written into the output (a handler may answer at once or later).
  private func processPending() {
    guard !processing else { return }  // a handler answered synchronously: the loop goes on
    processing = true
    defer { processing = false }
    repeat {
      while state != .closed, !inFlight, !pending.isEmpty,
        output.count - outputSent < context.maxPendingOutput
      {
        switch pending.removeFirst() {
        case .request(let request):
          inFlight = true
          context.handler(request) { [weak self] response in
            self?.answered(request, with: response)
          }
        case .failure(let error):
          // Nothing after a broken request can be trusted: it is the last answer.
          pending = []
          write(error.response.serialized(close: true))
        }
      }
    } while pending.isEmpty && !inFlight && resumeParsing()
    finishIfDone()
    updateInterest()
  }

  private func answered(_ request: HTTPRequest, with response: HTTPResponse) {
    guard state != .closed, inFlight else { return }
    inFlight = false
    idleTimer?.restart()
    let closing = !request.keepAlive || (state != .open && pending.isEmpty && !messageInProgress)
    write(response.serialized(close: closing, body: request.method != "HEAD"))
    processPending()
  }

  /// Sends what it can now; the rest waits for writability.
  private func write(_ bytes: [UInt8]) {
    if outputSent == output.count {
      output = bytes
      outputSent = 0
    } else {
      output.append(contentsOf: bytes)
    }
    flush()
  }

  private func flush() {
    while outputSent < output.count {
      let count = output.withUnsafeBytes { buffer in
        send(
          fileDescriptor, buffer.baseAddress! + outputSent, buffer.count - outputSent,
          Int32(MSG_NOSIGNAL))
      }
      if count < 0 {
        if errno == EINTR { continue }
        if errno == EAGAIN || errno == EWOULDBLOCK { break }
        close()  // reset or broken pipe: the client is gone
        return
      }
      outputSent += count
    }
    if outputSent == output.count {
      output = []
      outputSent = 0
    }
    updateInterest()
  }

  private func writable() {
    flush()
    processPending()
  }
}
