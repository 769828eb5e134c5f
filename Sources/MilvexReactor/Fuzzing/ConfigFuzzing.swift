/// The `ConnectionConfig` and ``Backoff`` halves of ``FuzzEntryPoints/connectionConfig(_:)``.
enum ConfigFuzzing {
  /// Stands for a password or token; no error message may contain it.
  static let secretMarker = "SECRETMARK"

  // MARK: - URI

  static func uri(_ text: String) {
    let uri = text.split(separator: "*", omittingEmptySubsequences: false)
      .joined(separator: secretMarker)
    do {
      let config = try ConnectionConfig(uri: uri)
      checkValid(config)
    } catch {
      // Nothing of a URI is repeated in an error: a secret spills into any part of it.
      checkRejection(error)
    }
  }

  // MARK: - Options dictionary

  /// Every key `init(options:)` knows, and a few near misses.
  private static let keys: [String] =
    ConnectionConfig.Option.allCases.flatMap { [$0.rawValue] + ($0.alias.map { [$0] } ?? []) }
    + ["Host", "reconnect_delay", "keepAlive", "token=x", "", "tim eout"]

  private static let interestingStrings = [
    "", "0", "1", "-1", "1000", "100", "10000", "60000", "300000", "19530", "65536", "nan", "NaN",
    "inf", "-inf", "infinity", "1e400", "-1e400", "1e15", "0x10", "0x1p3", "true", "FALSE", "yes",
    "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "99999999999999999999", "1.5", "0.1", " 1", "1_000", "+5", "localhost", "https://host",
    "http://h", "HTTPS://x", "[::1]", "::1", "h:1", "a/b", "db", "root", "\u{0}", "é",
  ]

  static func options(_ input: inout FuzzInput) {
    var options: [String: any Sendable] = [:]
    for _ in 0..<input.choice(10) {
      let key = input.choice(5) == 0 ? unmarked(input.string()) : input.pick(keys)
      let isSecret = ConnectionConfig.Option(key: key)?.isSecret ?? false
      options[key] = value(&input, secret: isSecret)
    }
    do {
      checkValid(try ConnectionConfig(options: options))
    } catch {
      // Unknown keys and non-secret values may be named; they never hold the marker.
      checkRejection(error)
    }
  }

  /// A value of any of the types a configuration file or an Elixir caller might pass.
  private static func value(_ input: inout FuzzInput, secret: Bool) -> any Sendable {
    switch input.choice(13) {
    case 0: return secret ? secretMarker + input.string() : unmarked(input.string())
    case 1: return secret ? secretMarker : input.pick(interestingStrings)
    case 2: return Int(truncatingIfNeeded: input.edgyInt64())
    case 3: return input.edgyInt64()
    case 4: return input.uint64()
    case 5: return input.edgyDouble()
    case 6: return input.float()
    case 7: return input.bool()
    case 8: return duration(&input)
    case 9: return Int8(truncatingIfNeeded: input.byte())
    case 10: return UInt16(truncatingIfNeeded: input.edgyInt64())
    case 11: return [secret ? secretMarker : "x"]
    default: return Substring(secret ? secretMarker : input.pick(interestingStrings))
    }
  }

  /// Any duration a caller can make, including ones beyond `Int64` seconds.
  private static func duration(_ input: inout FuzzInput) -> Duration {
    let whole = Duration.seconds(input.edgyInt64())
    switch input.choice(6) {
    case 0: return whole
    case 1: return .milliseconds(input.edgyInt64())
    case 2: return whole + .nanoseconds(input.edgyInt64())
    case 3: return whole * Int(input.choice(11))  // up to 10 × Int64.max seconds: no overflow
    case 4: return .zero - whole * 10
    default: return .nanoseconds(input.edgyInt64())
    }
  }

  // MARK: - Typed initializer and backoff

