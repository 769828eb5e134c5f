import Logging
import Metrics

/// The loop-side owner of a connection's endpoints: one ``ConnectionDriver`` (a reconnecting
/// channel with its own backoff) per endpoint, the pure ``EndpointBalancer`` that decides the
/// connection's state and which endpoint each call goes to, and for
/// ``AddressResolution/everyAddress(refreshInterval:)`` the pure ``AddressRefresh`` of each
/// host name, which decides when the name is resolved and which endpoints come and go. This
/// class only routes and executes: the drivers and the resolver do the I/O, the pure types
/// decide.
///
/// With one configured endpoint that is not expanded it is transparent: the driver's
/// transitions are the connection's.
///
/// - Important: Loop-confined. Every callback it invokes runs on the loop thread.
final class EndpointGroup {
  typealias ChannelWaiter = (Result<(GRPCChannel, ConnectionConfig), MilvexError>) -> Void

  let loop: EventLoop
  /// What making endpoints takes, kept only by a connection that expands host names (it makes
  /// them later); the others need none of it after `init`, and every connection counts in
  /// memory (10,000 on one loop in `make bench-many`).
  private let expansion: Expansion?
  private let setup: ErasedChannelSetup
  private let publish: (StateTransition) -> Void
  /// Tells the endpoint observers; `true` when the endpoint leaves the connection.
  private let publishEndpoint: (StateTransition, Bool) -> Void
  private let onTerminated: () -> Void
  /// Whether observers see endpoints: several configured, or host names expanded.
  private let isMulti: Bool
  /// The endpoints in rotation, in configuration order (a name's addresses in resolved
  /// order); `balancer` holds their states at the same indices.
  private var members: [Member] = []
  private var balancer: EndpointBalancer
  /// Endpoints whose address went away, finishing their calls.
  private var leaving: [Int: Member] = [:]
  /// The host names expanded into one endpoint per address.
  private var hosts: [HostWatch] = []
  private var nextMemberID = 0
  /// Drivers (members and leaving) that have not ended yet.
  private var running = 0
  private var started = false
  /// Set by ``disconnect(reason:)``.
  private var endReason: String?
  /// Callers waiting for any endpoint; each endpoint that appears joins them.
  private var openWaits: [SharedWait] = []
  /// The database calls default to (the same on every endpoint).
  private(set) var database: String
  private let startedAt: ContinuousClock.Instant
  /// How often connected endpoints are probed (nil: never), and how long a probe may take.
  private let healthCheck: (interval: Duration, timeout: Duration)?
  private var healthTimer: LoopTimer?
  private let relay: DriverRelay

  private struct Member {
    let id: Int
    let driver: ConnectionDriver
    /// As observers see it (with the address for one address of a name).
    let endpoint: Endpoint
    /// The host name it came from (index into `hosts`), for an expanded one; its address is
    /// `endpoint.address`.
    let host: Int?
    /// Whether a health probe of it is running (a slow one is not started again).
    var probing = false
  }

  init(
    loop: EventLoop, config: ConnectionConfig, name: String?, setup: ErasedChannelSetup,
    logger: Logger, random: any BackoffRandomSource, metrics: any MetricsFactory,
    publish: @escaping (StateTransition) -> Void,
    publishEndpoint: @escaping (StateTransition, Bool) -> Void,
    onTerminated: @escaping () -> Void
  ) {
    self.loop = loop
    self.startedAt = loop.now
    self.setup = setup
    self.balancer = EndpointBalancer(endpoints: 0, policy: config.loadBalancing)
    self.publish = publish
    self.publishEndpoint = publishEndpoint
    self.onTerminated = onTerminated
    self.database = config.database
    self.healthCheck = config.healthCheckInterval.map { ($0, min($0, config.timeout)) }
    let names = Self.expandedEndpoints(of: config)
    self.isMulti = config.endpoints.count > 1 || !names.isEmpty
    let context = MemberContext(
      config: config, name: name, logger: logger, random: random, metrics: metrics)
    self.expansion = names.isEmpty ? nil : Expansion(context: context)
    // The drivers report through `relay`, set right below: they need the group, and the
    // group needs them.
    self.relay = DriverRelay()
    relay.group = self
    for endpoint in config.endpoints {
      if names.contains(endpoint) {
        let refresh: Duration
        if case .everyAddress(let interval) = config.addressResolution {
          refresh = interval
        } else {
          refresh = .seconds(30)  // not reached: only .everyAddress expands
        }
        hosts.append(
          HostWatch(
            endpoint: endpoint,
            refresh: AddressRefresh(
              refreshInterval: refresh, retryBase: config.reconnectBaseDelay,
              retryMax: config.reconnectMaxDelay, multiplier: config.reconnectMultiplier)))
      } else {
        addMember(endpoint: endpoint, host: nil, address: nil, context: context)
      }
    }
  }

