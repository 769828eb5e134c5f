/// When a Milvus call is tried again. Separate from reconnection: the connection replaces a dead
/// channel on its own; this decides whether one call, having failed, is sent again.
///
/// Only failures that may succeed later are retried: gRPC `UNAVAILABLE` (the server or the
/// connection went away), Milvus's rate limit and service-unavailable codes, and not being
/// connected. Each delay grows by `multiplier` from `baseDelay` up to `maxDelay`, spread by
/// ±`jitter`, and is only taken if it ends before the call's deadline. Writes (insert, upsert,
/// delete) are retried only when ``retryWrites`` is set, because a write the server applied
/// before the failure would apply twice; the client counts a write whose request was never sent
/// (its schema lookup failed) as a read.
///
/// A pure value: ``decide(attempt:error:isWrite:remaining:random:)`` has no clock and no I/O.
public struct RetryPolicy: Sendable, Hashable {
  /// Attempts in total, including the first (1 = never retry).
  public var maxAttempts: Int
  /// The delay before the first retry, before jitter; positive. Default 100 ms.
  public var baseDelay: Duration
  /// The longest delay between two attempts, before jitter; from ``baseDelay`` up to
  /// ``longestDelay``. Default 3 s.
  public var maxDelay: Duration
  /// How much each delay grows over the one before; at least 1 (1: every delay is
  /// ``baseDelay``). Default 2.
  public var multiplier: Double
  /// The fraction (0 … 1) a delay is spread by, up or down.
  public var jitter: Double
  /// Whether insert, upsert and delete are retried too.
  public var retryWrites: Bool

  /// A policy with the given settings; the defaults retry up to 4 times (5 attempts) after
  /// 100 ms, 200 ms, 400 ms and 800 ms, each ±10 %, and never retry writes.
  ///
  /// Not checked here: ``validate()`` (run when a client or a call uses the policy) names a
  /// setting out of range.
  ///
  /// - Parameters:
  ///   - maxAttempts: Attempts in total, including the first; 1...100.
  ///   - baseDelay: The delay before the first retry; positive.
  ///   - maxDelay: The longest delay; from `baseDelay` up to ``longestDelay``.
  ///   - multiplier: How much each delay grows; at least 1.
  ///   - jitter: The fraction a delay is spread by, up or down; 0...1.
  ///   - retryWrites: Whether insert, upsert and delete are retried too.
  public init(
    maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(100),
    maxDelay: Duration = .seconds(3),
    multiplier: Double = 2, jitter: Double = 0.1, retryWrites: Bool = false
  ) {
    self.maxAttempts = maxAttempts
    self.baseDelay = baseDelay
    self.maxDelay = maxDelay
    self.multiplier = multiplier
    self.jitter = jitter
    self.retryWrites = retryWrites
  }

  /// The longest delay between attempts a policy may ask for.
  public static let longestDelay: Duration = .seconds(3600)

  /// One attempt, no retries.
  public static let never = RetryPolicy(maxAttempts: 1)

  /// Names the first setting out of range.
  public func validate() throws(MilvexError) {
    guard (1...100).contains(maxAttempts) else {
      throw .invalidArgument(
        field: "retryPolicy.maxAttempts", message: "must be in 1...100, is \(maxAttempts)")
    }
    guard baseDelay > .zero else {
      throw .invalidArgument(
        field: "retryPolicy.baseDelay", message: "must be positive, is \(baseDelay)")
    }
    guard maxDelay >= baseDelay, maxDelay <= Self.longestDelay else {
      throw .invalidArgument(
        field: "retryPolicy.maxDelay",
        message: "must be in baseDelay (\(baseDelay)) ... \(Self.longestDelay), is \(maxDelay)")
    }
    guard multiplier >= 1, multiplier.isFinite else {
      throw .invalidArgument(
        field: "retryPolicy.multiplier", message: "must be at least 1, is \(multiplier)")
    }
    guard (0...1).contains(jitter) else {
      throw .invalidArgument(field: "retryPolicy.jitter", message: "must be in 0...1, is \(jitter)")
    }
  }

  /// What ``decide(attempt:error:isWrite:remaining:random:)`` answers: try again after a delay,
  /// or fail the call with the error of the last attempt.
  public enum Decision: Sendable, Hashable {
    case retry(after: Duration)
    case fail
  }

  /// Whether `error` is one a retry can cure (independent of attempts and deadline).
  public static func isRetriable(_ error: MilvexError) -> Bool {
    switch error {
    case .grpcStatus(let status): return status.code == .unavailable
    case .milvus: return error.isRetriable
    case .notConnected: return true
    case .connection(_, _, _, let retriable): return retriable
    case .tls(let failure, _, _): return failure.isRetriable
    default: return false
    }
  }

  /// The delay before attempt `attempt + 1` without jitter: `baseDelay × multiplier^(attempt-1)`,
  /// capped at `maxDelay`.
  ///
  /// Computed in floating-point seconds, so that no setting (even one ``validate()`` would
  /// refuse) can overflow a `Duration`.
  public func delay(afterAttempt attempt: Int) -> Duration {
    guard baseDelay < maxDelay else { return max(.zero, min(baseDelay, maxDelay)) }
    let limit = maxDelay.seconds
    let growth = multiplier.isFinite ? max(multiplier, 1) : 1
    var seconds = max(0, baseDelay.seconds)
    // Past 2,000 steps any growth > 1 has long reached the limit; growth 1 never does.
    for _ in 1..<min(max(attempt, 1), 2_000) {
      seconds *= growth
      if seconds >= limit { return maxDelay }
    }
    if seconds >= limit { return maxDelay }
    // Whole nanoseconds, so that 100 ms × 2 × 2 is exactly 400 ms.
    let nanoseconds = (seconds * 1e9).rounded()
    return nanoseconds < 9e18 ? .nanoseconds(Int64(nanoseconds)) : .seconds(seconds)
  }

  /// What to do after attempt number `attempt` (1-based) failed with `error`.
  ///
  /// - Parameters:
  ///   - attempt: the number of the attempt that failed, 1-based.
  ///   - error: why it failed; retried only if ``isRetriable(_:)``.
  ///   - isWrite: whether the call is a write (insert, upsert, delete): retried only with
  ///     ``retryWrites``.
  ///   - remaining: the time left before the call's deadline.
  ///   - random: a number in 0 ..< 1 that places the delay within the jitter.
  public func decide(
    attempt: Int, error: MilvexError, isWrite: Bool, remaining: Duration, random: Double
  ) -> Decision {
    guard attempt < maxAttempts, Self.isRetriable(error), !isWrite || retryWrites else {
      return .fail
    }
    // Out-of-range inputs (a NaN draw, an unvalidated jitter) are clamped, never trapped on.
    let unit = random.isFinite ? min(max(random, 0), 1) : 0.5
    let spread = 1 + (jitter.isFinite ? min(max(jitter, 0), 1) : 0) * (2 * unit - 1)
    // Whole microseconds: the same inputs give exactly the same delay.
    let microseconds = (delay(afterAttempt: attempt).seconds * 1e6 * spread).rounded()
    guard microseconds < 9e18 else { return .fail }  // beyond any deadline (and Int64)
    let delay = Duration.microseconds(Int64(microseconds))
    // A retry that cannot start before the deadline would only fail with DEADLINE_EXCEEDED.
    guard delay < remaining else { return .fail }
    return .retry(after: delay)
  }
}
