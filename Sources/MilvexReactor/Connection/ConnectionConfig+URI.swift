extension ConnectionConfig {
  /// The URI schemes ``init(uri:)`` accepts, and whether each one turns TLS on.
  static let uriSchemes: [(name: String, ssl: Bool)] = [
    ("http", false), ("https", true), ("milvus", false), ("milvuss", true), ("grpc", false),
  ]

  /// Options that the URI's authority and path give, so the query may not repeat them.
  private static let optionsOutsideQuery: Set<Option> = [
    .host, .port, .database, .user, .password, .ssl,
  ]

  /// Creates a validated configuration from a URI:
  /// `scheme://[user[:password]@]host[:port][/database][?option=value&...]`.
  ///
  /// - `scheme` is `http`, `milvus` or `grpc` (plain TCP), or `https` or `milvuss` (TLS);
  /// - user, password and database are percent-decoded (write `%40` for a `@` in the user
  ///   name, `%3A` for a `:`). A password may contain `@`, `:` and `/` as they are, since the
  ///   user information ends at the **last** `@`; `?` and `#` must be written `%3F` and `%23`;
  /// - the host is a name, an IPv4 address or an IPv6 address in brackets (`[::1]`);
  /// - a missing port is 19530, or 443 with TLS;
  /// - a missing database is `default`;
  /// - the query holds the other options of ``init(options:)`` (times in milliseconds), for
  ///   example `?timeout=5000&connectTimeout=2000&token=...`; keys and values are
  ///   percent-decoded, and `+` stays a plus sign (tokens are often base64);
  /// - TLS files and the server name take pymilvus's query keys, with an `https` or `milvuss`
  ///   scheme: `ca_pem_path` (or `server_pem_path`), `client_pem_path`, `client_key_path`,
  ///   `server_name`, as in `https://host?ca_pem_path=/etc/milvus/ca.pem&server_name=milvus`.
  ///   A URI cannot turn certificate verification off.
  ///
  /// Error messages never repeat the URI or a part of it (not even a value out of range or an
  /// unknown query key), because a password with an unescaped `?` or `@` spills into the
  /// other parts.
  ///
  /// - Throws: ``MilvexError/invalidArgument(field:message:)``: field `uri` for a missing or
  ///   unsupported scheme, a fragment or an unknown query option (named by its position);
  ///   `host` for a missing host; `port` for a port that is not a number in 1–65535;
  ///   `database` for a path of more than one segment; the option's key for a bad query
  ///   option; and whatever ``init(options:)`` throws, without the values.
  public init(uri: String) throws(MilvexError) {
    var options: [String: any Sendable] = [:]
    var rest = Substring(uri)

    // scheme "://"
    let schemes = Self.uriSchemes.map(\.name).joined(separator: ", ")
    guard let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") else {
      throw MilvexError.invalidArgument(
        field: "uri", message: "must start with a scheme and '://', one of \(schemes)")
    }
    let schemeName = rest[..<colon].lowercased()
    guard let scheme = Self.uriSchemes.first(where: { $0.name == schemeName }) else {
      throw MilvexError.invalidArgument(
        field: "uri", message: "has an unsupported scheme; use one of \(schemes)")
    }
    options[Option.ssl.rawValue] = scheme.ssl
    rest = rest[rest.index(colon, offsetBy: 3)...]

    if rest.contains("#") {
      throw MilvexError.invalidArgument(
        field: "uri", message: "must not contain '#'; write it as %23 in a password or token")
    }

    // [?query]
    if let question = rest.firstIndex(of: "?") {
      try Self.parseQuery(rest[rest.index(after: question)...], into: &options)
      rest = rest[..<question]
    }

    // [user[:password]@]: up to the last '@', so that a password may contain '@' and '/'.
    if let at = rest.lastIndex(of: "@") {
      let userInfo = rest[..<at]
      rest = rest[rest.index(after: at)...]
      if userInfo.isEmpty {
        // "milvus://@host": no credentials.
      } else if let separator = userInfo.firstIndex(of: ":") {
        options[Option.user.rawValue] = try Self.percentDecoded(
          userInfo[..<separator], field: "user")
        options[Option.password.rawValue] = try Self.percentDecoded(
          userInfo[userInfo.index(after: separator)...], field: "password")
      } else {
        options[Option.user.rawValue] = try Self.percentDecoded(userInfo, field: "user")
      }
    }

    // [/database]
    if let slash = rest.firstIndex(of: "/") {
      var path = rest[rest.index(after: slash)...]
      rest = rest[..<slash]
      if path.hasSuffix("/") { path = path.dropLast() }
      if path.contains("/") {
        throw MilvexError.invalidArgument(
          field: "database", message: "must be a single path segment, as in /my_database")
      }
      if !path.isEmpty {
        options[Option.database.rawValue] = try Self.percentDecoded(path, field: "database")
      }
    }

    // host[:port]
    let (host, port) = try Self.parseHostAndPort(rest)
    options[Option.host.rawValue] = host
    if let port { options[Option.port.rawValue] = port }

    try self.init(options: options, echoingValues: false)
  }

  private static func parseHostAndPort(_ authority: Substring) throws(MilvexError) -> (String, Int?)
  {
    var host: Substring
    var portText: Substring?
    if authority.hasPrefix("[") {
      guard let close = authority.firstIndex(of: "]") else {
        throw MilvexError.invalidArgument(
          field: "host", message: "has an IPv6 address without its closing ']'")
      }
      host = authority[authority.index(after: authority.startIndex)..<close]
      let after = authority[authority.index(after: close)...]
      if after.hasPrefix(":") {
        portText = after.dropFirst()
      } else if !after.isEmpty {
        throw MilvexError.invalidArgument(
          field: "host", message: "must be followed by ':port' or nothing after the ']'")
      }
    } else {
      let colons = authority.filter { $0 == ":" }.count
      if colons > 1 {
        throw MilvexError.invalidArgument(
          field: "host", message: "is an IPv6 address; write it in brackets, as in [::1]:19530")
      }
      host = authority
      if let colon = authority.firstIndex(of: ":") {
        host = authority[..<colon]
        portText = authority[authority.index(after: colon)...]
      }
    }
    if host.isEmpty {
      throw MilvexError.invalidArgument(
        field: "host", message: "is missing; the URI must name a host, as in milvus://localhost")
    }
    guard let portText else { return (String(host), nil) }
    // Not echoed (here or by `validate`): a password with a raw '?' could end up here.
    guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber),
      let port = Int(portText)
    else {
      throw MilvexError.invalidArgument(
        field: "port", message: "must be a number between 1 and 65535")
    }
    return (String(host), port)
  }

  private static func parseQuery(
    _ query: Substring, into options: inout [String: any Sendable]
  ) throws(MilvexError) {
    var seen: Set<String> = []
    let items = query.split(separator: "&", omittingEmptySubsequences: true)
    for (index, item) in items.enumerated() {
      guard let equals = item.firstIndex(of: "=") else {
        throw MilvexError.invalidArgument(
          field: "uri", message: "has a query item without '=': give option=value")
      }
      let key = try percentDecoded(item[..<equals], field: "uri")
      // Not named: the key may be the tail of a password with an unescaped '?'.
      guard let option = Option(key: key) else {
        throw MilvexError.invalidArgument(
          field: "uri",
          message: "has an unknown option in query item \(index + 1) of \(items.count) (not "
            + "shown, as it may be part of a secret); the known options are \(Option.knownKeys)")
      }
      let value = try percentDecoded(item[item.index(after: equals)...], field: key)
      if option == .sslOptions {
        throw MilvexError.invalidArgument(
          field: key,
          message: "is a dictionary, which a URI cannot hold; give ca_pem_path, client_pem_path, "
            + "client_key_path or server_name in the query instead")
      }
      if optionsOutsideQuery.contains(option) {
        throw MilvexError.invalidArgument(
          field: key,
          message: "must be given by the URI's scheme, user information, host, port or path, "
            + "not in its query")
      }
      guard seen.insert(key).inserted else {
        throw MilvexError.invalidArgument(
          field: key, message: "is given twice in the URI's query; give it once")
      }
      options[key] = value
    }
  }

  /// Decodes `%XX` escapes (RFC 3986 §2.1) exactly once; `+` is left as it is.
  ///
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for a malformed escape or bytes
  ///   that are not UTF-8. The message never contains the text: it may be a secret.
  static func percentDecoded(_ text: Substring, field: String) throws(MilvexError) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
      guard byte == UInt8(ascii: "%") else {
        bytes.append(byte)
        continue
      }
      guard let high = iterator.next().flatMap(GRPCWireFormat.hexValue),
        let low = iterator.next().flatMap(GRPCWireFormat.hexValue)
      else {
        throw MilvexError.invalidArgument(
          field: field, message: "has a '%' that is not followed by two hexadecimal digits")
      }
      bytes.append(high << 4 | low)
    }
    guard let decoded = String(validating: bytes, as: UTF8.self) else {
      throw MilvexError.invalidArgument(
        field: field, message: "is not valid UTF-8 after percent-decoding")
    }
    return decoded
  }
}
