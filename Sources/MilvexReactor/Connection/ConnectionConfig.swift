/// Where a connection goes, how it authenticates, and how it times out, keeps alive and
/// reconnects.
///
/// Three ways to make one, all validated the same way:
/// - the typed initializer, `init(host:port:database:...)`, whose parameters all have defaults;
/// - a dictionary of options, ``init(options:)``;
/// - a URI such as `milvus://root:Milvus@localhost:19530/default`, ``init(uri:)``.
///
/// | option | default | rule |
/// |---|---|---|
/// | host | `localhost` | non-empty; a `http://` or `https://` prefix is stripped; https: ssl |
/// | port | 19530 (443 when ssl) | 1–65535 |
/// | database | `default` | non-empty |
/// | user, password | none | both or neither |
/// | token | none | takes precedence over user and password |
/// | timeout | 30 s | 1000 ms – 30 days |
/// | connectTimeout | 10 s | 100 ms – 30 days |
/// | ssl | false | https:// and milvuss:// URIs turn it on |
/// | tls | `.default` | used when ssl is on; given without ssl it is an error |
/// | reconnectBaseDelay | 1 s | 100–60000 ms, ≤ reconnectMaxDelay |
/// | reconnectMaxDelay | 60 s | 1000–300000 ms |
/// | reconnectMultiplier | 2.0 | 1.0–10.0 |
/// | reconnectJitter | 0.1 | 0.0–1.0 |
/// | keepaliveTime | 10 s | 10000 ms – 30 days |
/// | keepaliveTimeout | 10 s | 1000 ms – 30 days |
///
/// A value out of range is an error naming the field and the allowed range; nothing is
/// silently clamped. The 30-day ceiling keeps every deadline and timer representable in
/// nanoseconds (and in gRPC's `grpc-timeout` header), so no value can overflow later. The
/// fields are mutable: call ``validate()`` after changing them (starting a connection
/// validates again).
///
/// ``description`` and the mirror (`dump`) show `<redacted>` for the token, the password and
/// the TLS private key, and PEM bytes only by their size; error messages never contain them
/// either.
///
/// - Important: A `Sendable` value: create, validate and read it on any thread.
public struct ConnectionConfig: Sendable, Equatable, CustomStringConvertible {
  /// Host name or IP address of the Milvus server (an IPv6 address without brackets).
  public var host: String
  /// TCP port of the Milvus server.
  public var port: Int
  /// The Milvus database that calls use (sent as `dbname` metadata).
  public var database: String
  /// User name for username/password authentication; needs ``password``.
  public var user: String?
  /// Password for ``user``. Never printed.
  public var password: String?
  /// API token (Zilliz Cloud API key, or `user:password`); takes precedence over ``user`` and
  /// ``password``. Never printed.
  public var token: String?
  /// Default deadline of each call.
  public var timeout: Duration
  /// How long one connection attempt (resolve, TCP, TLS, HTTP/2 handshake) may take.
  public var connectTimeout: Duration
  /// Whether to use TLS, configured by ``tls``.
  public var ssl: Bool
  /// How TLS verifies the server and authenticates the client; used when ``ssl`` is on. The
  /// default verifies the server's certificate against the system trust store and the host
  /// name. A value other than `.default` while ``ssl`` is off is an error, so that TLS files
  /// given by mistake to a plaintext connection are never silently ignored.
  public var tls: TLSConfiguration
  /// Nominal delay before the first retry after a failed attempt (Docs/connection.md, "Backoff").
  public var reconnectBaseDelay: Duration
  /// Largest delay between attempts.
  public var reconnectMaxDelay: Duration
  /// Growth of the delay per retry.
  public var reconnectMultiplier: Double
  /// Relative random spread of each delay (0.1 = ±10 %), so that clients that lost the same
  /// server do not all come back at the same instant. Above 0, the first delay of each run of
  /// failures is spread wider, from 0 to twice ``reconnectBaseDelay`` (the same mean), so that
  /// such clients do not retry in step ever after (Docs/connection.md, "Backoff"); 0 makes
  /// every delay exact.
  public var reconnectJitter: Double
  /// Idle time after which an HTTP/2 PING checks that the server is still there.
  public var keepaliveTime: Duration
  /// How long to wait for the PING's answer before declaring the connection dead.
  public var keepaliveTimeout: Duration
  /// **For tests only.** Lowers the minimums so that tests can exercise keepalive and
  /// reconnection in milliseconds: keepaliveTime and keepaliveTimeout ≥ 50 ms,
  /// reconnectBaseDelay and reconnectMaxDelay ≥ 1 ms. Never set it in production: such short
  /// timings flood a struggling server with PINGs and reconnects.
  public var allowTestingTimings: Bool
  /// More endpoints of the same deployment besides ``host``:``port`` (several Milvus proxies,
  /// listed one by one). The connection keeps one reconnecting channel per endpoint and spreads
  /// calls over the ready ones by ``loadBalancing``; every other setting applies to all of
  /// them. Empty by default: one endpoint. See ``init(uris:)``.
  public var additionalEndpoints: [Endpoint] = []
  /// How calls are spread over the ready endpoints when there are several.
  public var loadBalancing: LoadBalancingPolicy = .roundRobin
  /// How often each connected endpoint is asked whether it is healthy (the set-up step's
  /// probe; Milvus's `CheckHealth` for the Milvus client): an unhealthy endpoint gets no new
  /// calls while a healthy one is ready. Nil (the default): no probe. At least 1 s (10 ms with
  /// ``allowTestingTimings``), at most 30 days.
  public var healthCheckInterval: Duration?
  /// Channel recycling: after this age (±10 % jitter, so that many connections do not recycle
  /// together) a connected channel is replaced. The new channel is opened (and set up) while
  /// the old one keeps serving; then new calls go to the new one and the old one closes once
  /// its calls have finished: no call fails because of recycling. Nil (the default): channels
  /// live until they fail. At least 1 s (10 ms with ``allowTestingTimings``), at most 30 days.
  public var maxChannelAge: Duration?
  /// How a host name becomes endpoints: ``AddressResolution/perAttempt`` (the default), or an
  /// endpoint per address with ``AddressResolution/everyAddress(refreshInterval:)``. The
  /// refresh interval is at least 1 s (10 ms with ``allowTestingTimings``), at most 30 days.
  public var addressResolution: AddressResolution = .perAttempt
  /// The DNS server that resolves the host names (an IP address and a port), in place of the
  /// system's servers in `/etc/resolv.conf`; `/etc/hosts` is still read first. Nil (the
  /// default): the system's.
  public var dnsServer: Endpoint?
  /// For an endpoint made from one address of a host name: the IP address its channels connect
  /// to (text: see `GRPCChannelConfiguration.connectAddress`).
  var connectAddress: String?

