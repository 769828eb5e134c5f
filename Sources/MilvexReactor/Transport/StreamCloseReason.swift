/// Why a byte stream ended, as a value the layers above can switch on; turned into words only
/// at the edge (``description``).
public enum StreamCloseReason: Sendable, Hashable, CustomStringConvertible {
  /// The peer closed its side in order (end of file).
  case endOfFile
  /// The peer reset the connection (`ECONNRESET`, `EPIPE`).
  case reset
  /// A read or write failed otherwise; `operation` is `read` or `write`.
  case ioError(operation: String, errno: Int32)
  /// A time limit of the owner ran out (connect, handshake, keepalive).
  case timeout(String)
  /// The bytes broke the protocol of a layer above (garbage, an HTTP/1 answer, …).
  case protocolError(String)
  /// The owner closed the stream.
  case localClose
  /// TLS failed (handshake, certificate, ALPN, or a TLS error later).
  case tls(TLSFailure)

  /// The reason in words for a log or an error: for example `the server closed the connection`,
  /// `read failed: ` with the `errno` text, or the owner's words for a timeout or protocol error.
  public var description: String {
    switch self {
    case .endOfFile: return "the server closed the connection"
    case .reset: return "the server reset the connection"
    case .ioError(let operation, let code): return "\(operation) failed: \(errnoDescription(code))"
    case .timeout(let what): return what
    case .protocolError(let what): return what
    case .localClose: return "closed by the client"
    case .tls(let failure): return failure.description
    }
  }

  /// The reason for a failed `read` or `write` with `errno` `code`.
  static func failed(_ operation: String, errno code: Int32) -> StreamCloseReason {
    code == ECONNRESET || code == EPIPE ? .reset : .ioError(operation: operation, errno: code)
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif
