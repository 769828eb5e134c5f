/// How a connection with several endpoints spreads its calls over the ready ones.
public enum LoadBalancingPolicy: String, Sendable, Hashable, CaseIterable {
  /// Each call goes to the next ready endpoint in turn (the default).
  case roundRobin = "round_robin"
  /// Every call goes to the first ready endpoint in the configured order; the others take
  /// over only while it is not ready.
  case pickFirst = "pick_first"
}

/// The pure part of a connection with several endpoints: which endpoints are ready, the
/// connection's state as its observers see it, and which endpoint the next call goes to.
///
/// Events in (an endpoint's new state, its health), answers out (the aggregate state when it
/// changed, the endpoint to use). No I/O, no clock; ``EndpointGroup`` executes.
///
/// The aggregate state: `connected` while at least one endpoint is connected; `disconnected`
/// once every endpoint is; otherwise `connecting` until the connection was first connected,
/// `reconnecting` after.
struct EndpointBalancer {
  let policy: LoadBalancingPolicy
  /// Each endpoint's state, in configuration order.
  private(set) var states: [ConnectivityState]
  /// Whether each endpoint passed its last health probe (true until a probe says otherwise).
  private(set) var healthy: [Bool]
  /// Where the round-robin turn goes next.
  private var cursor = 0
  /// Whether any endpoint was ever connected.
  private var wasConnected = false

  /// Every endpoint starts `connecting` and healthy.
  init(endpoints: Int, policy: LoadBalancingPolicy) {
    self.policy = policy
    states = Array(repeating: .connecting, count: endpoints)
    healthy = Array(repeating: true, count: endpoints)
  }

  /// The connection's state as observers see it. With no endpoint (a host name not resolved
  /// yet) it is `connecting`, or `reconnecting` after the connection was connected.
  var aggregate: ConnectivityState {
    if states.contains(.connected) { return .connected }
    if !states.isEmpty, states.allSatisfy({ $0 == .disconnected }) { return .disconnected }
    return wasConnected ? .reconnecting : .connecting
  }

  /// A new endpoint at `index` (the ones from there move up by one), `connecting` and
  /// healthy.
  mutating func insert(at index: Int) {
    states.insert(.connecting, at: index)
    healthy.insert(true, at: index)
    if cursor > index { cursor += 1 }
  }

  /// Endpoint `index` leaves (the others move down by one); returns the aggregate state if it
  /// changed.
  mutating func remove(_ index: Int) -> ConnectivityState? {
    let before = aggregate
    states.remove(at: index)
    healthy.remove(at: index)
    if cursor > index { cursor -= 1 }
    if cursor >= states.count { cursor = 0 }
    let after = aggregate
    return after == before ? nil : after
  }

  /// Endpoint `index` is now in `state`; returns the aggregate state if it changed.
  mutating func endpoint(_ index: Int, changedTo state: ConnectivityState) -> ConnectivityState? {
    let before = aggregate
    states[index] = state
    if state == .connected { wasConnected = true }
    let after = aggregate
    return after == before ? nil : after
  }

  /// Endpoint `index` passed (or failed) a health probe. An unhealthy endpoint keeps its
  /// channel but gets no new calls until a probe passes again.
  mutating func endpoint(_ index: Int, isHealthy: Bool) {
    healthy[index] = isHealthy
  }

  /// Whether the endpoint takes new calls: connected and healthy.
  func isInRotation(_ index: Int) -> Bool {
    states[index] == .connected && healthy[index]
  }

  /// The endpoint for the next call, by the policy, among those in rotation; nil if none is.
  /// When every connected endpoint failed its probe, a connected one is used all the same:
  /// a probe may be wrong, and a call that can be sent beats one that cannot.
  mutating func pick() -> Int? {
    choose(requiringHealth: true) ?? choose(requiringHealth: false)
  }

  /// The endpoint the policy picks among the connected ones (and healthy, if required).
  private mutating func choose(requiringHealth: Bool) -> Int? {
    let count = states.count
    guard count > 0 else { return nil }
    let start = policy == .roundRobin ? cursor : 0
    for step in 0..<count {
      let index = (start + step) % count
      guard states[index] == .connected, !requiringHealth || healthy[index] else { continue }
      if policy == .roundRobin { cursor = (index + 1) % count }
      return index
    }
    return nil
  }
}
