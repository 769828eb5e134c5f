#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The response side of one unary call as a pure state machine: header fields, DATA bytes
/// and the stream's end go in; a final outcome comes out once, when it is known.
///
/// ```
///  awaitingHeaders ──HEADERS──▶ receivingMessage ──HEADERS+END_STREAM (trailers)──▶ done
///        │                        │ DATA (one length-prefixed message)
///        └─HEADERS+END_STREAM (trailers-only)──────────────────────────────────────▶ done
///  any state ──stream closed / protocol error / size limit──▶ done
/// ```
///
/// gRPC over HTTP/2 (grpc `doc/PROTOCOL-HTTP2.md`): response headers carry `:status` and
/// `content-type: application/grpc`; the message is prefixed by a compressed flag and a
/// 4-byte big-endian length; trailers carry `grpc-status`, `grpc-message` (percent-encoded)
/// and `grpc-status-details-bin` (base64).
struct UnaryResponse {
  enum Outcome: Equatable {
    case success([UInt8])
    /// The call failed; the stream may still be open and should be reset (CANCEL).
    case failure(MilvexError, resetStream: Bool)
  }

  private enum Phase { case awaitingHeaders, receivingMessage, done }

  private var phase = Phase.awaitingHeaders
  private let maxMessageSize: Int

  // The header block being received: read straight off the bytes, so that the usual answer
  // (200, application/grpc, grpc-status 0) allocates nothing; words are kept only for errors.
  private var httpStatus: Int?
  /// The content-type, kept only when it is not gRPC's.
  private var foreignContentType: String?
  private enum StatusField { case absent, code(Int), unreadable(String) }
  private var grpcStatus = StatusField.absent
  private var grpcMessage: [UInt8]?
  private var grpcDetails: [UInt8]?
  private var grpcEncoding: String?

  // The message: the 5-byte prefix (flag, big-endian length), then the bytes.
  private var prefix: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
  private var prefixCount = 0
  private var expectedLength: Int?
  private var message: [UInt8] = []
  private var messageComplete = false

  init(maxMessageSize: Int) {
    self.maxMessageSize = maxMessageSize
  }

  var isDone: Bool { phase == .done }

  mutating func header(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
    guard phase != .done else { return }
    // Called for every header field of every response: compare bytes, not Strings.
    if Self.matches(name, ":status") {
      httpStatus = Self.decimal(value)
    } else if Self.matches(name, "content-type") {
      foreignContentType =
        Self.isGRPCContentType(value) ? nil : String(decoding: value, as: UTF8.self)
    } else if Self.matches(name, "grpc-status") {
      grpcStatus =
        Self.decimal(value).map { .code($0) } ?? .unreadable(String(decoding: value, as: UTF8.self))
    } else if Self.matches(name, "grpc-message") {
      grpcMessage = Array(value)
    } else if Self.matches(name, "grpc-status-details-bin") {
      grpcDetails = Array(value)
    } else if Self.matches(name, "grpc-encoding") {
      grpcEncoding = String(decoding: value, as: UTF8.self)
    }
  }

  private static func matches(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
    bytes.count == literal.utf8CodeUnitCount
      && memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0
  }

  private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
    bytes.count >= literal.utf8CodeUnitCount
      && memcmp(bytes.baseAddress!, literal.utf8Start, literal.utf8CodeUnitCount) == 0
  }

  /// `application/grpc`, or it followed by `+` (a message format) or `;` (parameters).
  private static func isGRPCContentType(_ value: UnsafeRawBufferPointer) -> Bool {
    guard hasPrefix(value, "application/grpc") else { return false }
    let length = "application/grpc".utf8.count
    return value.count == length || value[length] == UInt8(ascii: "+")
      || value[length] == UInt8(ascii: ";")
  }

  /// A non-negative decimal of at most 9 digits, or nil.
  private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
    guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
    var value = 0
    for byte in bytes {
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      value = value * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return value
  }

  mutating func headersComplete(endStream: Bool) -> Outcome? {
    switch phase {
    case .done:
      return nil
    case .awaitingHeaders:
      let status = httpStatus ?? 0
      if status != 200 {
        // Not a gRPC answer; a proxy or a plain HTTP server may send grpc-status anyway.
        if case .absent = grpcStatus {} else if endStream { return finishWithTrailers() }
        let code = GRPCWireFormat.statusCode(forHTTPStatus: status)
        return finish(
          .failure(
            .status(code, "the server answered HTTP \(status) without a gRPC status"),
            resetStream: !endStream))
      }
      if let foreignContentType {
        return finish(
          .failure(.violation(.contentType(foreignContentType)), resetStream: !endStream))
      }
      if endStream {  // trailers-only
        return finishWithTrailers()
      }
      phase = .receivingMessage
      clearHeaderBlock()
      return nil
    case .receivingMessage:
      guard endStream else {
        return finish(
          .failure(
            .violation(
              .framing("the server sent a second HEADERS block that does not end the stream")),
            resetStream: true))
      }
      return finishWithTrailers()
    }
  }

  mutating func data(_ bytes: UnsafeRawBufferPointer) -> Outcome? {
    guard phase == .receivingMessage else {
      if phase == .awaitingHeaders {
        return finish(
          .failure(
            .violation(.framing("the server sent DATA before response headers")), resetStream: true)
        )
      }
      return nil
    }
    var offset = 0
    while offset < bytes.count {
      if messageComplete {
        return finish(.failure(.violation(.moreThanOneMessage), resetStream: true))
      }
      guard let expectedLength else {
        withUnsafeMutableBytes(of: &prefix) { prefixBytes in
          while prefixCount < 5, offset < bytes.count {
            prefixBytes[prefixCount] = bytes[offset]
            prefixCount += 1
            offset += 1
          }
        }
        guard prefixCount == 5 else { break }
        if prefix.0 != 0 {
          return finish(
            .failure(.violation(.unexpectedCompression(encoding: grpcEncoding)), resetStream: true))
        }
        let length = Int(prefix.1) << 24 | Int(prefix.2) << 16 | Int(prefix.3) << 8 | Int(prefix.4)
        if length > maxMessageSize {
          return finish(
            .failure(
              .status(
                .resourceExhausted,
                "response message of \(length) bytes exceeds maxReceiveMessageSize "
                  + "(\(maxMessageSize) bytes)"
              ),
              resetStream: true))
        }
        self.expectedLength = length
        // Not the whole announced length: 5 bytes from a server must not make the client hold
        // maxReceiveMessageSize before any of the message arrived; the array grows as it does.
        message.reserveCapacity(min(length, 64 * 1024))
        if length == 0 { messageComplete = true }
        continue
      }
      let take = min(expectedLength - message.count, bytes.count - offset)
      message.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)]))
      offset += take
      if message.count == expectedLength { messageComplete = true }
    }
    return nil
  }

  /// The HTTP/2 stream closed. `errorCode` is the RST_STREAM or GOAWAY code (0 for none).
  mutating func streamClosed(errorCode: UInt32) -> Outcome? {
    guard phase != .done else { return nil }
    let error: MilvexError
    switch errorCode {
    case HTTP2ErrorCode.refusedStream:
      error = .status(
        .unavailable, "the server refused the stream before processing it (REFUSED_STREAM)")
    case HTTP2ErrorCode.cancel:
      error = .status(.cancelled, "the server cancelled the stream (RST_STREAM CANCEL)")
    case HTTP2ErrorCode.enhanceYourCalm:
      error = .status(.resourceExhausted, "the server reset the stream with ENHANCE_YOUR_CALM")
    case HTTP2ErrorCode.noError:
      error = .status(.internalError, "the stream ended without gRPC trailers")
    default:
      error = .status(
        .internalError, "the server reset the stream with HTTP/2 error code \(errorCode)")
    }
    return finish(.failure(error, resetStream: false))
  }

  private mutating func finishWithTrailers() -> Outcome {
    let rawCode: Int
    switch grpcStatus {
    case .absent: return finish(.failure(.violation(.invalidStatus(nil)), resetStream: false))
    case .unreadable(let text):
      return finish(.failure(.violation(.invalidStatus(text)), resetStream: false))
    case .code(let code): rawCode = code
    }
    let code = GRPCStatusCode(rawValue: rawCode) ?? .unknown
    if code != .ok {
      let text = grpcMessage.map(GRPCWireFormat.percentDecode) ?? ""
      let details = grpcDetails.flatMap(GRPCWireFormat.base64Decode)
      return finish(
        .failure(
          .grpcStatus(GRPCStatus(code: code, message: text, details: details)),
          resetStream: false))
    }
    if let expectedLength, !messageComplete {
      return finish(
        .failure(
          .violation(.truncatedMessage(announced: expectedLength, received: message.count)),
          resetStream: false))
    }
    if prefixCount > 0 && expectedLength == nil {
      return finish(
        .failure(.violation(.truncatedPrefix(received: prefixCount)), resetStream: false))
    }
    guard messageComplete else {
      return finish(.failure(.violation(.noMessage), resetStream: false))
    }
    return finish(.success(message))
  }

  private mutating func finish(_ outcome: Outcome) -> Outcome {
    phase = .done
    message = []
    return outcome
  }

  private mutating func clearHeaderBlock() {
    grpcStatus = .absent
    grpcMessage = nil
    grpcDetails = nil
  }

}
