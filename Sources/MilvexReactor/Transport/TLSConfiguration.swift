/// TLS for a connection (OpenSSL 3, TLS 1.2 or later, ALPN `h2`).
///
/// The defaults are the safe ones: the server's certificate is verified against the system
/// trust store and must be for the host connected to (its DNS name or IP address). Mutual TLS
/// adds a client certificate and its key. Verification can be turned off only explicitly
/// (``verifyCertificate`` = false), and the connection logs a warning each time it connects so.
///
/// The description never shows key bytes: a private key is printed as `<redacted>`, PEM bytes
/// by their size.
public struct TLSConfiguration: Sendable, Hashable, CustomStringConvertible,
  CustomReflectable
{
  /// PEM data: a file's path, or the bytes themselves.
  public enum PEMSource: Sendable, Hashable {
    case file(String)
    case bytes([UInt8])

    /// PEM text given as a string.
    public static func pem(_ text: String) -> PEMSource { .bytes(Array(text.utf8)) }
  }

  /// The certificate authorities the server's certificate must chain to; nil: the system
  /// trust store (Debian's `/etc/ssl/certs`).
  public var trustRoots: PEMSource?
  /// The client's certificate (chain), for servers that require mutual TLS.
  public var certificateChain: PEMSource?
  /// The private key of ``certificateChain`` (unencrypted PEM). Never printed.
  public var privateKey: PEMSource?
  /// The name sent as SNI and the name the certificate must be for; nil: the host connected
  /// to. Set it when connecting by IP address to a server whose certificate names a host, or
  /// through a proxy.
  public var serverName: String?
  /// Whether the server's certificate is verified (chain and name). Turning it off makes the
  /// connection open to anyone who can intercept it; the connection logs a warning.
  public var verifyCertificate: Bool = true

  /// A TLS configuration; with no arguments, the safe defaults (system trust store, certificate
  /// verified, no client certificate).
  ///
  /// Nothing is checked or read here: ``validate()`` checks what it can, and PEM files are read
  /// when the connection is made.
  ///
  /// - Parameters:
  ///   - trustRoots: The certificate authorities to trust; nil for the system trust store.
  ///   - certificateChain: The client's certificate (chain), for mutual TLS.
  ///   - privateKey: The private key of `certificateChain` (unencrypted PEM).
  ///   - serverName: The name for SNI and certificate verification; nil for the host connected
  ///     to.
  ///   - verifyCertificate: Whether the server's certificate is verified; keep it `true`.
  public init(
    trustRoots: PEMSource? = nil, certificateChain: PEMSource? = nil, privateKey: PEMSource? = nil,
    serverName: String? = nil, verifyCertificate: Bool = true
  ) {
    self.trustRoots = trustRoots
    self.certificateChain = certificateChain
    self.privateKey = privateKey
    self.serverName = serverName
    self.verifyCertificate = verifyCertificate
  }

  /// Verification against the system trust store, no client certificate.
  public static var `default`: TLSConfiguration { TLSConfiguration() }

  /// Checks what can be checked without reading files: a certificate needs its key and a key
  /// its certificate, and a server name must be a plain host name or IP address.
  public func validate() throws(MilvexError) {
    if certificateChain != nil, privateKey == nil {
      throw .invalidArgument(
        field: "tls.privateKey", message: "a client certificate needs its private key")
    }
    if privateKey != nil, certificateChain == nil {
      throw .invalidArgument(
        field: "tls.certificateChain", message: "a private key needs its client certificate")
    }
    if let serverName {
      guard !serverName.isEmpty, serverName.utf8.count <= 253,
        serverName.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") })
      else {
        throw .invalidArgument(
          field: "tls.serverName",
          message: "must be a host name or IP address (1 to 253 printable characters, no spaces)")
      }
    }
    for (field, source) in [
      ("tls.trustRoots", trustRoots), ("tls.certificateChain", certificateChain),
      ("tls.privateKey", privateKey),
    ] {
      switch source {
      case .file(let path) where path.isEmpty:
        throw .invalidArgument(field: field, message: "the file path is empty")
      case .bytes(let bytes) where bytes.isEmpty:
        throw .invalidArgument(field: field, message: "the PEM data is empty")
      default:
        continue
      }
    }
  }

  /// A one-line summary for logs, such as `TLS(verify: on, trust roots: system)`: whether
  /// verification is on, where the trust roots and client certificate come from (a file's path,
  /// or PEM bytes by their size) and the server name. The private key is always `<redacted>`.
  public var description: String {
    func show(_ source: PEMSource?, secret: Bool = false) -> String {
      switch source {
      case .none: return "none"
      case .file(let path): return "file \(path)"
      case .bytes(let bytes): return secret ? "<redacted>" : "PEM (\(bytes.count) bytes)"
      }
    }
    var parts = ["verify: \(verifyCertificate ? "on" : "OFF")"]
    parts.append("trust roots: \(trustRoots == nil ? "system" : show(trustRoots))")
    if certificateChain != nil || privateKey != nil {
      parts.append("client certificate: \(show(certificateChain))")
      parts.append("key: \(privateKey == nil ? "none" : "<redacted>")")
    }
    if let serverName { parts.append("server name: \(serverName)") }
    return "TLS(\(parts.joined(separator: ", ")))"
  }

  /// `dump` and debuggers show the description's parts, never PEM or key bytes.
  public var customMirror: Mirror {
    Mirror(self, children: ["description": description], displayStyle: .struct)
  }
}
