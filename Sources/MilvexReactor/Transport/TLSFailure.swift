/// Why a TLS connection failed, as a value a caller can switch on, with words that say what to
/// do (``description``). Carried by ``MilvexError/tls(_:host:port:)``, by the failed calls'
/// ``GRPCStatus/cause`` and by the connection's transitions.
public enum TLSFailure: Error, Sendable, Hashable, CustomStringConvertible {
  /// The server's certificate did not verify: `reason` is OpenSSL's (for example "unable to
  /// get local issuer certificate": the trust roots do not include its issuer), `subject` the
  /// certificate's subject.
  case certificateNotTrusted(reason: String, subject: String?)
  /// The certificate is valid but not for the name connected to (or ``TLSConfiguration/serverName``).
  case nameMismatch(expected: String, certificateNames: [String])
  /// The server did not select HTTP/2 by ALPN (`selected` is what it chose, nil for nothing).
  case alpnNotNegotiated(selected: String?)
  /// The server answered the TLS ClientHello with bytes that are not TLS: a plaintext port.
  case plaintextAnswer
  /// The server closed the connection during the handshake.
  case closedDuringHandshake
  /// The handshake did not finish within the connect timeout.
  case handshakeTimedOut(after: Duration)
  /// The server requires a client certificate and none was configured.
  case clientCertificateRequired
  /// The server refused the client certificate (`detail` is the TLS alert).
  case clientCertificateRejected(detail: String)
  /// The TLS configuration could not be used (an unreadable CA file, a key that does not
  /// match the certificate, …). Not retriable: the configuration must change.
  case configuration(String)
  /// Any other TLS error, in OpenSSL's words.
  case failed(String)

  /// Whether trying again later can succeed (everything but a bad configuration: a server's
  /// certificate or setup can be fixed while the client keeps trying).
  public var isRetriable: Bool {
    if case .configuration = self { return false }
    return true
  }

  /// What failed and what to change, in one line; for example a name mismatch names the
  /// certificate's names and suggests setting `tls.serverName`.
  public var description: String {
    switch self {
    case .certificateNotTrusted(let reason, let subject):
      return "certificate verify failed: \(reason)" + (subject.map { " (subject \($0))" } ?? "")
    case .nameMismatch(let expected, let names):
      let named = names.isEmpty ? "no name" : names.joined(separator: ", ")
      return "certificate is for \(named), not \(expected)"
        + " (set tls.serverName if the server is reached by another name)"
    case .alpnNotNegotiated(let selected):
      return "the server did not negotiate HTTP/2 (ALPN: "
        + (selected.map { "it chose \($0)" } ?? "it chose no protocol") + ")"
    case .plaintextAnswer:
      return "the server answered in plain text: is it TLS? (use http:// for a plaintext port)"
    case .closedDuringHandshake:
      return "the server closed the connection during the TLS handshake (is it a TLS port?)"
    case .handshakeTimedOut(let after):
      return "TLS handshake timed out after \(after)"
    case .clientCertificateRequired:
      return
        "the server requires a client certificate (set tls.certificateChain and tls.privateKey)"
    case .clientCertificateRejected(let detail):
      return "the server rejected the client certificate: \(detail)"
    case .configuration(let what):
      return "TLS configuration: \(what)"
    case .failed(let what):
      return "TLS error: \(what)"
    }
  }
}
