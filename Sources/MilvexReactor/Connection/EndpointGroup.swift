import Logging
import Metrics

/// The loop-side owner of a connection's endpoints: one ``ConnectionDriver`` (a reconnecting
/// channel with its own backoff) per endpoint, and the pure ``EndpointBalancer`` that decides
/// the connection's state and which endpoint each call goes to. This class only routes: the
/// drivers do the I/O, the balancer decides.
///
/// With one endpoint it is transparent: the driver's transitions are the connection's.
///
/// - Important: Loop-confined. Every callback it invokes runs on the loop thread.
final class EndpointGroup {
  typealias ChannelWaiter = (Result<(GRPCChannel, ConnectionConfig), MilvexError>) -> Void

  let loop: EventLoop
  /// One driver per endpoint, in configuration order.
  let drivers: [ConnectionDriver]
  private var balancer: EndpointBalancer
  private let publish: (StateTransition) -> Void
  private let publishEndpoint: (StateTransition) -> Void
  private let onTerminated: () -> Void
  /// Drivers that have not ended yet.
  private var running: Int
  /// The set-up step, for its health probe.
  private let setup: ErasedChannelSetup
  /// How often connected endpoints are probed (nil: never), and how long a probe may take.
  private let healthCheck: (interval: Duration, timeout: Duration)?
  private var healthTimer: LoopTimer?
  /// Whether a probe of each endpoint is running (a slow one is not started again).
  private var probing: [Bool]
  private let relay: DriverRelay

  init(
    loop: EventLoop, config: ConnectionConfig, name: String?, setup: ErasedChannelSetup,
    logger: Logger, random: any BackoffRandomSource, metrics: any MetricsFactory,
    publish: @escaping (StateTransition) -> Void,
    publishEndpoint: @escaping (StateTransition) -> Void,
    onTerminated: @escaping () -> Void
  ) {
    let endpoints = config.endpoints
    self.loop = loop
    self.balancer = EndpointBalancer(endpoints: endpoints.count, policy: config.loadBalancing)
    self.publish = publish
    self.publishEndpoint = publishEndpoint
    self.onTerminated = onTerminated
    self.running = endpoints.count
    self.setup = setup
    self.healthCheck = config.healthCheckInterval.map { ($0, min($0, config.timeout)) }
    self.probing = Array(repeating: false, count: endpoints.count)
    // The drivers report through `relay`, which is set right below: they need the group,
    // and the group needs them.
    let relay = DriverRelay()
    self.relay = relay
    drivers = endpoints.enumerated().map { index, endpoint in
      ConnectionDriver(
        loop: loop, config: config.forEndpoint(endpoint), name: name, setup: setup,
        logger: logger, random: random, metrics: metrics,
        publish: { [relay] in relay.group?.driver(index, published: $0) },
        onTerminated: { [relay] in relay.group?.driverTerminated() })
    }
    relay.group = self
  }

  /// The connection's state as observers see it.
  var state: ConnectivityState {
    drivers.count == 1 ? drivers[0].state : balancer.aggregate
  }

  /// The database calls default to (the same on every endpoint).
  var database: String { drivers[0].database }

  func start() {
    for driver in drivers { driver.start() }
    // Health decides rotation, which only a connection with several endpoints has.
    if drivers.count > 1, let healthCheck {
      healthTimer = try? loop.scheduleTimer(after: healthCheck.interval, repeating: true) {
        [relay] in relay.group?.probeConnectedEndpoints()
      }
    }
  }

  func disconnect(reason: String) {
    healthTimer?.cancel()
    healthTimer = nil
    for driver in drivers { driver.disconnect(reason: reason) }
  }

  func useDatabase(_ name: String) {
    for driver in drivers { driver.useDatabase(name) }
  }

  // MARK: - Channels

  /// The channel of the endpoint the policy picks now, or the error a caller acts on.
  func channelNow() -> Result<(GRPCChannel, ConnectionConfig), MilvexError> {
    let driver = pickedDriver()
    return driver.liveChannel().map { ($0, driver.currentConfig) }
  }