  /// The port used when none is given and ``ssl`` is off.
  public static let defaultPort = 19530
  /// The port used when none is given and ``ssl`` is on.
  public static let defaultSSLPort = 443

  /// Creates a validated configuration.
  ///
  /// - Parameters:
  ///   - host: Host name or IP address. A `http://` or `https://` prefix is stripped, and
  ///     `https://` turns ``ssl`` on. An IPv6 address may be given with or without brackets.
  ///   - port: TCP port; `nil` means 19530, or 443 when ssl is on.
  ///   - database: The Milvus database calls use (``database``); `default` by default.
  ///   - user: User name for username/password authentication (``user``); needs `password`.
  ///   - password: Password for `user` (``password``); needs `user`.
  ///   - token: API token (``token``); takes precedence over `user` and `password`.
  ///   - timeout: Default deadline of each call (``timeout``); 30 s by default.
  ///   - connectTimeout: How long one connection attempt may take (``connectTimeout``); 10 s
  ///     by default.
  ///   - ssl: Whether to use TLS (``ssl``); `false` by default.
  ///   - tls: Trust roots, client certificate, server name and verification; needs ssl on
  ///     (or an `https://` host).
  ///   - reconnectBaseDelay: Nominal delay before the first retry (``reconnectBaseDelay``);
  ///     1 s by default.
  ///   - reconnectMaxDelay: Largest delay between attempts (``reconnectMaxDelay``); 60 s by
  ///     default.
  ///   - reconnectMultiplier: Growth of the delay per retry (``reconnectMultiplier``); 2.0 by
  ///     default.
  ///   - reconnectJitter: Relative random spread of each delay (``reconnectJitter``); 0.1 by
  ///     default.
  ///   - keepaliveTime: Idle time before an HTTP/2 PING (``keepaliveTime``); 10 s by default.
  ///   - keepaliveTimeout: How long to wait for the PING's answer (``keepaliveTimeout``); 10 s
  ///     by default.
  ///   - allowTestingTimings: For tests only, see ``allowTestingTimings``.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` naming the first field that is
  ///   out of range, with the allowed range.
  public init(
    host: String = "localhost",
    port: Int? = nil,
    database: String = "default",
    user: String? = nil,
    password: String? = nil,
    token: String? = nil,
    timeout: Duration = .seconds(30),
    connectTimeout: Duration = .seconds(10),
    ssl: Bool = false,
    tls: TLSConfiguration = .default,
    reconnectBaseDelay: Duration = .seconds(1),
    reconnectMaxDelay: Duration = .seconds(60),
    reconnectMultiplier: Double = 2.0,
    reconnectJitter: Double = 0.1,
    keepaliveTime: Duration = .seconds(10),
    keepaliveTimeout: Duration = .seconds(10),
    allowTestingTimings: Bool = false
  ) throws(MilvexError) {
    try self.init(
      host: host, port: port, database: database, user: user, password: password, token: token,
      timeout: timeout, connectTimeout: connectTimeout, ssl: ssl, tls: tls,
      reconnectBaseDelay: reconnectBaseDelay, reconnectMaxDelay: reconnectMaxDelay,
      reconnectMultiplier: reconnectMultiplier, reconnectJitter: reconnectJitter,
      keepaliveTime: keepaliveTime, keepaliveTimeout: keepaliveTimeout,
      allowTestingTimings: allowTestingTimings, echoingValues: true)
  }

