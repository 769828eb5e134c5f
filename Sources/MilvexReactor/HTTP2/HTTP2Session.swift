import CMilvexNGHTTP2

/// What the peer's frames meant, in order, as ``HTTP2Session/receive(_:)`` and
/// ``HTTP2Session/drainOutput(into:)`` return them (python-hyper h2's model: events are
/// returned, never pushed, so nothing above runs inside nghttp2).
enum HTTP2Event {
  /// A complete HEADERS block on `streamID`; its fields are `fields` of
  /// ``HTTP2Session/withHeaderField(_:_:)``. `endStream` marks trailers (or trailers-only).
  case headers(streamID: Int32, fields: Range<Int>, endStream: Bool)
  /// DATA payload on `streamID`. It points into the bytes given to `receive`, so it is valid
  /// while they are (the caller handles the events before it reads again).
  case data(streamID: Int32, bytes: UnsafeRawBufferPointer)
  /// `streamID` is closed; `errorCode` is 0 for a normal end, else the RST_STREAM/GOAWAY code.
  case streamClosed(streamID: Int32, errorCode: UInt32)
  /// The server's SETTINGS arrived (the first one completes the handshake).
  case settings
  /// The server acknowledged our PING.
  case pingAcknowledged
  /// The server sent GOAWAY.
  /// (Its debug data is ``HTTP2Session/goAwayDebugData``: events stay plain values, cheap to
  /// copy.)
  case goAway(lastStreamID: Int32, errorCode: UInt32)
}

/// A request body the session reads from as flow control allows; it holds the body for its
/// stream until the stream closes.
protocol HTTP2RequestBody: AnyObject {
  /// Fills `buffer` with the next bytes; returns the count and whether the body ended.
  func read(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, ended: Bool)
}

/// The client side of one HTTP/2 connection, sans I/O: bytes in, events out
/// (``receive(_:)``), frames out pulled by the caller (``drainOutput(into:)``), nghttp2 in its
/// I/O-agnostic mode (`nghttp2_session_mem_recv` / `nghttp2_session_mem_send`). It never
/// touches a socket and calls nothing above it: nghttp2's callbacks only record events, header
/// fields (copied once into a reusable buffer) and request bodies (held per stream here).
///
/// HPACK, flow control (with automatic WINDOW_UPDATE), SETTINGS and PING acknowledgement are
/// nghttp2's. RFC 9113 governs; nghttp2 turns every peer protocol error into a GOAWAY and
/// stops wanting to read (``isFinished``).
///
/// - Important: Loop-confined.
final class HTTP2Session {
  struct Settings {
    var initialStreamWindow: Int32
    var initialConnectionWindow: Int32
    var maxHeaderListSize: UInt32 = 16 << 20
  }

  @exclusivity(unchecked) private var session: OpaquePointer?
  /// The last error nghttp2 reported (for the close reason).
  private(set) var lastError: String?
  /// Events recorded by nghttp2's callbacks during the current `receive` or `drainOutput`.
  @exclusivity(unchecked) private var events: [HTTP2Event] = []
  /// The header fields of this batch of events: their bytes (`headerByteCount` of
  /// `headerByteCapacity`, grown by doubling, never moved during a batch's handling), and
  /// where each name and value is.
  @exclusivity(unchecked) private var headerBytes: UnsafeMutableRawPointer
  @exclusivity(unchecked) private var headerByteCount = 0
  /// 0 until the first header field arrives: an idle connection holds no arena.
  @exclusivity(unchecked) private var headerByteCapacity = 0
  @exclusivity(unchecked) private var headerFields: [(name: Range<Int>, value: Range<Int>)] = []
  /// Where the fields of the HEADERS block being received start.
  @exclusivity(unchecked) private var blockStart = 0
  /// The debug data of the last GOAWAY received.
  private(set) var goAwayDebugData: [UInt8] = []
  /// The body of each open stream, until it closes.
  @exclusivity(unchecked) private var bodies = StreamTable<any HTTP2RequestBody>()

