/// A gRPC status code (grpc's `doc/statuscodes.md`).
public enum GRPCStatusCode: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
  case ok = 0
  case cancelled = 1
  case unknown = 2
  case invalidArgument = 3
  case deadlineExceeded = 4
  case notFound = 5
  case alreadyExists = 6
  case permissionDenied = 7
  case resourceExhausted = 8
  case failedPrecondition = 9
  case aborted = 10
  case outOfRange = 11
  case unimplemented = 12
  case internalError = 13
  case unavailable = 14
  case dataLoss = 15
  case unauthenticated = 16

  /// The code's canonical name as grpc spells it, such as `DEADLINE_EXCEEDED` or `INTERNAL`.
  public var description: String {
    switch self {
    case .ok: return "OK"
    case .cancelled: return "CANCELLED"
    case .unknown: return "UNKNOWN"
    case .invalidArgument: return "INVALID_ARGUMENT"
    case .deadlineExceeded: return "DEADLINE_EXCEEDED"
    case .notFound: return "NOT_FOUND"
    case .alreadyExists: return "ALREADY_EXISTS"
    case .permissionDenied: return "PERMISSION_DENIED"
    case .resourceExhausted: return "RESOURCE_EXHAUSTED"
    case .failedPrecondition: return "FAILED_PRECONDITION"
    case .aborted: return "ABORTED"
    case .outOfRange: return "OUT_OF_RANGE"
    case .unimplemented: return "UNIMPLEMENTED"
    case .internalError: return "INTERNAL"
    case .unavailable: return "UNAVAILABLE"
    case .dataLoss: return "DATA_LOSS"
    case .unauthenticated: return "UNAUTHENTICATED"
    }
  }
}

/// The outcome of a gRPC call as the server (or the client, for local failures) reported it.
public struct GRPCStatus: Sendable, Hashable, CustomStringConvertible {
  /// The status code; ``GRPCStatusCode/ok`` for a successful call.
  public var code: GRPCStatusCode
  /// `grpc-message`, percent-decoded.
  public var message: String
  /// `grpc-status-details-bin`, decoded from base64 (a serialized `google.rpc.Status`).
  public var details: [UInt8]?
  /// Why the client made this status itself, for a caller that wants more than the code;
  /// nil when the server sent the status.
  public var cause: Cause?

  /// A status with the given parts.
  ///
  /// - Parameters:
  ///   - code: The status code.
  ///   - message: A human-readable description (`grpc-message`); may be empty.
  ///   - details: The serialized `google.rpc.Status`, if any.
  ///   - cause: Why the client made this status itself; nil for a status the server sent.
  public init(code: GRPCStatusCode, message: String, details: [UInt8]? = nil, cause: Cause? = nil) {
    self.code = code
    self.message = message
    self.details = details
    self.cause = cause
  }

  /// What made the client fail a call with a status of its own.
  public enum Cause: Sendable, Hashable {
    /// The server's answer broke gRPC over HTTP/2 (grpc `doc/PROTOCOL-HTTP2.md`); the status
    /// code is the one grpc `doc/statuscodes.md` gives for it.
    case protocolViolation(GRPCProtocolViolation)
    /// No channel was connected within the call's deadline; `lastFailure` is why the latest
    /// connect attempt failed, as in ``MilvexError/notConnected(host:port:lastFailure:)``.
    case notConnected(host: String, port: Int, lastFailure: String?)
    /// The call's TLS connection failed (or never came up): the certificate, the handshake,
    /// ALPN or the configuration.
    case tls(TLSFailure)
  }

  /// The code's name, followed by `: ` and the message when the message is not empty, for
  /// example `UNAVAILABLE: connection refused`.
  public var description: String {
    message.isEmpty ? "\(code)" : "\(code): \(message)"
  }
}

/// A way a server's answer to a call broke the gRPC protocol, with the status code
/// grpc's `doc/statuscodes.md` assigns to it (``statusCode``).
public enum GRPCProtocolViolation: Sendable, Hashable, CustomStringConvertible {
  /// A 200 answer whose content-type is not `application/grpc` (an HTML page, a proxy):
  /// UNKNOWN, as for any HTTP answer that is not gRPC.
  case contentType(String)
  /// A unary call answered with a second message ("response cardinality violation").
  case moreThanOneMessage
  /// A unary call ended with OK but without its message ("response cardinality violation").
  case noMessage
  /// A compressed message although no `grpc-encoding` was asked for (nil: none named).
  case unexpectedCompression(encoding: String?)
  /// The message ended before the length its prefix announced.
  case truncatedMessage(announced: Int, received: Int)
  /// The stream ended inside the 5-byte message prefix.
  case truncatedPrefix(received: Int)
  /// DATA before the response headers, or a second header block that does not end the
  /// stream.
  case framing(String)
  /// The trailers carry no `grpc-status`, or one that is not a number ("error parsing returned
  /// status").
  case invalidStatus(String?)
  /// The response message does not parse as the method's response type ("error parsing
  /// response proto").
  case unparsableMessage(String)

  /// The status code grpc's `doc/statuscodes.md` gives this violation.
  public var statusCode: GRPCStatusCode {
    switch self {
    case .contentType, .invalidStatus: return .unknown
    case .moreThanOneMessage, .noMessage: return .unimplemented
    case .unexpectedCompression, .truncatedMessage, .truncatedPrefix, .framing, .unparsableMessage:
      return .internalError
    }
  }

  /// One sentence saying how the server's answer broke the protocol, for logs and the status
  /// message.
  public var description: String {
    switch self {
    case .contentType(let value):
      return "the server answered with content-type '\(value)', not application/grpc"
    case .moreThanOneMessage:
      return "more than one message in a unary response"
    case .noMessage:
      return "the server ended a unary call with OK but sent no message"
    case .unexpectedCompression(let encoding?):
      return
        "the server sent a message compressed with '\(encoding)', which this client did not ask for"
    case .unexpectedCompression(nil):
      return "the server sent a compressed message although no grpc-encoding was negotiated"
    case .truncatedMessage(let announced, let received):
      return "truncated message: the prefix announced \(announced) bytes, \(received) arrived"
    case .truncatedPrefix(let received):
      return "truncated message prefix (\(received) of 5 bytes)"
    case .framing(let what):
      return what
    case .invalidStatus(let value?):
      return
        "the server's trailers carry grpc-status '\(value.prefix(64))', which is not a status code"
    case .invalidStatus(nil):
      return "the server's trailers carry no grpc-status"
    case .unparsableMessage(let why):
      return "the response message does not parse: \(why)"
    }
  }

  /// The status a call fails with: the code for this violation, its words as the message and
  /// itself as the cause.
  public var status: GRPCStatus {
    GRPCStatus(
      code: statusCode, message: "protocol violation: \(description)",
      cause: .protocolViolation(self))
  }
}

extension MilvexError {
  /// A call failed because the server's answer broke the gRPC protocol.
  static func violation(_ violation: GRPCProtocolViolation) -> MilvexError {
    .grpcStatus(violation.status)
  }
}