  /// The initializer behind the public ones.
  ///
  /// - Parameter echoingValues: Whether error messages may repeat the values given (`got 5 ms`).
  ///   `false` for a URI: a password with an unescaped `?` or `@` spills into its other parts,
  ///   so no part of a URI may appear in a message.
  init(
    host: String, port: Int?, database: String, user: String?, password: String?,
    token: String?, timeout: Duration, connectTimeout: Duration, ssl: Bool,
    tls: TLSConfiguration, reconnectBaseDelay: Duration, reconnectMaxDelay: Duration,
    reconnectMultiplier: Double,
    reconnectJitter: Double, keepaliveTime: Duration, keepaliveTimeout: Duration,
    allowTestingTimings: Bool, echoingValues: Bool
  ) throws(MilvexError) {
    var host = host
    var ssl = ssl
    if let stripped = Self.strippingSSLPrefix(from: host) {
      host = stripped
      ssl = true
    } else if let stripped = Self.strippingPrefix("http://", from: host) {
      host = stripped
    }
    if host.count > 2, host.hasPrefix("["), host.hasSuffix("]") {
      host = String(host.dropFirst().dropLast())
    }
    self.host = host
    self.port = port ?? (ssl ? Self.defaultSSLPort : Self.defaultPort)
    self.database = database
    self.user = user
    self.password = password
    self.token = token
    self.timeout = timeout
    self.connectTimeout = connectTimeout
    self.ssl = ssl
    self.tls = tls
    self.reconnectBaseDelay = reconnectBaseDelay
    self.reconnectMaxDelay = reconnectMaxDelay
    self.reconnectMultiplier = reconnectMultiplier
    self.reconnectJitter = reconnectJitter
    self.keepaliveTime = keepaliveTime
    self.keepaliveTimeout = keepaliveTimeout
    self.allowTestingTimings = allowTestingTimings
    try validate(echoingValues: echoingValues)
  }

  /// `host` without its `https://` prefix, or nil if it has none (the prefix turns ssl on).
  static func strippingSSLPrefix(from host: String) -> String? {
    strippingPrefix("https://", from: host)
  }

  private static func strippingPrefix(_ prefix: String, from host: String) -> String? {
    guard host.count >= prefix.count,
      host.prefix(prefix.count).lowercased() == prefix
    else { return nil }
    return String(host.dropFirst(prefix.count))
  }

  /// Checks every field against the table in the type's documentation.
  ///
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for the first field that is
  ///   out of range; the message names the allowed range and, except for secrets, the value
  ///   given.
  public func validate() throws(MilvexError) {
    try validate(echoingValues: true)
  }

  /// The longest timeout, keepalive time or keepalive timeout: far beyond any sensible
  /// setting, and far below what overflows a nanosecond count or a `grpc-timeout` header.
  static let longestTiming: Duration = .seconds(30 * 24 * 3600)

