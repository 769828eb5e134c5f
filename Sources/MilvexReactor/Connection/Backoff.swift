/// A source of uniformly distributed random values for the jitter of a connection's reconnect
/// backoff.
///
/// Production code uses ``SystemBackoffRandomSource``; tests pin the values to get exact
/// delays.
public protocol BackoffRandomSource: Sendable {
  /// Returns a value uniformly distributed in `0..<1`.
  ///
  /// A value outside `0...1` is clamped into it by the connection's backoff; NaN counts as 0.5
  /// (no jitter).
  mutating func nextUnitValue() -> Double
}

/// The system's cryptographically secure generator: every client draws independent jitter, so
/// a thousand clients that lost the same server do not come back at the same instant.
public struct SystemBackoffRandomSource: BackoffRandomSource {
  /// A source backed by the system's generator; it has no state of its own.
  public init() {}

  /// Returns a value from the system's cryptographically secure generator, uniform in `0..<1`.
  public mutating func nextUnitValue() -> Double {
    Double.random(in: 0..<1)
  }
}

/// Exponential backoff with jitter: the delay to wait before each retry of a failed attempt.
///
/// The delay before retry `n` (counting from 0) is `min(baseDelay * multiplier^n, maxDelay)`,
/// multiplied by a random factor uniform in `[1 - jitter, 1 + jitter]`, then clamped to
/// `[1 ms, maxDelay]`: the result never exceeds `maxDelay`, and is never zero, so a retry loop
/// can never spin.
///
/// The first delay (retry 0) is spread wider whenever there is any jitter: its factor is
/// uniform in `[0, 2]`, so the mean is still `baseDelay`. Clients that lost the same server
/// at the same instant would otherwise retry within ±10 % of each other, and since every
/// later delay is measured from the previous failure they would stay in step: a thundering
/// herd at the server on every wave (Docs/benchmarks.md, `make bench-many`). The wide first
/// draw gives each client its own phase, which the later ±`jitter` delays keep. With
/// `jitter` 0 every delay is exact.
///
/// ```swift
/// var backoff = Backoff(baseDelay: .seconds(1), maxDelay: .seconds(60), multiplier: 2,
///                       jitter: 0)
/// backoff.next()  // 1 s
/// backoff.next()  // 2 s
/// backoff.reset()
/// backoff.next()  // 1 s
/// ```
///
/// - Important: A value type without shared state: any thread may use it, and each copy
///   counts its retries (and draws from its copy of the random source) on its own.
struct Backoff: Sendable {
  /// The nominal delay before the first retry.
  let baseDelay: Duration
  /// The upper bound of every delay, after jitter.
  let maxDelay: Duration
  /// The factor by which the nominal delay grows with each retry.
  let multiplier: Double
  /// The relative spread of the random factor: 0.1 means ±10 %.
  let jitter: Double
  /// How many delays ``next()`` handed out since creation or the last ``reset()``: the
  /// retry number `n` of the next delay.
  private(set) var attempt: Int = 0

  private var random: any BackoffRandomSource

  /// The shortest delay ``next()`` returns.
  static let minimumDelay: Duration = .milliseconds(1)

  /// Creates a backoff that starts at retry 0.
  ///
  /// - Parameters:
  ///   - baseDelay: The nominal delay before the first retry; greater than zero.
  ///   - maxDelay: The largest delay, at least `baseDelay` and at least 1 ms.
  ///   - multiplier: Growth per retry, a finite number ≥ 1.
  ///   - jitter: Relative spread in `0...1`; 0 gives exact, predictable delays.
  ///   - random: Where the jitter comes from.
  ///
  /// Arguments outside these ranges are brought to the nearest allowed value (a NaN multiplier
  /// to 1, a NaN jitter to 0) rather than trapping: a library never crashes on its caller's
  /// numbers. ``ConnectionConfig/validate()`` reports out-of-range user input as errors before
  /// a connection builds its backoff, so connections never rely on this.
  init(
    baseDelay: Duration, maxDelay: Duration, multiplier: Double, jitter: Double,
    random: any BackoffRandomSource = SystemBackoffRandomSource()
  ) {
    // Every delay stays representable as Int64 nanoseconds.
    let longest = Self.longestDelay
    let base = min(max(baseDelay, Self.minimumDelay), longest)
    self.baseDelay = base
    self.maxDelay = min(max(maxDelay, base), longest)
    self.multiplier = multiplier.isFinite ? max(multiplier, 1) : 1
    self.jitter = jitter.isNaN ? 0 : min(max(jitter, 0), 1)
    self.random = random
  }

  /// The longest delay a backoff hands out (2^32 s, about 136 years).
  static let longestDelay: Duration = .seconds(1 << 32)

  /// Returns the delay before the next retry and counts the retry.
  ///
  /// Never fails and never ends: after enough retries every delay is `maxDelay` (jittered
  /// downwards only).
  mutating func next() -> Duration {
    let nominal = nominalDelay(retry: attempt)
    if attempt < Int.max { attempt += 1 }
    guard jitter > 0 else { return nominal }
    let drawn = random.nextUnitValue()
    // `min`/`max` pass NaN through, and a NaN delay would trap in the Int64 conversion below.
    let unit = drawn.isNaN ? 0.5 : min(max(drawn, 0), 1)
    // Retry 0 sets the client's phase: the full spread (see the type's documentation).
    let spread = attempt == 1 ? 1 : jitter
    let factor = 1 - spread + 2 * spread * unit
    let jittered = nanoseconds(nominal) * factor
    if jittered >= nanoseconds(maxDelay) { return maxDelay }
    if jittered <= nanoseconds(Self.minimumDelay) { return Self.minimumDelay }
    return .nanoseconds(Int64(jittered.rounded()))
  }

  /// Starts again from retry 0, as after a successful attempt.
  mutating func reset() {
    attempt = 0
  }

  /// The delay before retry `n` without jitter: `min(baseDelay * multiplier^n, maxDelay)`.
  ///
  /// Safe for any `n`: the power saturates instead of overflowing.
  func nominalDelay(retry n: Int) -> Duration {
    let growth = Self.power(multiplier, max(n, 0))
    let ceiling = nanoseconds(maxDelay) / nanoseconds(baseDelay)
    // `growth` may be +infinity for a huge `n`; the comparison still holds.
    if growth >= ceiling { return maxDelay }
    let delay = nanoseconds(baseDelay) * growth
    return max(.nanoseconds(Int64(delay.rounded())), Self.minimumDelay)
  }

  /// `base^exponent` by repeated squaring: O(log n) steps, and for a huge exponent it reaches
  /// +infinity (which IEEE arithmetic allows) instead of trapping.
  private static func power(_ base: Double, _ exponent: Int) -> Double {
    var result = 1.0
    var square = base
    var remaining = exponent
    while remaining > 0 {
      if remaining & 1 == 1 { result *= square }
      remaining >>= 1
      if remaining > 0 { square *= square }
      if result.isInfinite { break }
    }
    return result
  }

  private func nanoseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
  }
}