  init(settings: Settings) throws(MilvexError) {
    headerBytes = .allocate(byteCount: 0, alignment: 1)
    var callbacks: OpaquePointer?
    guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
      throw .protocolViolation("nghttp2 could not allocate its callbacks")
    }
    defer { nghttp2_session_callbacks_del(callbacks) }
    HTTP2Session.install(callbacks)
    var option: OpaquePointer?
    nghttp2_option_new(&option)
    defer { nghttp2_option_del(option) }
    // The gRPC layer reads trailers as headers; let nghttp2 keep HTTP messaging checks on.
    nghttp2_option_set_max_reserved_remote_streams(option, 0)
    var raw: OpaquePointer?
    let rc = nghttp2_session_client_new2(&raw, callbacks, nil, option)
    guard rc == 0, let raw else {
      throw .protocolViolation("nghttp2 could not create a session: \(HTTP2Session.describe(rc))")
    }
    session = raw
    nghttp2_session_set_user_data(raw, Unmanaged.passUnretained(self).toOpaque())
    var entries = [
      nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
        value: UInt32(settings.initialStreamWindow)),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
        value: settings.maxHeaderListSize),
    ]
    nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
    nghttp2_session_set_local_window_size(
      raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.initialConnectionWindow)
  }

  deinit {
    if let session { nghttp2_session_del(session) }
    headerBytes.deallocate()
  }

  /// What a call into the session produced: the events, in order, and a fatal error (for a
  /// peer protocol error nghttp2 instead queues a GOAWAY and ``isFinished`` turns true).
  struct Outcome {
    var events: [HTTP2Event]
    var error: MilvexError?
  }

  /// Feeds bytes read from the socket and returns what they meant. The events' header fields
  /// and DATA pointers are valid until the next call into the session.
  func receive(_ bytes: UnsafeRawBufferPointer) -> Outcome {
    startBatch()
    guard let session, let base = bytes.baseAddress else { return Outcome(events: []) }
    let rc = nghttp2_session_mem_recv(
      session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    let error: MilvexError? =
      rc < 0
      ? .protocolViolation("HTTP/2 error: \(HTTP2Session.describe(Int32(truncatingIfNeeded: rc)))")
      : nil
    return Outcome(events: events, error: error)
  }

  /// Appends every frame nghttp2 wants to send to `output`. Sending can close streams (after
  /// a RST_STREAM, say): those come back as events.
  func drainOutput(into output: inout [UInt8]) -> Outcome {
    // Only the events: header fields of the last `receive` stay valid for its events.
    events.removeAll(keepingCapacity: true)
    guard let session else { return Outcome(events: []) }
    while true {
      var chunk: UnsafePointer<UInt8>?
      let count = nghttp2_session_mem_send(session, &chunk)
      if count < 0 {
        return Outcome(
          events: events,
          error: .protocolViolation(
            "HTTP/2 error: \(HTTP2Session.describe(Int32(truncatingIfNeeded: count)))"))
      }
      guard count > 0, let chunk else { return Outcome(events: events) }
      output.append(contentsOf: UnsafeBufferPointer(start: chunk, count: count))
    }
  }

  /// Runs `body` with header field `index` of the latest batch (see ``HTTP2Event/headers``).
  func withHeaderField<R>(
    _ index: Int, _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> R
  ) -> R {
    let field = headerFields[index]
    return body(
      UnsafeRawBufferPointer(start: headerBytes + field.name.lowerBound, count: field.name.count),
      UnsafeRawBufferPointer(start: headerBytes + field.value.lowerBound, count: field.value.count))
  }

  /// Copies `count` bytes from `source` to the end of the header bytes; returns where they are.
  private func appendHeaderBytes(_ source: UnsafePointer<UInt8>, _ count: Int) -> Range<Int> {
    if headerByteCount + count > headerByteCapacity {
      var capacity = max(512, headerByteCapacity * 2)
      while headerByteCount + count > capacity { capacity *= 2 }
      let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 1)
      grown.copyMemory(from: headerBytes, byteCount: headerByteCount)
      headerBytes.deallocate()
      headerBytes = grown
      headerByteCapacity = capacity
    }
    (headerBytes + headerByteCount).copyMemory(from: source, byteCount: count)
    let start = headerByteCount
    headerByteCount += count
    return start..<headerByteCount
  }

  private func startBatch() {
    events.removeAll(keepingCapacity: true)
    headerByteCount = 0
    headerFields.removeAll(keepingCapacity: true)
    blockStart = 0
  }

  /// True once nghttp2 wants neither to read nor to write: the connection is over.
  var isFinished: Bool {
    guard let session else { return true }
    return nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
  }

  /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until its SETTINGS arrive).
  var remoteMaxConcurrentStreams: UInt32 {
    guard let session else { return 0 }
    return nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
  }

  /// Submits a request; the session holds `body` and reads it as flow control allows, until
  /// the stream closes. Returns the stream id.
  func submitRequest(
    fields: UnsafePointer<nghttp2_nv>, count: Int, body: any HTTP2RequestBody
  ) -> Result<Int32, MilvexError> {
    guard let session else { return .failure(.protocolViolation("the HTTP/2 session is closed")) }
    var provider = nghttp2_data_provider()
    provider.read_callback = { _, streamID, buffer, length, flags, _, userData in
      guard let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
      return withSession(userData) { this in
        guard let body = this.bodies[streamID] else {
          flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
          return 0
        }
        let (count, ended) = body.read(
          into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
        if ended { flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) }
        return count
      }
    }
    let streamID = nghttp2_submit_request(session, nil, fields, count, &provider, nil)
    if streamID < 0 {
      return .failure(
        .protocolViolation("could not start an HTTP/2 stream: \(HTTP2Session.describe(streamID))"))
    }
    bodies.insert(body, id: streamID)
    return .success(streamID)
  }

  /// Resets `streamID` with `errorCode` (RFC 9113 §6.4).
  func resetStream(_ streamID: Int32, errorCode: UInt32) {
    guard let session else { return }
    nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
  }

  /// Sends a PING (RFC 9113 §6.7).
  func ping() {
    guard let session else { return }
    nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
  }

  /// Queues a GOAWAY with `errorCode`; the session then finishes once it is written.
  func terminate(errorCode: UInt32) {
    guard let session else { return }
    nghttp2_session_terminate_session(session, errorCode)
  }

  static func describe(_ code: Int32) -> String {
    String(cString: nghttp2_strerror(code))
  }

  /// nghttp2's callbacks only record, through the instance methods below.
  private static func install(_ callbacks: OpaquePointer) {
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, _, userData in
      withSession(userData) { $0.blockStart = $0.headerFields.count }
      return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
      _, _, name, nameLength, value, valueLength, _, userData in
      guard let name, let value else { return 0 }
      withSession(userData) { this in
        let nameRange = this.appendHeaderBytes(name, nameLength)
        this.headerFields.append((nameRange, this.appendHeaderBytes(value, valueLength)))
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
      guard let frame else { return 0 }
      withSession(userData) { $0.received(frame) }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
      _, _, streamID, data, length, userData in
      guard let data else { return 0 }
      withSession(userData) {
        $0.events.append(
          .data(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length)))
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) {
      _, streamID, errorCode, userData in
      withSession(userData) { this in
        this.bodies.remove(streamID)
        this.events.append(.streamClosed(streamID: streamID, errorCode: errorCode))
      }
      return 0
    }
    nghttp2_session_callbacks_set_error_callback2(callbacks) { _, _, message, length, userData in
      if let message {
        let bytes = UnsafeRawBufferPointer(start: message, count: length)
        withSession(userData) { $0.lastError = String(decoding: bytes, as: UTF8.self) }
      }
      return 0
    }
  }

  /// Records what a complete frame means (HEADERS, SETTINGS, PING ACK, GOAWAY).
  private func received(_ frame: UnsafePointer<nghttp2_frame>) {
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(header.type) {
    case NGHTTP2_HEADERS.rawValue:
      events.append(
        .headers(
          streamID: header.stream_id, fields: blockStart..<headerFields.count,
          endStream: endStream))
      blockStart = headerFields.count
    case NGHTTP2_SETTINGS.rawValue:
      if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { events.append(.settings) }
    case NGHTTP2_PING.rawValue:
      if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { events.append(.pingAcknowledged) }
    case NGHTTP2_GOAWAY.rawValue:
      let goaway = frame.pointee.goaway
      goAwayDebugData = []
      if let data = goaway.opaque_data, goaway.opaque_data_len > 0 {
        goAwayDebugData = Array(UnsafeBufferPointer(start: data, count: goaway.opaque_data_len))
      }
      events.append(.goAway(lastStreamID: goaway.last_stream_id, errorCode: goaway.error_code))
    default:
      // END_STREAM on DATA needs no event: a unary response ends with trailers, and a
      // stream that ends without them is reported by its close.
      break
    }
  }
}

