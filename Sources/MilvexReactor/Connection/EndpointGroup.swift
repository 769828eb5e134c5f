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
  }

  func disconnect(reason: String) {
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
    let before = balancer.aggregate
    guard let after = balancer.endpoint(index, changedTo: transition.to) else { return }
    publish(
      StateTransition(from: before, to: after, reason: "\(endpoint): \(transition.reason)"))
  }

  private func driverTerminated() {
    running -= 1
    guard running == 0 else { return }
    relay.group = nil
    onTerminated()
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