  /// The configured endpoints that become one endpoint per address: the host names, with
  /// ``AddressResolution/everyAddress(refreshInterval:)``.
  static func expandedEndpoints(of config: ConnectionConfig) -> [Endpoint] {
    guard case .everyAddress = config.addressResolution else { return [] }
    return config.endpoints.filter { SocketAddress(ipLiteral: $0.host, port: $0.port) == nil }
  }

  /// The endpoints observers see from the start: the configured ones that are not expanded,
  /// for a connection that shows its endpoints.
  static func initialEndpoints(of config: ConnectionConfig) -> [Endpoint] {
    let expanded = expandedEndpoints(of: config)
    guard config.endpoints.count > 1 || !expanded.isEmpty else { return [] }
    return config.endpoints.filter { !expanded.contains($0) }
  }

  /// The connection's state as observers see it.
  var state: ConnectivityState {
    if !isMulti { return members[0].driver.state }
    if endReason != nil, members.isEmpty { return .disconnected }
    return balancer.aggregate
  }

  /// Every endpoint's driver, in rotation order (test hook).
  var drivers: [ConnectionDriver] { members.map(\.driver) }

  func start() {
    started = true
    if !hosts.isEmpty {
      // The drivers end themselves when the loop shuts down; a name without endpoints yet
      // needs the group to.
      loop.onShutdown(of: self) { [relay] in
        relay.group?.disconnect(reason: "the event loop shut down")
      }
    }
    for member in members { member.driver.start() }
    for index in hosts.indices {
      perform(hosts[index].refresh.start(now: elapsed), host: index)
    }
    // Health decides rotation, which only a connection with several endpoints has.
    if isMulti, let healthCheck {
      healthTimer = try? loop.scheduleTimer(after: healthCheck.interval, repeating: true) {
        [relay] in relay.group?.probeConnectedEndpoints()
      }
    }
  }

  func disconnect(reason: String) {
    guard endReason == nil else { return }
    endReason = reason
    healthTimer?.cancel()
    healthTimer = nil
    for host in hosts { host.stop() }
    for member in Array(leaving.values) { member.driver.closeRetiredChannels() }
    for member in members { member.driver.disconnect(reason: reason) }
    if members.isEmpty {
      publish(StateTransition(from: balancer.aggregate, to: .disconnected, reason: reason))
    }
    endIfDone()
  }

  func useDatabase(_ name: String) {
    database = name
    for member in members { member.driver.useDatabase(name) }
  }

  // MARK: - Channels

  /// The channel of the endpoint the policy picks now, or the error a caller acts on.
  func channelNow() -> Result<(GRPCChannel, ConnectionConfig), MilvexError> {
    guard let driver = pickedDriver() else { return .failure(noEndpointError) }
    return driver.liveChannel().map { ($0, driver.currentConfig) }
  }

  /// The channel of the endpoint the policy picks now (no config: the per-call path).
  func liveChannel() -> Result<GRPCChannel, MilvexError> {
    guard let driver = pickedDriver() else { return .failure(noEndpointError) }
    return driver.liveChannel()
  }

  /// Delivers a channel once an endpoint is connected (at once when one is), or fails at
  /// `deadline`, or when every endpoint has ended.
  func waitForChannel(
    deadline: ContinuousClock.Instant,
    _ completion: @escaping (Result<GRPCChannel, MilvexError>) -> Void
  ) {
    waitForChannelAndConfig(deadline: deadline) { completion($0.map(\.0)) }
  }

