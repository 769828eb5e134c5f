extension ConnectionConfig {
  /// The keys of the `ssl_options` dictionary: the Elixir client's, named after Erlang's
  /// `:ssl` options.
  enum SSLOption: String, CaseIterable {
    case cacertfile, certfile, keyfile, verify
    case serverNameIndication = "server_name_indication"

    static var knownKeys: String { allCases.map(\.rawValue).joined(separator: ", ") }
  }

  /// How to turn TLS on, for the errors about TLS settings given without it.
  static let howToTurnSSLOn = "set ssl: true (or secure: true, or use https://)"

  /// The option keys that give each field of ``TLSConfiguration``, for error messages.
  private static let tlsOptionSpellings: [String: String] = [
    "tls.trustRoots": "cacertfile in ssl_options, or ca_pem_path or server_pem_path",
    "tls.certificateChain": "certfile in ssl_options, or client_pem_path",
    "tls.privateKey": "keyfile in ssl_options, or client_key_path",
    "tls.serverName": "server_name_indication in ssl_options, or server_name",
  ]

  /// The TLS settings of an options dictionary, in either client's spelling (see
  /// ``init(options:)``).
  ///
  /// - Parameter ssl: Whether the options turn TLS on; if not, any TLS option is an error.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` naming the key of a TLS option
  ///   given without ssl, an unknown key in `ssl_options` (when it may be shown), a value of the
  ///   wrong type; naming both keys of a setting given twice. Never a file's content or a
  ///   value that may be a secret.
  static func tlsConfiguration(from options: OptionReader, ssl: Bool) throws(MilvexError)
    -> TLSConfiguration
  {
    let tlsOptions: [Option] = [
      .sslOptions, .caPemPath, .serverPemPath, .clientPemPath, .clientKeyPath, .serverName,
    ]
    guard ssl else {
      if let key = tlsOptions.compactMap(options.key).sorted().first {
        throw MilvexError.invalidArgument(
          field: key, message: "is a TLS option, but TLS is off; \(howToTurnSSLOn)")
      }
      return .default
    }
    var given = GivenTLSSettings()
    try given.read(sslOptions: options.dictionary(.sslOptions) ?? [:], options)
    for (option, setting) in [
      (Option.caPemPath, \GivenTLSSettings.trustRoots), (.serverPemPath, \.trustRoots),
      (.clientPemPath, \.certificateChain), (.clientKeyPath, \.privateKey),
      (.serverName, \.serverName),
    ] {
      if let value = try options.string(option) {
        given[keyPath: setting].append((option.rawValue, value))
      }
    }
    typealias PEMSource = TLSConfiguration.PEMSource
    return TLSConfiguration(
      trustRoots: try oneValue("tls.trustRoots", given.trustRoots).map(PEMSource.file),
      certificateChain: try oneValue("tls.certificateChain", given.certificateChain).map(
        PEMSource.file),
      privateKey: try oneValue("tls.privateKey", given.privateKey).map(PEMSource.file),
      serverName: try oneValue("tls.serverName", given.serverName),
      verifyCertificate: given.verifyCertificate)
  }

  /// Each TLS setting with the keys that gave it: those of `ssl_options` first, then
  /// pymilvus's.
  private struct GivenTLSSettings {
    var trustRoots: [(key: String, value: String)] = []
    var certificateChain: [(key: String, value: String)] = []
    var privateKey: [(key: String, value: String)] = []
    var serverName: [(key: String, value: String)] = []
    var verifyCertificate = true

    mutating func read(sslOptions: [String: Any], _ options: OptionReader) throws(MilvexError) {
      // Sorted, so that the error for several bad keys is always the same one.
      for (name, value) in sslOptions.sorted(by: { $0.key < $1.key }) {
        guard let option = SSLOption(rawValue: name) else {
          guard options.echoesValues, Option.isNameable(name) else {
            throw MilvexError.invalidArgument(
              field: "ssl_options",
              message: "has an unknown key (not shown, as it may be a secret); the known keys "
                + "are \(SSLOption.knownKeys)")
          }
          throw MilvexError.invalidArgument(
            field: "ssl_options.\(name)",
            message: "unknown TLS option; the known keys of ssl_options are \(SSLOption.knownKeys)")
        }
        let key = "ssl_options.\(name)"
        switch option {
        case .cacertfile:
          trustRoots.append((key, try path(key, value, secret: false, options)))
        case .certfile:
          certificateChain.append((key, try path(key, value, secret: false, options)))
        case .keyfile:
          privateKey.append((key, try path(key, value, secret: true, options)))
        case .serverNameIndication:
          serverName.append((key, try sniName(key, value, options)))
        case .verify:
          verifyCertificate = try verifyFlag(key, value, options)
        }
      }
    }

    /// A file path.
    private func path(
      _ key: String, _ value: Any, secret: Bool, _ options: OptionReader
    ) throws(MilvexError) -> String {
      guard let text = value as? any StringProtocol else {
        throw options.wrongType(key, secret: secret, "a file path (a string)", value)
      }
      return String(text)
    }

    /// `server_name_indication`: a host name; Erlang's `disable` is refused, since the name
    /// is also the one the certificate is checked against.
    private func sniName(_ key: String, _ value: Any, _ options: OptionReader) throws(MilvexError)
      -> String
    {
      guard let text = value as? any StringProtocol else {
        throw options.wrongType(key, secret: false, "a host name", value)
      }
      guard String(text) != "disable" else {
        throw MilvexError.invalidArgument(
          field: key,
          message: "cannot be disable: the server name is always sent (SNI); give the name the "
            + "server's certificate is for, or leave it out to use the host")
      }
      return String(text)
    }

    /// `verify`: Erlang's `verify_peer` or `verify_none`, or a Bool.
    private func verifyFlag(_ key: String, _ value: Any, _ options: OptionReader)
      throws(MilvexError) -> Bool
    {
      if let flag = value as? Bool { return flag }
      if let text = value as? any StringProtocol {
        switch String(text).lowercased() {
        case "verify_peer", "true", "1": return true
        case "verify_none", "false", "0": return false
        default: break
        }
      }
      throw options.wrongType(key, secret: false, "verify_peer, verify_none, true or false", value)
    }
  }

  /// The one value of a setting that several keys can give.
  ///
  /// A setting is given once; the exception is pymilvus's `ca_pem_path` and `server_pem_path`,
  /// which pymilvus configurations often both set: they must then name the same file.
  private static func oneValue(_ field: String, _ given: [(key: String, value: String)])
    throws(MilvexError)
    -> String?
  {
    guard let first = given.first else { return nil }
    for other in given.dropFirst() {
      guard Set([first.key, other.key]) == ["ca_pem_path", "server_pem_path"] else {
        throw MilvexError.invalidArgument(
          field: field,
          message: "is given twice, as '\(first.key)' and '\(other.key)'; give it once")
      }
      if other.value != first.value {
        throw MilvexError.invalidArgument(
          field: field,
          message: "is given as two different files, by 'ca_pem_path' and 'server_pem_path' "
            + "(both are the trust roots); give one, or the same file in both")
      }
    }
    return first.value
  }

  /// Checks ``tls``: it must be `.default` while ssl is off, and valid while it is on.
  ///
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` naming the field (`tls`,
  ///   `tls.privateKey`, ...) and the option keys that set it; never a file's content.
  func validateTLS() throws(MilvexError) {
    guard ssl else {
      guard tls == .default else {
        throw MilvexError.invalidArgument(
          field: "tls", message: "is set, but ssl is off; \(Self.howToTurnSSLOn)")
      }
      return
    }
    do {
      try tls.validate()
    } catch .invalidArgument(let field, let message) {
      throw MilvexError.invalidArgument(field: field, message: message + Self.spellings(of: field))
    } catch {
      throw error
    }
    for (field, source) in [
      ("tls.trustRoots", tls.trustRoots), ("tls.certificateChain", tls.certificateChain),
      ("tls.privateKey", tls.privateKey),
    ] {
      // PEM text where a path belongs would be printed as a path, and a key must never be.
      if case .file(let path) = source, path.contains("-----BEGIN") {
        throw MilvexError.invalidArgument(
          field: field,
          message: "is a file path holding PEM text (not shown); give the file's path, or the "
            + "PEM itself as TLSConfiguration.PEMSource.bytes" + Self.spellings(of: field))
      }
    }
  }

  private static func spellings(of field: String) -> String {
    tlsOptionSpellings[field].map { " (options: \($0))" } ?? ""
  }
}
