import CMilvexNGHTTP2

/// One complete gRPC request as the server side of HTTP/2 received it: the header fields
/// (pseudo-headers included, names lower-case as HTTP/2 requires) and the whole request body.
struct TestServerRequest {
  var streamID: Int32
  var headers: [(name: String, value: String)] = []
  var body: [UInt8] = []

  /// The value of the first header field named `name`.
  func header(_ name: String) -> String? {
    headers.first { $0.name == name }?.value
  }
}

/// What the client's frames meant, in order, as `TestServerSession/receive(_:)` returns them
/// (h2's model: events are returned, never pushed, so nothing above runs inside nghttp2).
enum TestServerSessionEvent {
  /// A request is complete (its END_STREAM arrived).
  case request(TestServerRequest)
  /// The client sent a PING (nghttp2 has queued the acknowledgement).
  case ping
  /// `streamID` closed; `errorCode` is 0 for a normal end, else the RST_STREAM code.
  case streamClosed(streamID: Int32, errorCode: UInt32)
}

/// The server side of one HTTP/2 connection, sans I/O: bytes in, events out
/// (`receive(_:)`), frames out pulled by the caller (`drainOutput(into:)`). nghttp2 in
/// its I/O-agnostic mode (`nghttp2_session_mem_recv` / `nghttp2_session_mem_send`); it never
/// touches a socket, and its callbacks only record.
///
/// A response is a gRPC answer (RFC 9113 §8.1, gRPC PROTOCOL-HTTP2): HEADERS (`:status` 200,
/// `content-type: application/grpc`), one length-prefixed message in DATA, trailers with
/// `grpc-status`; or, for an error, one trailers-only HEADERS frame.
///
/// - Important: Loop-confined (the test server's loop thread).
final class TestServerSession {
  @exclusivity(unchecked) private var session: OpaquePointer?
  @exclusivity(unchecked) private var events: [TestServerSessionEvent] = []
  /// Requests whose END_STREAM has not arrived yet.
  @exclusivity(unchecked) private var partial: [Int32: TestServerRequest] = [:]
  /// Response bodies not yet handed to nghttp2, with the trailers that follow them.
  @exclusivity(unchecked) private var bodies: [Int32: PendingBody] = [:]
  /// Streams opened by the client and not closed yet.
  private(set) var openStreams: Set<Int32> = []

  private struct PendingBody {
    var bytes: [UInt8]
    var offset = 0
  }