  /// The channel of the endpoint the policy picks now (no config: the per-call path).
  func liveChannel() -> Result<GRPCChannel, MilvexError> {
    pickedDriver().liveChannel()
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
    if drivers.count == 1 {
      let driver = drivers[0]
      return driver.waitForChannel(deadline: deadline) {
        completion($0.map { ($0, driver.currentConfig) })
      }
    }
    if let index = balancer.pick() {
      let driver = drivers[index]
      return completion(driver.liveChannel().map { ($0, driver.currentConfig) })
    }
    // No endpoint is connected: wait on all of them, the first to connect wins; the call
    // fails once every endpoint has failed it (the deadline, or the end of the connection).
    let wait = SharedWait(waiting: drivers.count, completion: completion)
    for driver in drivers {
      driver.waitForChannel(deadline: deadline) { result in
        wait.answer(result.map { ($0, driver.currentConfig) })
      }
    }
  }

  /// The driver of the endpoint the policy picks; the first one when none is connected (its
  /// answer says why).
  private func pickedDriver() -> ConnectionDriver {
    drivers.count == 1 ? drivers[0] : drivers[balancer.pick() ?? 0]
  }

  // MARK: - Events from the drivers

  private func driver(_ index: Int, published transition: StateTransition) {
    if drivers.count == 1 { return publish(transition) }
    let endpoint = drivers[index].config.endpoints[0]
    var own = transition
    own.endpoint = endpoint
    publishEndpoint(own)
    // A new channel starts healthy; the next probe says otherwise if it is not.
    if transition.to == .connected, transition.from != .connected {
      balancer.endpoint(index, isHealthy: true)
    }
    let before = balancer.aggregate
    guard let after = balancer.endpoint(index, changedTo: transition.to) else { return }
    publish(
      StateTransition(from: before, to: after, reason: "\(endpoint): \(transition.reason)"))
  }

  private func driverTerminated() {
    running -= 1
    guard running == 0 else { return }
    healthTimer?.cancel()
    healthTimer = nil
    relay.group = nil
    onTerminated()
  }

  // MARK: - Health

  /// Probes every connected endpoint whose last probe has ended.
  private func probeConnectedEndpoints() {
    guard let healthCheck else { return }
    for (index, driver) in drivers.enumerated() where !probing[index] {
      guard case .success(let channel) = driver.liveChannel() else { continue }
      probing[index] = true
      setup.probe(channel, driver.currentConfig, healthCheck.timeout) { [relay] unhealthy in
        relay.group?.endpoint(index, probed: unhealthy)
      }
    }
  }

  /// A probe ended: a change of health moves the endpoint into or out of rotation and is
  /// published as the endpoint's transition (`connected → connected: …`).
  private func endpoint(_ index: Int, probed unhealthy: String?) {
    probing[index] = false
    let healthy = unhealthy == nil
    guard balancer.healthy[index] != healthy, balancer.states[index] == .connected else { return }
    balancer.endpoint(index, isHealthy: healthy)
    var transition = StateTransition(
      from: .connected, to: .connected,
      reason: unhealthy.map { "health check failed: \($0); out of rotation" }
        ?? "health check passed; back in rotation")
    transition.endpoint = drivers[index].config.endpoints[0]
    publishEndpoint(transition)
  }
}

/// Lets the drivers reach their group. Strong (no weak reference, which LeakSanitizer cannot
/// follow): the cycle group → drivers → relay → group ends when the last driver ends.
private final class DriverRelay {
  var group: EndpointGroup?
}

/// One caller waiting on every endpoint at once: the first channel wins; the call fails with
/// the last error once every endpoint has failed it.
private final class SharedWait {
  private var waiting: Int
  private var completion: EndpointGroup.ChannelWaiter?

  init(waiting: Int, completion: @escaping EndpointGroup.ChannelWaiter) {
    self.waiting = waiting
    self.completion = completion
  }

  func answer(_ result: Result<(GRPCChannel, ConnectionConfig), MilvexError>) {
    guard let completion else { return }
    waiting -= 1
    if case .failure = result, waiting > 0 { return }
    self.completion = nil
    completion(result)
  }
}