/// Runs `body` with the session behind nghttp2's `user_data`, without retaining it: nghttp2
/// calls back only from inside a call into the session, whose caller holds a reference.
private func withSession<R>(
  _ userData: UnsafeMutableRawPointer?, _ body: (HTTP2Session) -> R
) -> R {
  Unmanaged<HTTP2Session>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
}

/// HTTP/2 error codes used by this library (RFC 9113 §7).
enum HTTP2ErrorCode {
  static let noError: UInt32 = 0x0
  static let protocolError: UInt32 = 0x1
  static let internalError: UInt32 = 0x2
  static let refusedStream: UInt32 = 0x7
  static let cancel: UInt32 = 0x8
  static let enhanceYourCalm: UInt32 = 0xb
}

/// Header fields laid out once in one buffer, handed to nghttp2 as `nghttp2_nv` (which copies).
struct HeaderBlock {
  private var bytes: [UInt8] = []
  private var fields: [(nameStart: Int, nameLength: Int, valueStart: Int, valueLength: Int)] = []

  init() {
    bytes.reserveCapacity(256)
  }

  mutating func add(_ name: String, _ value: String) {
    let nameStart = bytes.count
    bytes.append(contentsOf: name.utf8)
    let valueStart = bytes.count
    bytes.append(contentsOf: value.utf8)
    fields.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
  }