  /// ``validate()``, optionally without repeating the values in the messages (see
  /// `init(..., echoingValues:)`).
  func validate(echoingValues: Bool) throws(MilvexError) {
    let given = GivenValue(shown: echoingValues)
    try validateEndpoint(given)
    try validateAdditionalEndpoints()
    try validatePeriodicChecks()
    try validateDNSServer()
    try validateCredentials()
    try validateTimings(given)
    try validateTLS()
  }

  /// Writes `, got <value>` after a range, or nothing when values must not be repeated.
  private struct GivenValue {
    let shown: Bool

    func callAsFunction(_ value: @autoclosure () -> String) -> String {
      shown ? ", got \(value())" : ""
    }
  }

  private func validateEndpoint(_ given: GivenValue) throws(MilvexError) {
    if host.isEmpty {
      throw invalid("host", "must not be empty")
    }
    if host.contains("://") {
      throw invalid("host", "must not contain a scheme other than a stripped http:// or https://")
    }
    if host.contains(where: { $0.isWhitespace || "/?#@[]".contains($0) }) {
      throw invalid("host", "must be a host name or IP address, without path, query or user")
    }
    if host.filter({ $0 == ":" }).count == 1 {
      throw invalid("host", "must not contain a port; give the port in the port option")
    }
    guard (1...65535).contains(port) else {
      throw invalid("port", "must be between 1 and 65535" + given("\(port)"))
    }
    if database.isEmpty {
      throw invalid("database", "must not be empty")
    }
  }

  private func validateCredentials() throws(MilvexError) {
    // Messages here never include the values: they may be secrets.
    switch (user, password) {
    case (.some, .none):
      throw invalid("password", "is required when user is given (give both or neither)")
    case (.none, .some):
      throw invalid("user", "is required when password is given (give both or neither)")
    case (.some(let user), .some):
      if user.isEmpty { throw invalid("user", "must not be empty") }
    case (.none, .none):
      break
    }
    if let token, token.isEmpty {
      throw invalid("token", "must not be empty when given")
    }
  }

  private func validateTimings(_ given: GivenValue) throws(MilvexError) {
    let shortest: Duration = allowTestingTimings ? .milliseconds(1) : .milliseconds(100)
    let shortestMax: Duration = allowTestingTimings ? .milliseconds(1) : .milliseconds(1000)
    let shortestKeepalive: Duration = allowTestingTimings ? .milliseconds(50) : .seconds(10)
    let shortestKeepaliveTimeout: Duration =
      allowTestingTimings ? .milliseconds(50) : .seconds(1)
    try check("timeout", timeout, atLeast: .seconds(1), given)
    try check("connectTimeout", connectTimeout, atLeast: .milliseconds(100), given)
    try check("reconnectBaseDelay", reconnectBaseDelay, in: shortest, .seconds(60), given)
    try check("reconnectMaxDelay", reconnectMaxDelay, in: shortestMax, .seconds(300), given)
    if reconnectBaseDelay > reconnectMaxDelay {
      throw invalid(
        "reconnectBaseDelay",
        "must not exceed reconnectMaxDelay"
          + (given.shown ? " (\(Self.milliseconds(reconnectMaxDelay)))" : "")
          + given(Self.milliseconds(reconnectBaseDelay)))
    }
    // `contains` is false for NaN, so NaN is rejected too.
    if !(1.0...10.0).contains(reconnectMultiplier) {
      throw invalid(
        "reconnectMultiplier", "must be between 1.0 and 10.0" + given("\(reconnectMultiplier)"))
    }
    if !(0.0...1.0).contains(reconnectJitter) {
      throw invalid(
        "reconnectJitter", "must be between 0.0 and 1.0" + given("\(reconnectJitter)"))
    }
    try check("keepaliveTime", keepaliveTime, atLeast: shortestKeepalive, given)
    try check("keepaliveTimeout", keepaliveTimeout, atLeast: shortestKeepaliveTimeout, given)
  }

  private var testingNote: String { allowTestingTimings ? " (with allowTestingTimings)" : "" }

  /// Checks a timing that has a minimum and the common ceiling, ``longestTiming``.
  private func check(
    _ field: String, _ value: Duration, atLeast minimum: Duration, _ given: GivenValue
  ) throws(MilvexError) {
    guard value >= minimum, value <= Self.longestTiming else {
      throw invalid(
        field,
        "must be at least \(Self.milliseconds(minimum))\(testingNote) and at most 30 days "
          + "(\(Self.milliseconds(Self.longestTiming)))" + given(Self.milliseconds(value)))
    }
  }