  /// ``waitForChannel(deadline:_:)`` with the config of the endpoint that delivered.
  func waitForChannelAndConfig(
    deadline: ContinuousClock.Instant, _ completion: @escaping ChannelWaiter
  ) {
    if !isMulti {
      let driver = members[0].driver
      return driver.waitForChannel(deadline: deadline) {
        completion($0.map { ($0, driver.currentConfig) })
      }
    }
    if let index = balancer.pick() {
      let driver = members[index].driver
      return completion(driver.liveChannel().map { ($0, driver.currentConfig) })
    }
    if endReason != nil, members.isEmpty { return completion(.failure(noEndpointError)) }
    // No endpoint is connected: wait on all of them (and on those that appear meanwhile), the
    // first to connect wins; the call fails once every endpoint has failed it (the deadline,
    // or the end of the connection).
    let wait = SharedWait(deadline: deadline, completion: completion)
    openWaits.removeAll { $0.isFinished }
    openWaits.append(wait)
    for member in members { wait.add(member.driver) }
    if members.isEmpty {
      // No endpoint yet (a name not resolved): the wait keeps its own deadline.
      wait.armDeadline(on: loop) { [relay] in
        relay.group?.noEndpointError ?? .disconnected(reason: "disconnected")
      }
    }
  }

  /// The driver of the endpoint the policy picks; the first one when none is connected (its
  /// answer says why); nil when there is no endpoint.
  private func pickedDriver() -> ConnectionDriver? {
    if members.count == 1 { return members[0].driver }
    if members.isEmpty { return nil }
    return members[balancer.pick() ?? 0].driver
  }

  /// Why there is no endpoint to call: disconnected, or a host name that has not resolved.
  private var noEndpointError: MilvexError {
    if let endReason { return .disconnected(reason: endReason) }
    guard let config = expansion?.context.config else {
      return .disconnected(reason: "the connection has no endpoint")  // not reached
    }
    let failure = hosts.lazy.compactMap(\.lastFailure).first
    return .notConnected(
      host: config.host, port: config.port,
      lastFailure: failure ?? "resolving \(hosts.map(\.endpoint.host).joined(separator: ", "))")
  }

  // MARK: - Endpoints coming and going

  /// Adds an endpoint (started at once if the group is), in configuration order.
  private func addMember(
    endpoint: Endpoint, host: Int?, address: SocketAddress?, context: MemberContext
  ) {
    nextMemberID += 1
    let id = nextMemberID
    var shown = endpoint
    shown.address = address?.ipText
    var memberConfig = context.config.forEndpoint(endpoint, at: address)
    memberConfig.database = database
    let driver = ConnectionDriver(
      loop: loop, config: memberConfig, name: context.name, setup: setup,
      logger: context.logger, random: context.random, metrics: context.metrics,
      publish: { [relay] in relay.group?.driver(id, published: $0) },
      onTerminated: { [relay] in relay.group?.driverTerminated(id) })
    let member = Member(id: id, driver: driver, endpoint: shown, host: host)
    // After the members from the same or an earlier configured endpoint.
    let order = configuredIndex(of: member)
    let index = members.lastIndex { configuredIndex(of: $0) <= order }.map { $0 + 1 } ?? 0
    members.insert(member, at: index)
    balancer.insert(at: index)
    running += 1
    guard started else { return }
    if let address {
      var transition = StateTransition(
        from: .connecting, to: .connecting,
        reason: "\(endpoint.host) resolved to \(address.ipText): a new endpoint")
      transition.endpoint = shown
      publishEndpoint(transition, false)
    }
    driver.start()
    for wait in openWaits where !wait.isFinished { wait.add(driver) }
  }

  /// Where a member's configured endpoint is in the configuration (without host names to
  /// expand, members are made in that order: each goes last).
  private func configuredIndex(of member: Member) -> Int {
    guard let config = expansion?.context.config else { return Int.max }
    let configured = member.host.map { hosts[$0].endpoint } ?? member.endpoint
    return config.endpoints.firstIndex(of: configured) ?? config.endpoints.count
  }

  /// The endpoint of `address` left its host name: it takes no new call, finishes those it
  /// has and closes.
  private func removeMember(host: Int, address: SocketAddress) {
    let text = address.ipText
    guard let index = members.firstIndex(where: { $0.host == host && $0.endpoint.address == text })
    else { return }
    let member = members.remove(at: index)
    let before = balancer.aggregate
    let change = balancer.remove(index)
    leaving[member.id] = member
    let reason = "\(hosts[host].endpoint.host) no longer resolves to \(address.ipText)"
    expansion?.context.logger.info(
      "endpoint removed", metadata: ["endpoint": "\(member.endpoint)"])
    member.driver.retire(reason: reason)
    if let after = change {
      publish(StateTransition(from: before, to: after, reason: "\(member.endpoint): \(reason)"))
    }
  }

  // MARK: - Events from the drivers

  private func driver(_ id: Int, published transition: StateTransition) {
    if !isMulti { return publish(transition) }
    guard let index = members.firstIndex(where: { $0.id == id }) else {
      // A leaving endpoint's last word: it is gone.
      guard let member = leaving[id] else { return }
      var own = transition
      own.endpoint = member.endpoint
      return publishEndpoint(own, transition.to == .disconnected)
    }
    let member = members[index]
    var own = transition
    own.endpoint = member.endpoint
    publishEndpoint(own, false)
    if let host = member.host, transition.to == .connecting || transition.to == .reconnecting {
      perform(hosts[host].refresh.endpointFailed(now: elapsed), host: host)
    }
    // A new channel starts healthy; the next probe says otherwise if it is not.
    if transition.to == .connected, transition.from != .connected {
      balancer.endpoint(index, isHealthy: true)
    }
    let before = balancer.aggregate
    guard let after = balancer.endpoint(index, changedTo: transition.to) else { return }
    publish(
      StateTransition(from: before, to: after, reason: "\(member.endpoint): \(transition.reason)"))
  }

  private func driverTerminated(_ id: Int) {
    running -= 1
    leaving[id] = nil
    endIfDone()
  }

  /// Ends the group once every driver has ended, after a disconnect or once every endpoint
  /// ended by itself (the servers refused the connection).
  private func endIfDone() {
    guard running == 0, endReason != nil || !members.isEmpty, relay.group != nil else { return }
    healthTimer?.cancel()
    healthTimer = nil
    for host in hosts { host.stop() }
    if !hosts.isEmpty { loop.removeShutdownHandler(of: self) }
    let error = noEndpointError
    for wait in openWaits { wait.fail(error) }
    openWaits.removeAll()
    relay.group = nil
    onTerminated()
  }

  // MARK: - Host names

  /// Time since the group was made, the clock of ``AddressRefresh``.
  private var elapsed: Duration { loop.now - startedAt }

  /// Does what a host's ``AddressRefresh`` decided.
  private func perform(_ action: AddressRefresh.Action, host index: Int) {
    let host = hosts[index]
    switch action {
    case .none:
      return
    case .resolve:
      host.resolver = Resolver(
        loop: loop, host: host.endpoint.host, port: host.endpoint.port,
        nameServers: expansion?.context.config.nameServers
      ) { [relay] result in relay.group?.host(index, resolved: result) }
    case .wakeUp(let time):
      let delay = max(.zero, time - elapsed)
      if let timer = host.timer {
        timer.rearm(after: delay)
      } else {
        host.timer = try? loop.scheduleTimer(after: delay) { [relay] in
          guard let group = relay.group else { return }
          group.perform(group.hosts[index].refresh.wokeUp(now: group.elapsed), host: index)
        }
      }
    }
  }

  /// A resolution of host `index` ended: endpoints come and go.
  private func host(_ index: Int, resolved result: Result<[SocketAddress], MilvexError>) {
    guard let expansion else { return }
    let logger = expansion.context.logger
    let host = hosts[index]
    host.resolver = nil
    guard endReason == nil else { return }
    switch result {
    case .success(let addresses):
      host.lastFailure = nil
      let change = host.refresh.resolved(addresses, now: elapsed)
      if !change.added.isEmpty || !change.removed.isEmpty {
        logger.info(
          "host name resolved",
          metadata: [
            "host": "\(host.endpoint.host)", "addresses": "\(addresses.map(\.ipText))",
          ])
      }
      // Added first: a caller waiting on a leaving endpoint also waits on the new ones.
      for address in change.added {
        addMember(
          endpoint: host.endpoint, host: index, address: address, context: expansion.context)
      }
      for address in change.removed { removeMember(host: index, address: address) }
      perform(change.next, host: index)
    case .failure(let error):
      var reason = "\(error)"
      if case .connection(let text, _, _, _) = error { reason = text }
      host.lastFailure = reason
      let next = host.refresh.resolutionFailed(now: elapsed)
      logger.warning("host name did not resolve", metadata: ["reason": "\(reason)"])
      if host.refresh.addresses.isEmpty {
        // Like a failed connect attempt: no state change, but news for the observers.
        let state = self.state
        var retry = ""
        if case .wakeUp(let time) = next { retry = "; next attempt in \(time - elapsed)" }
        publish(StateTransition(from: state, to: state, reason: reason + retry))
      }
      perform(next, host: index)
    }
  }