  /// Adds a field whose value `writeValue` appends as bytes (no String on the way).
  mutating func add(_ name: String, writeValue: (inout [UInt8]) -> Void) {
    let nameStart = bytes.count
    bytes.append(contentsOf: name.utf8)
    let valueStart = bytes.count
    writeValue(&bytes)
    fields.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
  }

  /// Adds every field of `other`, after the fields already here.
  mutating func append(_ other: HeaderBlock) {
    let offset = bytes.count
    bytes.append(contentsOf: other.bytes)
    for field in other.fields {
      fields.append(
        (field.nameStart + offset, field.nameLength, field.valueStart + offset, field.valueLength))
    }
  }

  var count: Int { fields.count }

  /// Bytes of all names and values.
  var byteCount: Int { bytes.count }

  /// Runs `body` with each field's name and value, in order.
  func forEachField(
    _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void
  ) {
    bytes.withUnsafeBytes { buffer in
      for field in fields {
        body(
          UnsafeRawBufferPointer(rebasing: buffer[field.nameStart..<(field.valueStart)]),
          UnsafeRawBufferPointer(
            rebasing: buffer[field.valueStart..<(field.valueStart + field.valueLength)]))
      }
    }
  }

  /// Removes every field, keeping the storage for the next ones.
  mutating func removeAll() {
    bytes.removeAll(keepingCapacity: true)
    fields.removeAll(keepingCapacity: true)
  }

  /// Makes room for `fields` fields of `bytes` bytes in all, so that adding them does not
  /// reallocate (on a copy, this is the one copy).
  mutating func reserveCapacity(fields: Int, bytes: Int) {
    self.fields.reserveCapacity(fields)
    self.bytes.reserveCapacity(bytes)
  }

  func withNameValuePairs<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
    bytes.withUnsafeBufferPointer { buffer in
      // nghttp2_nv's pointers are not const, but nghttp2 copies the fields without NO_COPY
      // flags and never writes through them.
      let base = UnsafeMutablePointer(mutating: buffer.baseAddress!)
      // On the stack for the usual handful of fields: no array allocation per request.
      return withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(fields.count, 1)) {
        pairs in
        for (index, field) in fields.enumerated() {
          (pairs.baseAddress! + index).initialize(
            to: nghttp2_nv(
              name: base + field.nameStart, value: base + field.valueStart,
              namelen: field.nameLength, valuelen: field.valueLength,
              flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
        }
        return body(pairs.baseAddress!, fields.count)
      }
    }
  }
}