  /// Creates the session and queues the server's SETTINGS (the server connection preface).
  init() throws(TestServerError) {
    var callbacks: OpaquePointer?
    guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
      throw TestServerError("nghttp2 could not allocate its callbacks")
    }
    defer { nghttp2_session_callbacks_del(callbacks) }
    Self.install(callbacks)
    var raw: OpaquePointer?
    let rc = nghttp2_session_server_new(&raw, callbacks, nil)
    guard rc == 0, let raw else {
      throw TestServerError("nghttp2 could not create a server session: \(Self.describe(rc))")
    }
    session = raw
    nghttp2_session_set_user_data(raw, Unmanaged.passUnretained(self).toOpaque())
    var entries = [
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: 1000)
    ]
    nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
  }

  deinit {
    if let session { nghttp2_session_del(session) }
  }

  /// Feeds bytes read from the client; returns what they meant, or why the connection must
  /// end (nghttp2 has then queued a GOAWAY for a protocol error).
  func receive(_ bytes: UnsafeRawBufferPointer) -> Result<[TestServerSessionEvent], TestServerError>
  {
    events.removeAll(keepingCapacity: true)
    guard let session, let base = bytes.baseAddress, bytes.count > 0 else { return .success([]) }
    let rc = nghttp2_session_mem_recv(
      session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    if rc < 0 {
      return .failure(
        TestServerError(
          "HTTP/2 error from the client: \(Self.describe(Int32(truncatingIfNeeded: rc)))"))
    }
    return .success(events)
  }

  /// Appends every frame nghttp2 wants to send to `output`; returns the events sending made
  /// (streams closed by a response's end).
  func drainOutput(into output: inout [UInt8]) -> [TestServerSessionEvent] {
    events.removeAll(keepingCapacity: true)
    guard let session else { return [] }
    while true {
      var chunk: UnsafePointer<UInt8>?
      let count = nghttp2_session_mem_send(session, &chunk)
      guard count > 0, let chunk else { return events }
      output.append(contentsOf: UnsafeBufferPointer(start: chunk, count: count))
    }
  }

  /// True once nghttp2 wants neither to read nor to write (after a GOAWAY both ways, or a
  /// fatal error).
  var isFinished: Bool {
    guard let session else { return true }
    return nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
  }

  /// Answers `streamID` with one message and `grpc-status: 0`.
  func respond(streamID: Int32, message: [UInt8]) {
    guard let session, openStreams.contains(streamID) else { return }
    // gRPC's length prefix is 32 bits: a larger scripted answer is refused, not trapped on.
    guard let length = UInt32(exactly: message.count) else {
      return respond(
        streamID: streamID, status: 8, message: "the scripted answer exceeds 4 GiB")
    }
    var framed: [UInt8] = [0]
    framed += [
      UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff),
      UInt8(length & 0xff),
    ]
    framed += message
    bodies[streamID] = PendingBody(bytes: framed)
    var provider = nghttp2_data_provider()
    provider.read_callback = { session, streamID, buffer, length, flags, _, userData in
      guard let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
      return withServerSession(userData) { this in
        this.readBody(session, streamID, buffer, length, flags)
      }
    }
    let headers = [(":status", "200"), ("content-type", "application/grpc")]
    _ = Self.withPairs(headers) { pairs, count in
      nghttp2_submit_response(session, streamID, pairs, count, &provider)
    }
  }

  /// Answers `streamID` with a trailers-only response carrying `code` and `message`.
  func respond(streamID: Int32, status code: Int, message: String) {
    guard let session, openStreams.contains(streamID) else { return }
    var fields: [(String, String)] = [
      (":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "\(code)"),
    ]
    if !message.isEmpty { fields.append(("grpc-message", Self.percentEncode(message))) }
    _ = Self.withPairs(fields) { pairs, count in
      nghttp2_submit_response(session, streamID, pairs, count, nil)
    }
  }

  /// Queues a GOAWAY (RFC 9113 §6.8) naming the last stream the server processed, with
  /// `errorCode` and `debugData`; streams opened after it are refused by nghttp2.
  func goAway(errorCode: UInt32, debugData: String) {
    guard let session else { return }
    let lastStream = nghttp2_session_get_last_proc_stream_id(session)
    var bytes = Array(debugData.utf8)
    nghttp2_submit_goaway(
      session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStream, errorCode, &bytes, bytes.count)
  }

  private func readBody(
    _ session: OpaquePointer?, _ streamID: Int32, _ buffer: UnsafeMutablePointer<UInt8>,
    _ length: Int, _ flags: UnsafeMutablePointer<UInt32>
  ) -> Int {
    guard var body = bodies[streamID] else {
      flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
      return 0
    }
    let count = min(length, body.bytes.count - body.offset)
    body.bytes.withUnsafeBytes { bytes in
      UnsafeMutableRawPointer(buffer).copyMemory(
        from: bytes.baseAddress! + body.offset, byteCount: count)
    }
    body.offset += count
    if body.offset == body.bytes.count {
      bodies[streamID] = nil
      // The trailers end the stream (gRPC: status after the message).
      flags.pointee |= UInt32(
        NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
      _ = Self.withPairs([("grpc-status", "0")]) { pairs, pairCount in
        nghttp2_submit_trailer(session, streamID, pairs, pairCount)
      }
    } else {
      bodies[streamID] = body
    }
    return count
  }

  // MARK: - nghttp2's callbacks (they only record)

  private static func install(_ callbacks: OpaquePointer) {
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
      guard let frame else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      withServerSession(userData) { this in
        if this.partial[streamID] == nil {
          this.partial[streamID] = TestServerRequest(streamID: streamID)
          this.openStreams.insert(streamID)
        }
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
      _, frame, name, nameLength, value, valueLength, _, userData in
      guard let frame, let name, let value else { return 0 }
      let streamID = frame.pointee.hd.stream_id
      let field = (
        String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self),
        String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)
      )
      withServerSession(userData) { $0.partial[streamID]?.headers.append(field) }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
      _, _, streamID, data, length, userData in
      guard let data else { return 0 }
      withServerSession(userData) {
        $0.partial[streamID]?.body.append(
          contentsOf: UnsafeBufferPointer(start: data, count: length))
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
      guard let frame else { return 0 }
      withServerSession(userData) { $0.received(frame) }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) {
      _, streamID, errorCode, userData in
      withServerSession(userData) { this in
        this.partial[streamID] = nil
        this.bodies[streamID] = nil
        this.openStreams.remove(streamID)
        this.events.append(.streamClosed(streamID: streamID, errorCode: errorCode))
      }
      return 0
    }
  }

  private func received(_ frame: UnsafePointer<nghttp2_frame>) {
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
      if endStream, let request = partial.removeValue(forKey: header.stream_id) {
        events.append(.request(request))
      }
    case NGHTTP2_PING.rawValue:
      if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { events.append(.ping) }
    default:
      break
    }
  }

  // MARK: - Header fields

  /// Runs `body` with `fields` as `nghttp2_nv`s pointing into one buffer (nghttp2 copies
  /// them).
  private static func withPairs<R>(
    _ fields: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R
  ) -> R {
    var bytes: [UInt8] = []
    var ranges: [(name: Int, nameLength: Int, value: Int, valueLength: Int)] = []
    for (name, value) in fields {
      let nameStart = bytes.count
      bytes += name.utf8
      let valueStart = bytes.count
      bytes += value.utf8
      ranges.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
    }
    bytes.append(0)  // never empty
    return bytes.withUnsafeMutableBufferPointer { buffer in
      let base = buffer.baseAddress!
      let pairs = ranges.map {
        nghttp2_nv(
          name: base + $0.name, value: base + $0.value, namelen: $0.nameLength,
          valuelen: $0.valueLength, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
      }
      return pairs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
  }

  /// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
  static func percentEncode(_ text: String) -> String {
    var output = ""
    for byte in text.utf8 {
      if byte >= 0x20 && byte <= 0x7e && byte != UInt8(ascii: "%") {
        output.unicodeScalars.append(Unicode.Scalar(byte))
      } else {
        let hex = Array("0123456789ABCDEF".utf8)
        output +=
          "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xf)]], as: UTF8.self)
      }
    }
    return output
  }

  static func describe(_ code: Int32) -> String {
    String(cString: nghttp2_strerror(code))
  }
}

/// Runs `body` with the session behind nghttp2's `user_data`, without retaining it: nghttp2
/// calls back only from inside a call into the session, whose caller holds a reference.
private func withServerSession<R>(
  _ userData: UnsafeMutableRawPointer?, _ body: (TestServerSession) -> R
) -> R {
  body(Unmanaged<TestServerSession>.fromOpaque(userData!).takeUnretainedValue())
}
