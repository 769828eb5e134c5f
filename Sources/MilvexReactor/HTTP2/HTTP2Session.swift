import CNGHTTP2

/// What an ``HTTP2Session`` reports about the peer's frames. All calls happen on the loop
/// thread, from inside ``HTTP2Session/receive(_:)``.
protocol HTTP2SessionDelegate: AnyObject {
  /// The server's SETTINGS arrived (the first one completes the handshake).
  func http2SettingsReceived()
  /// One header field of a HEADERS block on `streamID`.
  func http2Header(streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
  /// A HEADERS block on `streamID` is complete; `endStream` marks trailers (or trailers-only).
  func http2HeadersComplete(streamID: Int32, endStream: Bool)
  /// DATA payload bytes on `streamID`; valid only during the call.
  func http2Data(streamID: Int32, bytes: UnsafeRawBufferPointer)
  /// The peer ended `streamID` (END_STREAM on a DATA frame).
  func http2DataEnded(streamID: Int32)
  /// `streamID` is closed; `errorCode` is 0 for a normal end, else the RST_STREAM/GOAWAY code.
  func http2StreamClosed(streamID: Int32, errorCode: UInt32)
  /// The peer sent GOAWAY.
  func http2GoAway(lastStreamID: Int32, errorCode: UInt32, debugData: [UInt8])
  /// The peer acknowledged our PING.
  func http2PingAcknowledged()
  /// Fills `buffer` with request body bytes for `streamID`; returns the count and whether
  /// the body ended.
  func http2RequestBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, ended: Bool)
}

/// The client side of one HTTP/2 connection, driven by bytes in and bytes out: nghttp2 in its
/// I/O-agnostic mode (`nghttp2_session_mem_recv` / `nghttp2_session_mem_send`). It never
/// touches a socket; ``GRPCConnection`` reads and writes for it.
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

  private var session: OpaquePointer?
  private unowned let delegate: any HTTP2SessionDelegate
  /// The last error nghttp2 reported (for the close reason).
  private(set) var lastError: String?

  init(delegate: any HTTP2SessionDelegate, settings: Settings) throws(MilvexError) {
    self.delegate = delegate
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
  }

  /// Feeds bytes read from the socket. Returns an error for a fatal protocol failure; for a
  /// peer protocol error nghttp2 queues a GOAWAY and ``isFinished`` turns true.
  func receive(_ bytes: UnsafeRawBufferPointer) -> MilvexError? {
    guard let session, let base = bytes.baseAddress else { return nil }
    let rc = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    if rc < 0 {
      return .protocolViolation("HTTP/2 error: \(HTTP2Session.describe(Int32(rc)))")
    }
    return nil
  }

  /// Appends every frame nghttp2 wants to send to `output`.
  func drainOutput(into output: inout [UInt8]) -> MilvexError? {
    guard let session else { return nil }
    while true {
      var chunk: UnsafePointer<UInt8>?
      let count = nghttp2_session_mem_send(session, &chunk)
      if count < 0 {
        return .protocolViolation("HTTP/2 error: \(HTTP2Session.describe(Int32(count)))")
      }
      guard count > 0, let chunk else { return nil }
      output.append(contentsOf: UnsafeBufferPointer(start: chunk, count: count))
    }
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

  /// Submits a request whose body is read through the delegate. Returns the stream id.
  func submitRequest(headers: HeaderBlock) -> Result<Int32, MilvexError> {
    guard let session else { return .failure(.protocolViolation("the HTTP/2 session is closed")) }
    var provider = nghttp2_data_provider()
    provider.read_callback = { session, streamID, buffer, length, flags, _, userData in
      guard let userData, let buffer, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
      let this = Unmanaged<HTTP2Session>.fromOpaque(userData).takeUnretainedValue()
      let (count, ended) = this.delegate.http2RequestBody(
        streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length))
      if ended { flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) }
      return count
    }
    let streamID = headers.withNameValuePairs { pairs, count in
      nghttp2_submit_request(session, nil, pairs, count, &provider, nil)
    }
    if streamID < 0 {
      return .failure(.protocolViolation("could not start an HTTP/2 stream: \(HTTP2Session.describe(streamID))"))
    }
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


  private static func install(_ callbacks: OpaquePointer) {
    nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
      guard let frame, let name, let value else { return 0 }
      sessionFrom(userData).delegate.http2Header(
        streamID: frame.pointee.hd.stream_id,
        name: UnsafeRawBufferPointer(start: name, count: nameLength),
        value: UnsafeRawBufferPointer(start: value, count: valueLength))
      return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
      guard let frame else { return 0 }
      let this = sessionFrom(userData)
      let header = frame.pointee.hd
      let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
      switch UInt32(header.type) {
      case NGHTTP2_HEADERS.rawValue:
        this.delegate.http2HeadersComplete(streamID: header.stream_id, endStream: endStream)
      case NGHTTP2_DATA.rawValue:
        if endStream { this.delegate.http2DataEnded(streamID: header.stream_id) }
      case NGHTTP2_SETTINGS.rawValue:
        if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { this.delegate.http2SettingsReceived() }
      case NGHTTP2_PING.rawValue:
        if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { this.delegate.http2PingAcknowledged() }
      case NGHTTP2_GOAWAY.rawValue:
        let goaway = frame.pointee.goaway
        var debug: [UInt8] = []
        if let data = goaway.opaque_data, goaway.opaque_data_len > 0 {
          debug = Array(UnsafeBufferPointer(start: data, count: goaway.opaque_data_len))
        }
        this.delegate.http2GoAway(lastStreamID: goaway.last_stream_id, errorCode: goaway.error_code, debugData: debug)
      default:
        break
      }
      return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
      guard let data else { return 0 }
      sessionFrom(userData).delegate.http2Data(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
      return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
      sessionFrom(userData).delegate.http2StreamClosed(streamID: streamID, errorCode: errorCode)
      return 0
    }
    nghttp2_session_callbacks_set_error_callback2(callbacks) { _, _, message, length, userData in
      if let message {
        let bytes = UnsafeRawBufferPointer(start: message, count: length)
        sessionFrom(userData).lastError = String(decoding: bytes, as: UTF8.self)
      }
      return 0
    }
  }
}

/// The session behind nghttp2's `user_data`.
private func sessionFrom(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
  Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
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
      fields.append((field.nameStart + offset, field.nameLength, field.valueStart + offset, field.valueLength))
    }
  }

  var count: Int { fields.count }

  func withNameValuePairs<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
    bytes.withUnsafeBufferPointer { buffer in
      // nghttp2_nv's pointers are not const, but nghttp2 copies the fields without NO_COPY
      // flags and never writes through them.
      let base = UnsafeMutablePointer(mutating: buffer.baseAddress!)
      // On the stack for the usual handful of fields: no array allocation per request.
      return withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(fields.count, 1)) { pairs in
        for (index, field) in fields.enumerated() {
          (pairs.baseAddress! + index).initialize(to: nghttp2_nv(
            name: base + field.nameStart, value: base + field.valueStart,
            namelen: field.nameLength, valuelen: field.valueLength,
            flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
        }
        return body(pairs.baseAddress!, fields.count)
      }
    }
  }
}
