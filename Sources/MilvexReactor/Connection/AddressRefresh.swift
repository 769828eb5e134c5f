/// The pure part of ``AddressResolution/everyAddress(refreshInterval:)`` for one host name:
/// when to resolve it, and which endpoints a resolution adds and removes.
///
/// Events in (a resolution's answer or failure, an endpoint of the name failing, the timer),
/// actions out (resolve now, wake up at a time). Time is a `Duration` since the connection
/// started, given by the caller; no I/O. ``EndpointGroup`` executes.
///
/// The rules:
/// - the name is resolved at the start, then `refreshInterval` after each resolution began;
/// - an endpoint of the name failing asks for an earlier resolution, at most one per
///   `failureSpacing` (a server that keeps refusing cannot flood the DNS server);
/// - a failed resolution keeps the addresses the name had; with none yet, it is tried again
///   after the reconnect backoff's delays (no jitter), so a connection whose name does not
///   resolve yet keeps trying;
/// - one resolution at a time.
struct AddressRefresh {
  /// What the owner does next.
  enum Action: Equatable {
    /// Nothing (a resolution is under way, or the timer is already right).
    case none
    /// Start resolving the name now.
    case resolve
    /// Arm the timer for this time (since the start); call ``wokeUp(now:)`` then.
    case wakeUp(at: Duration)
  }

  /// What a resolution changed.
  struct Change: Equatable {
    /// Addresses that are new endpoints, in the order resolved.
    var added: [SocketAddress]
    /// Endpoints whose address is gone.
    var removed: [SocketAddress]
    /// What to do next.
    var next: Action
  }

  let refreshInterval: Duration
  /// The shortest time between the starts of two resolutions asked for by failures.
  let failureSpacing: Duration
  /// Delays between the retries of a name that has never resolved.
  private var retryDelays: RetryDelays
  /// The endpoints the name has now, in the order resolved.
  private(set) var addresses: [SocketAddress] = []
  private var resolving = false
  /// When the latest resolution began.
  private var lastStart: Duration?
  /// When the next resolution is due.
  private var due: Duration?

  /// A schedule for a name resolved every `refreshInterval`; failures ask for a resolution at
  /// most once per `min(refreshInterval, 5 s)`.
  init(refreshInterval: Duration, retryBase: Duration, retryMax: Duration, multiplier: Double) {
    self.refreshInterval = refreshInterval
    self.failureSpacing = min(refreshInterval, .seconds(5))
    self.retryDelays = RetryDelays(base: retryBase, max: retryMax, multiplier: multiplier)
  }

  /// The connection started: resolve at once.
  mutating func start(now: Duration) -> Action {
    begin(now: now)
  }

  /// A resolution found `found` (at least one address).
  mutating func resolved(_ found: [SocketAddress], now: Duration) -> Change {
    resolving = false
    retryDelays.reset()
    let added = found.filter { !addresses.contains($0) }
    let removed = addresses.filter { !found.contains($0) }
    addresses = found
    let start = lastStart ?? now
    // A failure may have asked for an earlier resolution meanwhile.
    due = earlier(due, start + refreshInterval)
    return Change(added: added, removed: removed, next: wokeUp(now: now))
  }

  /// A resolution failed: the name keeps its endpoints; one that has none tries again soon.
  mutating func resolutionFailed(now: Duration) -> Action {
    resolving = false
    let start = lastStart ?? now
    due = addresses.isEmpty ? now + retryDelays.next() : earlier(due, start + refreshInterval)
    return wokeUp(now: now)
  }

  /// One of the name's endpoints failed (a lost channel or a failed attempt): its address may
  /// have moved, so resolve soon.
  mutating func endpointFailed(now: Duration) -> Action {
    let earliest = (lastStart ?? now) + failureSpacing
    let before = due
    due = earlier(due, max(now, earliest))
    if resolving || due == before { return .none }
    return wokeUp(now: now)
  }

  /// The timer fired (or a change may make a resolution due): resolve if one is due,
  /// otherwise say when to wake up.
  mutating func wokeUp(now: Duration) -> Action {
    guard !resolving, let due else { return .none }
    return now >= due ? begin(now: now) : .wakeUp(at: due)
  }

  private func earlier(_ time: Duration?, _ other: Duration) -> Duration {
    time.map { min($0, other) } ?? other
  }

  private mutating func begin(now: Duration) -> Action {
    resolving = true
    lastStart = now
    due = nil
    return .resolve
  }
}

/// The reconnect backoff's delays without jitter: base, base × multiplier, … up to max.
struct RetryDelays {
  let base: Duration
  let max: Duration
  let multiplier: Double
  private var current: Duration?

  init(base: Duration, max: Duration, multiplier: Double) {
    self.base = base
    self.max = max
    self.multiplier = multiplier
  }

  mutating func next() -> Duration {
    let delay = current.map { Swift.min($0 * multiplier, max) } ?? Swift.min(base, max)
    current = delay
    return delay
  }

  mutating func reset() { current = nil }
}