  static func typedInitializerAndBackoff(_ input: inout FuzzInput) {
    let hosts = [
      "localhost", "https://cloud.example", "http://h", "[::1]", "::1", "", "a b", "h:1",
    ]
    do {
      let config = try ConnectionConfig(
        host: input.bool() ? input.pick(hosts) : unmarked(input.string()),
        port: input.bool() ? nil : Int(truncatingIfNeeded: input.edgyInt64()),
        database: input.pick(["default", "", "books"]),
        user: input.bool() ? nil : input.pick(["root", ""]),
        password: input.bool() ? nil : secretMarker + input.string(),
        token: input.bool() ? nil : secretMarker + input.string(),
        timeout: timing(&input), connectTimeout: timing(&input), ssl: input.bool(),
        reconnectBaseDelay: timing(&input), reconnectMaxDelay: timing(&input),
        reconnectMultiplier: input.edgyDouble(), reconnectJitter: input.edgyDouble(),
        keepaliveTime: timing(&input), keepaliveTimeout: timing(&input),
        allowTestingTimings: input.bool())
      checkValid(config)
      runBackoff(
        baseDelay: config.reconnectBaseDelay, maxDelay: config.reconnectMaxDelay,
        multiplier: config.reconnectMultiplier, jitter: config.reconnectJitter, &input)
    } catch {
      checkRejection(error)
    }
    // Backoff's own range, wider than the configuration's.
    let baseDelay = duration(&input)
    let maxDelay = duration(&input)
    let multiplier = input.edgyDouble()
    let jitter = input.edgyDouble()
    if baseDelay > .zero, maxDelay >= baseDelay, maxDelay >= Backoff.minimumDelay,
      maxDelay <= .seconds(1 << 32), multiplier.isFinite, multiplier >= 1,
      (0.0...1.0).contains(jitter)
    {
      runBackoff(
        baseDelay: baseDelay, maxDelay: maxDelay, multiplier: multiplier, jitter: jitter, &input)
    }
  }

  /// A plausible timing most of the time (so that later fields get checked too), else any.
  private static func timing(_ input: inout FuzzInput) -> Duration {
    input.choice(4) == 0 ? duration(&input) : .seconds(input.choice(61) + 1)
  }

  private static func runBackoff(
    baseDelay: Duration, maxDelay: Duration, multiplier: Double, jitter: Double,
    _ input: inout FuzzInput
  ) {
    var draws: [Double] = []
    for _ in 0..<input.choice(16) { draws.append(input.edgyDouble()) }
    var backoff = Backoff(
      baseDelay: baseDelay, maxDelay: maxDelay, multiplier: multiplier, jitter: jitter,
      random: ReplayedRandomSource(values: draws))
    for _ in 0...input.choice(80) {
      let delay = backoff.next()
      precondition(
        delay >= Backoff.minimumDelay && delay <= maxDelay,
        "Backoff.next() gave \(delay), outside [1 ms, \(maxDelay)]")
    }
    let nominal = backoff.nominalDelay(retry: Int(truncatingIfNeeded: input.edgyInt64()))
    precondition(nominal >= Backoff.minimumDelay && nominal <= maxDelay)
  }

  /// Draws the given values in turn (any `Double`, NaN included), then 0.5.
  private struct ReplayedRandomSource: BackoffRandomSource {
    let values: [Double]
    var next = 0

    mutating func nextUnitValue() -> Double {
      defer { next += 1 }
      return next < values.count ? values[next] : 0.5
    }
  }

  // MARK: - Invariants

  /// A configuration that was accepted validates again, and prints without its secrets.
  private static func checkValid(_ config: ConnectionConfig) {
    do {
      try config.validate()
    } catch {
      preconditionFailure("an accepted configuration fails validate(): \(error)")
    }
    // TLS file paths and the server name are shown (key files by path, never their bytes).
    var visible = [config.host, config.database, config.user ?? "", config.tls.serverName ?? ""]
    for source in [config.tls.trustRoots, config.tls.certificateChain, config.tls.privateKey] {
      if case .file(let path) = source { visible.append(path) }
    }
    let description = config.description
    if description.contains(secretMarker) {
      precondition(
        visible.contains { $0.contains(secretMarker) }, "description shows a secret: \(description)"
      )
    }
    _ = config.authorizationMetadata
  }

  /// A rejection is an `invalidArgument` without the secret marker.
  private static func checkRejection(_ error: any Error) {
    guard case MilvexError.invalidArgument(let field, let message) = error else {
      preconditionFailure("a bad configuration gave \(error), not invalidArgument")
    }
    precondition(!field.isEmpty && !message.isEmpty, "an error without words: \(error)")
    precondition(!"\(error)".contains(secretMarker), "an error shows a secret: \(error)")
  }

  /// `text` without the marker, for values that may legitimately be repeated.
  private static func unmarked(_ text: String) -> String {
    var text = text
    // Removing one marker can join two halves into another.
    while text.contains(secretMarker) {
      text = text.split(separator: secretMarker, omittingEmptySubsequences: false).joined()
    }
    return text
  }
}
