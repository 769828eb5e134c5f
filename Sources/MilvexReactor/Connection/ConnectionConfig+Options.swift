extension ConnectionConfig {
  /// The keys that ``ConnectionConfig/init(options:)`` accepts.
  ///
  /// Keys are the camelCase property names; the timing options also accept the snake_case
  /// spelling of Elixir's `Milvex` (`connect_timeout`, `reconnect_base_delay`, ...), and `ssl`
  /// pymilvus's `secure`. The TLS options are spelt as their clients spell them: Elixir's
  /// `ssl_options` (a dictionary, see `ConnectionConfig+TLS.swift`) and pymilvus's
  /// `ca_pem_path`, `server_pem_path`, `client_pem_path`, `client_key_path` and `server_name`.
  enum Option: String, CaseIterable {
    case host, port, database, user, password, token, timeout, connectTimeout, ssl
    case reconnectBaseDelay, reconnectMaxDelay, reconnectMultiplier, reconnectJitter
    case keepaliveTime, keepaliveTimeout, allowTestingTimings
    case sslOptions = "ssl_options"
    case caPemPath = "ca_pem_path"
    case serverPemPath = "server_pem_path"
    case clientPemPath = "client_pem_path"
    case clientKeyPath = "client_key_path"
    case serverName = "server_name"

    /// The other spelling (snake_case, or pymilvus's), for the options that have one.
    var alias: String? {
      switch self {
      case .connectTimeout: return "connect_timeout"
      case .reconnectBaseDelay: return "reconnect_base_delay"
      case .reconnectMaxDelay: return "reconnect_max_delay"
      case .reconnectMultiplier: return "reconnect_multiplier"
      case .reconnectJitter: return "reconnect_jitter"
      case .keepaliveTime: return "keepalive_time"
      case .keepaliveTimeout: return "keepalive_timeout"
      case .ssl: return "secure"
      case .host, .port, .database, .user, .password, .token, .timeout, .allowTestingTimings,
        .sslOptions, .caPemPath, .serverPemPath, .clientPemPath, .clientKeyPath, .serverName:
        return nil
      }
    }

    /// Whether the value must never appear in a message: a secret, or a value that may hold
    /// one given by mistake (key bytes in place of the key's path, anything in `ssl_options`).
    var isSecret: Bool {
      switch self {
      case .password, .token, .clientKeyPath, .sslOptions: return true
      case .host, .port, .database, .user, .timeout, .connectTimeout, .ssl, .reconnectBaseDelay,
        .reconnectMaxDelay, .reconnectMultiplier, .reconnectJitter, .keepaliveTime,
        .keepaliveTimeout, .allowTestingTimings, .caPemPath, .serverPemPath, .clientPemPath,
        .serverName:
        return false
      }
    }

    init?(key: String) {
      guard let option = Self(rawValue: key) ?? Self.allCases.first(where: { $0.alias == key })
      else { return nil }
      self = option
    }

    static var knownKeys: String {
      allCases.flatMap { [$0.rawValue] + ($0.alias.map { [$0] } ?? []) }
        .joined(separator: ", ")
    }

    /// Whether an unknown key may be repeated in a message: a short identifier (a misspelt
    /// option) may, anything else could be a secret pasted into the wrong place.
    static func isNameable(_ key: String) -> Bool {
      (1...40).contains(key.utf8.count)
        && key.utf8.allSatisfy { byte in
          switch byte {
          case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"),
            UInt8(ascii: "."):
            return true
          default:
            return false
          }
        }
    }
  }

  /// Creates a validated configuration from a dictionary of options, as a configuration file
  /// or Elixir's `Milvex.Connection` options would give them.
  ///
  /// Keys are those of the table in ``ConnectionConfig``, in camelCase, plus the snake_case
  /// aliases `connect_timeout`, `reconnect_base_delay`, `reconnect_max_delay`,
  /// `reconnect_multiplier`, `reconnect_jitter`, `keepalive_time` and `keepalive_timeout`, and
  /// `secure` for `ssl`.
  ///
  /// TLS (``tls``, used when ssl is on) in either client's spelling:
  /// - Elixir's `ssl_options`, a dictionary (`[String: any Sendable]` or `[String: String]`)
  ///   of `cacertfile` (trust roots), `certfile` (client certificate), `keyfile` (its key),
  ///   `server_name_indication` and `verify` (`verify_peer` or `verify_none`, or a `Bool`);
  /// - pymilvus's `ca_pem_path` or `server_pem_path` (trust roots; both only if they name the
  ///   same file), `client_pem_path`, `client_key_path` and `server_name`.
  ///
  /// Files are given by path. Verification is on unless `verify` turns it off. Any of these
  /// without ssl (`ssl`, `secure` or an `https://` host) is an error, and so is a setting given
  /// by two spellings.
  ///
  /// Values:
  /// - times are **milliseconds**: an integer, a floating-point number or a string such as
  ///   `"1000"` (a `Duration` is taken as is);
  /// - `port`: an integer or a string of digits;
  /// - `reconnectMultiplier`, `reconnectJitter`: a number or a numeric string;
  /// - `ssl` (`secure`), `allowTestingTimings`: a `Bool` or `"true"`, `"false"`, `"1"`, `"0"`;
  /// - the others: strings.
  ///
  /// A missing key takes its default.
  ///
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` naming the key for an unknown
  ///   key, a key given twice (camelCase and snake_case), a value of the wrong type, or a
  ///   value out of range. An unknown key that is not a short identifier is not repeated (it
  ///   may be a secret): the field is then `options`.
  public init(options: [String: any Sendable]) throws(MilvexError) {
    try self.init(options: options, echoingValues: true)
  }

  /// ``init(options:)``, optionally without repeating values or unknown keys in messages
  /// (see `init(..., echoingValues:)`).
  init(options: [String: any Sendable], echoingValues: Bool) throws(MilvexError) {
    var values: [Option: (key: String, value: any Sendable)] = [:]
    // Sorted, so that the error for several bad keys is always the same one.
    for (key, value) in options.sorted(by: { $0.key < $1.key }) {
      guard let option = Option(key: key) else {
        guard echoingValues, Option.isNameable(key) else {
          throw MilvexError.invalidArgument(
            field: "options",
            message: "has an unknown key (not shown, as it may be a secret); the known options "
              + "are \(Option.knownKeys)")
        }
        if SSLOption(rawValue: key) != nil {
          throw MilvexError.invalidArgument(
            field: key,
            message: "is a key of ssl_options: give it inside the ssl_options dictionary")
        }
        throw MilvexError.invalidArgument(
          field: key, message: "unknown option; the known options are \(Option.knownKeys)")
      }
      if let earlier = values[option] {
        throw MilvexError.invalidArgument(
          field: option.rawValue,
          message: "is given twice, as '\(earlier.key)' and '\(key)'; give it once")
      }
      values[option] = (key, value)
    }
    let reader = OptionReader(values: values, echoesValues: echoingValues)
    let host = try reader.string(.host) ?? "localhost"
    let ssl = try reader.bool(.ssl) ?? false
    // As the initializer will: an https:// host turns ssl on.
    let tls = try Self.tlsConfiguration(
      from: reader, ssl: ssl || Self.strippingSSLPrefix(from: host) != nil)
    try self.init(
      host: host,
      port: reader.integer(.port),
      database: reader.string(.database) ?? "default",
      user: reader.string(.user),
      password: reader.string(.password),
      token: reader.string(.token),
      timeout: reader.milliseconds(.timeout) ?? .seconds(30),
      connectTimeout: reader.milliseconds(.connectTimeout) ?? .seconds(10),
      ssl: ssl,
      tls: tls,
      reconnectBaseDelay: reader.milliseconds(.reconnectBaseDelay) ?? .seconds(1),
      reconnectMaxDelay: reader.milliseconds(.reconnectMaxDelay) ?? .seconds(60),
      reconnectMultiplier: reader.number(.reconnectMultiplier) ?? 2.0,
      reconnectJitter: reader.number(.reconnectJitter) ?? 0.1,
      keepaliveTime: reader.milliseconds(.keepaliveTime) ?? .seconds(10),
      keepaliveTimeout: reader.milliseconds(.keepaliveTimeout) ?? .seconds(10),
      allowTestingTimings: reader.bool(.allowTestingTimings) ?? false,
      echoingValues: echoingValues)
  }
}

/// Converts option values to the types of ``ConnectionConfig``'s fields; `nil` for an
/// absent option.
struct OptionReader {
  let values: [ConnectionConfig.Option: (key: String, value: any Sendable)]
  /// Whether a message may repeat a wrong value (never for secrets).
  let echoesValues: Bool

  func string(_ option: ConnectionConfig.Option) throws(MilvexError) -> String? {
    guard let (key, value) = values[option] else { return nil }
    if let text = value as? any StringProtocol { return String(text) }
    throw wrongType(key, option, "a string", value)
  }

  func integer(_ option: ConnectionConfig.Option) throws(MilvexError) -> Int? {
    guard let (key, value) = values[option] else { return nil }
    if let integer = value as? any BinaryInteger, let exact = Int(exactly: integer) {
      return exact
    }
    if let text = value as? any StringProtocol, let integer = Int(String(text)) {
      return integer
    }
    if let number = value as? any BinaryFloatingPoint, let exact = Int(exactly: number) {
      return exact
    }
    throw wrongType(key, option, "an integer", value)
  }

  func number(_ option: ConnectionConfig.Option) throws(MilvexError) -> Double? {
    guard let (key, value) = values[option] else { return nil }
    if let number = value as? any BinaryFloatingPoint { return Double(number) }
    if let integer = value as? any BinaryInteger { return Double(integer) }
    if let text = value as? any StringProtocol, let number = Double(String(text)) {
      return number
    }
    throw wrongType(key, option, "a number", value)
  }

  func milliseconds(_ option: ConnectionConfig.Option) throws(MilvexError) -> Duration? {
    guard let (key, value) = values[option] else { return nil }
    if let duration = value as? Duration { return duration }
    if let integer = value as? any BinaryInteger, let exact = Int64(exactly: integer) {
      return .milliseconds(exact)
    }
    if let text = value as? any StringProtocol, let integer = Int64(String(text)) {
      return .milliseconds(integer)
    }
    // Duration.milliseconds(Double) traps on infinity and NaN; those fall through to the
    // error.
    if let number = try? self.number(option), number.isFinite,
      abs(number) < 1e15
    {
      return .milliseconds(number)
    }
    throw wrongType(key, option, "a number of milliseconds", value)
  }

  func bool(_ option: ConnectionConfig.Option) throws(MilvexError) -> Bool? {
    guard let (key, value) = values[option] else { return nil }
    if let flag = value as? Bool { return flag }
    if let text = value as? any StringProtocol {
      switch String(text).lowercased() {
      case "true", "1": return true
      case "false", "0": return false
      default: break
      }
    }
    throw wrongType(key, option, "true or false", value)
  }

  /// The key an option was given under, if it was given.
  func key(_ option: ConnectionConfig.Option) -> String? { values[option]?.key }

  /// The option's value as a string-keyed dictionary (such as `ssl_options`).
  func dictionary(_ option: ConnectionConfig.Option) throws(MilvexError) -> [String: Any]? {
    guard let (key, value) = values[option] else { return nil }
    if let dictionary = value as? [String: Any] { return dictionary }
    throw wrongType(key, option, "a dictionary with string keys", value)
  }

  private func wrongType(
    _ key: String, _ option: ConnectionConfig.Option, _ expected: String, _ value: any Sendable
  ) -> MilvexError {
    wrongType(key, secret: option.isSecret, expected, value)
  }

  /// The error for `key`'s value of the wrong type; the value is shown only when allowed and
  /// not `secret`, otherwise its type is.
  func wrongType(_ key: String, secret: Bool, _ expected: String, _ value: Any) -> MilvexError {
    guard echoesValues else {
      return .invalidArgument(
        field: key, message: "must be \(expected) (the value given is not shown)")
    }
    let given = secret ? "a value of type \(type(of: value))" : "'\(value)'"
    return .invalidArgument(field: key, message: "must be \(expected), got \(given)")
  }
}
