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

  // The header block being received.
  private var httpStatus: Int?
  private var contentType: String?
  private var grpcStatus: String?
  private var grpcMessage: [UInt8]?
  private var grpcDetails: [UInt8]?
  private var grpcEncoding: String?

  // The message.
  private var prefix: [UInt8] = []
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
      httpStatus = Int(String(decoding: value, as: UTF8.self))
    } else if Self.matches(name, "content-type") {
      contentType = String(decoding: value, as: UTF8.self)
    } else if Self.matches(name, "grpc-status") {
      grpcStatus = String(decoding: value, as: UTF8.self)
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

  mutating func headersComplete(endStream: Bool) -> Outcome? {
    switch phase {
    case .done:
      return nil
    case .awaitingHeaders:
      let status = httpStatus ?? 0
      if status != 200 {
        // Not a gRPC answer; a proxy or a plain HTTP server may send grpc-status anyway.
        if grpcStatus != nil, endStream { return finishWithTrailers() }
        let code = GRPCWireFormat.statusCode(forHTTPStatus: status)
        return finish(.failure(.status(code, "the server answered HTTP \(status) without a gRPC status"),
                               resetStream: !endStream))
      }
      if let contentType, !isGRPCContentType(contentType) {
        return finish(.failure(.violation(.contentType(contentType)), resetStream: !endStream))
      }
      if endStream {  // trailers-only
        return finishWithTrailers()
      }
      phase = .receivingMessage
      clearHeaderBlock()
      return nil
    case .receivingMessage:
      guard endStream else {
        return finish(.failure(.violation(.framing("the server sent a second HEADERS block that does not end the stream")),
                               resetStream: true))
      }
      return finishWithTrailers()
    }
  }

  mutating func data(_ bytes: UnsafeRawBufferPointer) -> Outcome? {
    guard phase == .receivingMessage else {
      if phase == .awaitingHeaders {
        return finish(.failure(.violation(.framing("the server sent DATA before response headers")), resetStream: true))
      }
      return nil
    }
    var remaining = bytes[...]
    while !remaining.isEmpty {
      if messageComplete {
        return finish(.failure(.violation(.moreThanOneMessage), resetStream: true))
      }
      if expectedLength == nil {
        let take = min(5 - prefix.count, remaining.count)
        prefix.append(contentsOf: remaining.prefix(take))
        remaining = remaining.dropFirst(take)
        guard prefix.count == 5 else { break }
        if prefix[0] != 0 {
          return finish(.failure(.violation(.unexpectedCompression(encoding: grpcEncoding)), resetStream: true))
        }
        let length = Int(prefix[1]) << 24 | Int(prefix[2]) << 16 | Int(prefix[3]) << 8 | Int(prefix[4])
        if length > maxMessageSize {
          return finish(.failure(.status(.resourceExhausted,
            "response message of \(length) bytes exceeds maxReceiveMessageSize (\(maxMessageSize) bytes)"),
            resetStream: true))
        }
        expectedLength = length
        // Not the whole announced length: 5 bytes from a server must not make the client hold
        // maxReceiveMessageSize before any of the message arrived; the array grows as it does.
        message.reserveCapacity(min(length, 64 * 1024))
        if length == 0 { messageComplete = true }
        continue
      }
      let need = expectedLength! - message.count
      let take = min(need, remaining.count)
      message.append(contentsOf: remaining.prefix(take))
      remaining = remaining.dropFirst(take)
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
      error = .status(.unavailable, "the server refused the stream before processing it (REFUSED_STREAM)")
    case HTTP2ErrorCode.cancel:
      error = .status(.cancelled, "the server cancelled the stream (RST_STREAM CANCEL)")
    case HTTP2ErrorCode.enhanceYourCalm:
      error = .status(.resourceExhausted, "the server reset the stream with ENHANCE_YOUR_CALM")
    case HTTP2ErrorCode.noError:
      error = .status(.internalError, "the stream ended without gRPC trailers")
    default:
      error = .status(.internalError, "the server reset the stream with HTTP/2 error code \(errorCode)")
    }
    return finish(.failure(error, resetStream: false))
  }

  private mutating func finishWithTrailers() -> Outcome {
    guard let statusText = grpcStatus, let rawCode = Int(statusText) else {
      return finish(.failure(.violation(.invalidStatus(grpcStatus)), resetStream: false))
    }
    let code = GRPCStatusCode(rawValue: rawCode) ?? .unknown
    if code != .ok {
      let text = grpcMessage.map(GRPCWireFormat.percentDecode) ?? ""
      let details = grpcDetails.flatMap(GRPCWireFormat.base64Decode)
      return finish(.failure(.grpcStatus(GRPCStatus(code: code, message: text, details: details)),
                             resetStream: false))
    }
    if let expectedLength, !messageComplete {
      return finish(.failure(.violation(.truncatedMessage(announced: expectedLength, received: message.count)),
                             resetStream: false))
    }
    if !prefix.isEmpty && expectedLength == nil {
      return finish(.failure(.violation(.truncatedPrefix(received: prefix.count)), resetStream: false))
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
    grpcStatus = nil
    grpcMessage = nil
    grpcDetails = nil
  }

  private func isGRPCContentType(_ value: String) -> Bool {
    value == "application/grpc" || value.hasPrefix("application/grpc+") || value.hasPrefix("application/grpc;")
  }
}
