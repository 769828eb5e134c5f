/// The one error type of MilvexReactor.
///
/// Every case says what failed in words a user can act on (``description``), and
/// ``isRetriable`` says whether trying the same thing again later can succeed.
/// Secrets (tokens, passwords) never appear in an error.
public enum MilvexError: Error, Sendable, Hashable, CustomStringConvertible {
  /// A caller passed a value that is not allowed. `field` names the argument or option.
  case invalidArgument(field: String, message: String)

  /// Work was submitted to an ``EventLoop`` that has shut down (or is shutting down).
  /// The work was not accepted and will never run.
  case eventLoopShutDown(operation: String)

  /// A connection to `host:port` could not be made or was lost: resolution failed, the server
  /// refused or closed the connection, the connect timeout fired, keepalive declared it dead.
  case connection(reason: String, host: String, port: Int, retriable: Bool)

  /// A TLS connection to `host:port` failed: the certificate, the handshake, ALPN, the
  /// configuration (``TLSFailure`` says which, and what to do).
  case tls(TLSFailure, host: String, port: Int)

  /// The connection to `host:port` is not connected right now (it is connecting or
  /// reconnecting). Retriable: it keeps trying. `lastFailure` says why the latest attempt
  /// failed (refused, timed out, the handshake failed, …) or why the channel was lost; nil
  /// before anything failed.
  case notConnected(host: String, port: Int, lastFailure: String? = nil)

  /// The connection or channel was closed by its owner (`disconnect`/`close`); calls on it
  /// will never succeed.
  case disconnected(reason: String)

  /// A gRPC call ended with a non-OK status, from the server or decided locally
  /// (`DEADLINE_EXCEEDED`, `CANCELLED`, `UNAVAILABLE` when the connection died).
  case grpcStatus(GRPCStatus)

  /// The peer broke the HTTP/2 or gRPC protocol (for example a wrong content-type, a truncated
  /// message, garbage instead of HTTP/2).
  case protocolViolation(String)

  /// Milvus answered, but with an error `Status` inside the response.
  case milvus(code: Int32, reason: String)

  /// Shorthand for the gRPC status case.
  public static func status(
    _ code: GRPCStatusCode, _ message: String, details: [UInt8]? = nil
  ) -> MilvexError {
    .grpcStatus(GRPCStatus(code: code, message: message, details: details))
  }

  /// Whether the same request may succeed if tried again later.
  public var isRetriable: Bool {
    switch self {
    case .invalidArgument, .eventLoopShutDown, .disconnected, .protocolViolation:
      return false
    case .connection(_, _, _, let retriable):
      return retriable
    case .tls(let failure, _, _):
      return failure.isRetriable
    case .notConnected:
      return true
    case .grpcStatus(let status):
      return status.code == .unavailable
    case .milvus(let code, _):
      // Milvus 2.3+ codes: 8 = rate limit, 2 = service unavailable; 49 = the legacy
      // ErrorCode.RateLimit (reported when a server sets only the legacy code).
      return code == 8 || code == 2 || code == 49
    }
  }

  /// What failed, in one line a user can act on: the field for an invalid argument, the
  /// `host:port` for connection, TLS and not-connected errors (with "(will be retried)" when the
  /// connection keeps trying), the gRPC status or the Milvus code and reason. Secrets (tokens,
  /// passwords) never appear in it.
  public var description: String {
    switch self {
    case .invalidArgument(let field, let message):
      return "invalid argument '\(field)': \(message)"
    case .eventLoopShutDown(let operation):
      return "\(operation) failed: the event loop has shut down and accepts no more work"
    case .connection(let reason, let host, let port, let retriable):
      return "connection to \(host):\(port) failed: \(reason)"
        + (retriable ? " (will be retried)" : "")
    case .tls(let failure, let host, let port):
      return "TLS connection to \(host):\(port) failed: \(failure)"
        + (failure.isRetriable ? " (will be retried)" : "")
    case .notConnected(let host, let port, let lastFailure):
      return "not connected to \(host):\(port) yet; the connection is (re)connecting"
        + (lastFailure.map { " (last error: \($0))" } ?? "")
    case .disconnected(let reason):
      return "disconnected: \(reason)"
    case .grpcStatus(let status):
      return "gRPC call failed with \(status)"
    case .protocolViolation(let message):
      return "protocol violation: \(message)"
    case .milvus(let code, let reason):
      return "Milvus error \(code): \(reason)"
    }
  }
}