  private func check(
    _ field: String, _ value: Duration, in minimum: Duration, _ maximum: Duration,
    _ given: GivenValue
  ) throws(MilvexError) {
    guard value >= minimum, value <= maximum else {
      throw invalid(
        field,
        "must be between \(Self.milliseconds(minimum)) and \(Self.milliseconds(maximum))"
          + testingNote + given(Self.milliseconds(value)))
    }
  }

  private func invalid(_ field: String, _ message: String) -> MilvexError {
    .invalidArgument(field: field, message: message)
  }

  /// `1500 ms`, or `0.25 ms` for a sub-millisecond duration; any duration, however large.
  static func milliseconds(_ duration: Duration) -> String {
    // Beyond this, `components` (Int64 seconds) or `seconds * 1000` would overflow and trap:
    // such a duration is written approximately, as a Double.
    let exactLimit = Duration.seconds(Int64.max / 1000)
    guard duration > .zero - exactLimit, duration < exactLimit else {
      return "\(duration / .milliseconds(1)) ms"
    }
    let (seconds, attoseconds) = duration.components
    let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
    if attoseconds % attosecondsPerMillisecond == 0 {
      return "\(seconds * 1000 + attoseconds / attosecondsPerMillisecond) ms"
    }
    return "\(Double(seconds) * 1000 + Double(attoseconds) / 1e15) ms"
  }

  /// Every field, with `<redacted>` in place of the token, the password and the TLS key.
  public var description: String {
    var fields = [
      "host: \(host)", "port: \(port)", "database: \(database)", "ssl: \(ssl)",
    ]
    // TLSConfiguration's description shows PEM bytes by size only, and no key.
    if ssl || tls != .default { fields.append("tls: \(tls)") }
    fields += [
      "user: \(user ?? "none")",
      "password: \(password == nil ? "none" : Self.redacted)",
      "token: \(token == nil ? "none" : Self.redacted)",
      "timeout: \(Self.milliseconds(timeout))",
      "connectTimeout: \(Self.milliseconds(connectTimeout))",
      "reconnectBaseDelay: \(Self.milliseconds(reconnectBaseDelay))",
      "reconnectMaxDelay: \(Self.milliseconds(reconnectMaxDelay))",
      "reconnectMultiplier: \(reconnectMultiplier)",
      "reconnectJitter: \(reconnectJitter)",
      "keepaliveTime: \(Self.milliseconds(keepaliveTime))",
      "keepaliveTimeout: \(Self.milliseconds(keepaliveTimeout))",
    ]
    if allowTestingTimings { fields.append("allowTestingTimings: true") }
    if !additionalEndpoints.isEmpty {
      fields.append("additionalEndpoints: \(additionalEndpoints)")
    }
    if !additionalEndpoints.isEmpty || addressResolution != .perAttempt {
      fields.append("loadBalancing: \(loadBalancing.rawValue)")
    }
    if addressResolution != .perAttempt {
      fields.append("addressResolution: \(addressResolution)")
    }
    if let dnsServer { fields.append("dnsServer: \(dnsServer)") }
    return "ConnectionConfig(\(fields.joined(separator: ", ")))"
  }

  static let redacted = "<redacted>"
}

extension ConnectionConfig: CustomReflectable {
  /// Redacts the secrets for `dump` and debuggers too, which otherwise read stored
  /// properties directly.
  public var customMirror: Mirror {
    Mirror(
      self,
      children: [
        "host": host, "port": port, "database": database, "ssl": ssl,
        // The description, not the value: a mirror of the value would list the key's bytes.
        "tls": tls.description,
        "user": user as Any,
        "password": password == nil ? "none" : Self.redacted,
        "token": token == nil ? "none" : Self.redacted,
        "timeout": timeout, "connectTimeout": connectTimeout,
        "reconnectBaseDelay": reconnectBaseDelay, "reconnectMaxDelay": reconnectMaxDelay,
        "reconnectMultiplier": reconnectMultiplier, "reconnectJitter": reconnectJitter,
        "keepaliveTime": keepaliveTime, "keepaliveTimeout": keepaliveTimeout,
        "allowTestingTimings": allowTestingTimings,
        "additionalEndpoints": additionalEndpoints, "loadBalancing": loadBalancing,
        "addressResolution": addressResolution, "dnsServer": dnsServer as Any,
      ],
      displayStyle: .struct)
  }
}