  // MARK: - Health

  /// Probes every connected endpoint whose last probe has ended.
  private func probeConnectedEndpoints() {
    guard let healthCheck else { return }
    for index in members.indices where !members[index].probing {
      let member = members[index]
      guard case .success(let channel) = member.driver.liveChannel() else { continue }
      members[index].probing = true
      setup.probe(channel, member.driver.currentConfig, healthCheck.timeout) {
        [relay] unhealthy in relay.group?.member(member.id, probed: unhealthy)
      }
    }
  }

  /// A probe ended: a change of health moves the endpoint into or out of rotation and is
  /// published as the endpoint's transition (`connected → connected: …`).
  private func member(_ id: Int, probed unhealthy: String?) {
    guard let index = members.firstIndex(where: { $0.id == id }) else { return }
    members[index].probing = false
    let healthy = unhealthy == nil
    guard balancer.healthy[index] != healthy, balancer.states[index] == .connected else { return }
    balancer.endpoint(index, isHealthy: healthy)
    var transition = StateTransition(
      from: .connected, to: .connected,
      reason: unhealthy.map { "health check failed: \($0); out of rotation" }
        ?? "health check passed; back in rotation")
    transition.endpoint = members[index].endpoint
    publishEndpoint(transition, false)
  }
}

/// What making an endpoint takes.
private struct MemberContext {
  let config: ConnectionConfig
  let name: String?
  let logger: Logger
  let random: any BackoffRandomSource
  let metrics: any MetricsFactory
}

/// What a connection that expands host names keeps for making endpoints later.
private final class Expansion {
  let context: MemberContext
  init(context: MemberContext) { self.context = context }
}

/// One host name expanded into an endpoint per address: its schedule, and the lookup or
/// timer under way.
private final class HostWatch {
  let endpoint: Endpoint
  var refresh: AddressRefresh
  var resolver: Resolver?
  var timer: LoopTimer?
  /// Why the latest resolution failed, until one succeeds.
  var lastFailure: String?

  init(endpoint: Endpoint, refresh: AddressRefresh) {
    self.endpoint = endpoint
    self.refresh = refresh
  }

  func stop() {
    resolver?.cancel()
    resolver = nil
    timer?.cancel()
    timer = nil
  }
}

/// Lets the drivers reach their group. Strong (no weak reference, which LeakSanitizer cannot
/// follow): the cycle group → drivers → relay → group ends when the group ends.
private final class DriverRelay {
  var group: EndpointGroup?
}

/// One caller waiting on every endpoint at once: the first channel wins; the call fails with
/// the last error once every endpoint has failed it. Endpoints that appear while it waits
/// join it.
private final class SharedWait {
  private let deadline: ContinuousClock.Instant
  private var waiting = 0
  private var completion: EndpointGroup.ChannelWaiter?
  /// The wait's own deadline while no endpoint serves it.
  private var timer: LoopTimer?

  init(deadline: ContinuousClock.Instant, completion: @escaping EndpointGroup.ChannelWaiter) {
    self.deadline = deadline
    self.completion = completion
  }

  var isFinished: Bool { completion == nil }

  /// Waits on `driver` too (it brings its own deadline).
  func add(_ driver: ConnectionDriver) {
    guard completion != nil else { return }
    waiting += 1
    timer?.cancel()
    timer = nil
    driver.waitForChannel(deadline: deadline) { [self] result in
      answer(result.map { ($0, driver.currentConfig) })
    }
  }

  /// Fails the wait at its deadline with `error()` unless an endpoint joined it before.
  func armDeadline(on loop: EventLoop, error: @escaping () -> MilvexError) {
    timer = try? loop.scheduleTimer(after: max(.zero, deadline - loop.now)) { [weak self] in
      guard let self, self.waiting == 0 else { return }
      self.fail(error())
    }
  }

  func fail(_ error: MilvexError) {
    timer?.cancel()
    timer = nil
    guard let completion else { return }
    self.completion = nil
    completion(.failure(error))
  }

  private func answer(_ result: Result<(GRPCChannel, ConnectionConfig), MilvexError>) {
    guard let completion else { return }
    waiting -= 1
    if case .failure = result, waiting > 0 { return }
    self.completion = nil
    timer?.cancel()
    timer = nil
    completion(result)
  }
}
