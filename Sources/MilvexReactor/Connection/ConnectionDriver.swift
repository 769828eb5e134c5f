import Logging
import Metrics

/// The loop-side owner of one connection: it runs ``ConnectionStateMachine`` and executes its
/// actions — opening channels, arming the retry timer, resuming waiters, publishing
/// transitions. All decisions are the machine's; this class only does the I/O.
///
/// - Important: Loop-confined. Every callback it invokes runs on the loop thread.
final class ConnectionDriver {
  typealias ChannelWaiter = (Result<GRPCChannel, MilvexError>) -> Void

  let loop: EventLoop
  let config: ConnectionConfig
  let name: String?
  private var machine: ConnectionStateMachine
  private var channelConfiguration: GRPCChannelConfiguration
  private let logger: Logger
  private let publish: (StateTransition) -> Void
  private let onTerminated: () -> Void

  /// The channel of the current attempt or connection, with its generation.
  private var current: (generation: UInt64, channel: GRPCChannel)?
  /// Channels that received GOAWAY: kept until they close so their calls can finish.
  private var draining: [UInt64: GRPCChannel] = [:]
  private var retryTimer: LoopTimer?
  private var waiterTimer: LoopTimer?
  /// The deadline the waiter timer is armed for.
  private var waiterTimerDeadline: ContinuousClock.Instant?
  private var waiters: [ConnectionStateMachine.WaiterID: ChannelWaiter] = [:]
  private var nextWaiterID: UInt64 = 0
  private var attemptStartedAt: ContinuousClock.Instant?
  /// The channel whose too_many_pings last doubled the keepalive time.
  private var keepaliveSlowedDownFor: UInt64?
  /// The database calls default to (`dbname`); starts as the config's, changed by
  /// ``useDatabase(_:)`` and kept across reconnects.
  private(set) var database: String
  /// The per-channel set-up step and the default metadata (``ChannelSetup``).
  private let setup: ErasedChannelSetup
  /// The channel being opened to replace the connected one (channel recycling).
  private var replacement: (generation: UInt64, channel: GRPCChannel)?
  /// Fires when the connected channel reaches its maximum age.
  private var ageTimer: LoopTimer?
  /// The jitter source of the channel age.
  private var ageRandom: any BackoffRandomSource

  private let connects: Counter
  private let attempts: Counter
  private let failures: Counter
  private let reconnectDelays: Metrics.Timer
  private let disconnects: Counter

  init(
    loop: EventLoop, config: ConnectionConfig, name: String?, setup: ErasedChannelSetup,
    logger: Logger, random: any BackoffRandomSource, metrics: any MetricsFactory,
    publish: @escaping (StateTransition) -> Void,
    onTerminated: @escaping () -> Void
  ) {
    self.loop = loop
    self.config = config
    self.name = name
    self.setup = setup
    self.ageRandom = random
    self.machine = ConnectionStateMachine(config: config, random: random)
    self.channelConfiguration = Self.channelConfiguration(for: config, logger: logger)
    self.database = config.database
    var logger = logger
    logger[metadataKey: "server"] = "\(config.host):\(config.port)"
    if let address = config.connectAddress { logger[metadataKey: "address"] = "\(address)" }
    if let name { logger[metadataKey: "connection"] = "\(name)" }
    self.logger = logger
    self.publish = publish
    self.onTerminated = onTerminated
    let dimensions =
      [("host", config.host), ("port", "\(config.port)")]
      + (config.connectAddress.map { [("address", $0)] } ?? [])
    connects = Counter(
      label: "milvex_connection_connected_total", dimensions: dimensions, factory: metrics)
    attempts = Counter(
      label: "milvex_connection_attempts_total", dimensions: dimensions, factory: metrics)
    failures = Counter(
      label: "milvex_connection_attempt_failures_total", dimensions: dimensions, factory: metrics)
    reconnectDelays = Metrics.Timer(
      label: "milvex_connection_retry_delay", dimensions: dimensions, factory: metrics)
    disconnects = Counter(
      label: "milvex_connection_disconnects_total", dimensions: dimensions, factory: metrics)
  }

  var state: ConnectivityState { machine.connectivityState }

  /// The configuration of the channels a connection with `config` opens.
  static func channelConfiguration(
    for config: ConnectionConfig, logger: Logger
  ) -> GRPCChannelConfiguration {
    var channelConfiguration = GRPCChannelConfiguration(host: config.host, port: config.port)
    channelConfiguration.tls = config.ssl ? config.tls : nil
    channelConfiguration.connectTimeout = config.connectTimeout
    channelConfiguration.keepaliveTime = config.keepaliveTime
    channelConfiguration.keepaliveTimeout = config.keepaliveTimeout
    channelConfiguration.allowTestingTimings = config.allowTestingTimings
    // A connection's job is to notice a dead channel even while idle (servers such as Milvus
    // permit PINGs without streams); one that objects sends too_many_pings and the interval
    // doubles.
    channelConfiguration.keepaliveWithoutCalls = true
    channelConfiguration.logger = logger
    channelConfiguration.connectAddress = config.connectAddress
    channelConfiguration.nameServers = config.nameServers
    return channelConfiguration
  }

  // MARK: - Events in

  func start() {
    loop.onShutdown(of: self) { [weak self] in
      self?.disconnect(reason: "the event loop shut down")
    }
    switch machine.start() {
    case .none: break
    case .startAttempt(let generation, let attempt):
      startAttempt(generation: generation, attempt: attempt)
    }
  }

  func disconnect(reason: String) {
    guard case .shutDown(let shutDown) = machine.disconnect(reason: reason) else { return }
    shut(shutDown, reason: reason)
  }

  /// Ends the connection gently (its address left the endpoints): it stops reconnecting, the
  /// connected channel takes no new call and closes once its calls have finished, and
  /// `onTerminated` runs once every channel it still had has closed.
  func retire(reason: String) {
    guard case .shutDown(let shutDown) = machine.disconnect(reason: reason) else { return }
    shut(shutDown, reason: reason, retiring: true)
  }

  /// Closes the channels still finishing their calls after ``retire(reason:)``: their calls
  /// fail with `disconnected`, and `onTerminated` runs.
  func closeRetiredChannels() {
    for channel in draining.values { channel.onLoop.close() }
    draining.removeAll()
    terminateWhenDrained()
  }

  /// Whether ``retire(reason:)`` waits for channels to close before `onTerminated`.
  private var retiredWithChannels = false

  private func terminateWhenDrained() {
    guard retiredWithChannels, draining.isEmpty else { return }
    retiredWithChannels = false
    onTerminated()
  }

  /// Ends the connection as the machine decided (a disconnect or a refusal); `retiring` lets
  /// the channels finish their calls first.
  private func shut(
    _ shutDown: ConnectionStateMachine.ShutDown, reason: String, retiring: Bool = false
  ) {
    loop.removeShutdownHandler(of: self)
    if shutDown.cancelRetryTimer { retryTimer?.cancel() }
    retryTimer = nil
    waiterTimer?.cancel()
    waiterTimer = nil
    ageTimer?.cancel()
    ageTimer = nil
    replacement?.channel.onLoop.close()
    replacement = nil
    if shutDown.closeChannel != nil, let (generation, channel) = current {
      // Only a connected channel has calls to finish; an attempt under way just stops.
      if retiring, shutDown.transition.from == .connected {
        draining[generation] = channel
        channel.onLoop.retire()
      } else {
        channel.onLoop.close()  // every call on it fails with `disconnected`
      }
    }
    current = nil
    if !retiring {
      for channel in draining.values { channel.onLoop.close() }
      draining.removeAll()
    }
    disconnects.increment()
    logger.info("disconnected", metadata: ["reason": "\(reason)"])
    // Published before the waiters hear: a caller that failed sees the state already ended.
    publish(shutDown.transition)
    for id in shutDown.failWaiters { waiters.removeValue(forKey: id)?(.failure(shutDown.error)) }
    // Waiters the machine no longer tracked (none expected) must not be left hanging.
    let rest = waiters
    waiters.removeAll()
    for waiter in rest.values { waiter(.failure(shutDown.error)) }
    if retiring, !draining.isEmpty {
      retiredWithChannels = true
    } else {
      onTerminated()
    }
  }

  /// The live channel and config, or the error a caller acts on.
  func channelNow() -> Result<(GRPCChannel, ConnectionConfig), MilvexError> {
    liveChannel().map { ($0, currentConfig) }
  }

  /// The live channel, or the error a caller acts on (no config copy: the per-call path).
  func liveChannel() -> Result<GRPCChannel, MilvexError> {
    switch machine.channel {
    case .connected(let generation):
      guard let current, current.generation == generation else {
        return .failure(
          .notConnected(
            host: config.host, port: config.port, lastFailure: machine.lastFailureReason))
      }
      return .success(current.channel)
    case .notConnected(let error):
      return .failure(error)
    }
  }

  /// The config with the current database.
  var currentConfig: ConnectionConfig {
    var config = self.config
    config.database = database
    return config
  }

  /// Delivers the channel once connected, or fails at `deadline` / on disconnect.
  func waitForChannel(deadline: ContinuousClock.Instant, _ waiter: @escaping ChannelWaiter) {
    nextWaiterID += 1
    let id = ConnectionStateMachine.WaiterID(nextWaiterID)
    switch machine.waitForReady(id: id, deadline: deadline, now: loop.now) {
    case .resume:
      waiter(liveChannel())
    case .fail(let error):
      waiter(.failure(error))
    case .wait:
      waiters[id] = waiter
      armWaiterTimer()
    }
  }

  // MARK: - Actions out

  private func startAttempt(generation: UInt64, attempt: Int) {
    attempts.increment()
    attemptStartedAt = loop.now
    logger.info(
      "connecting",
      metadata: [
        "host": "\(config.host)", "port": "\(config.port)", "attempt": "\(attempt)",
      ])
    setup.reset()
    channelConfiguration.defaultMetadata = setup.defaultMetadata(currentConfig)
    do {
      let channel = try GRPCChannel.connectOnLoop(configuration: channelConfiguration, loop: loop) {
        [weak self] event in
        self?.channelEvent(generation: generation, event)
      }
      current = (generation, channel)
    } catch {
      attemptFailed(generation: generation, reason: "\(error)")
    }
  }

  private func channelEvent(generation: UInt64, _ event: ChannelEvent) {
    switch event {
    case .ready:
      setUp(generation: generation)
    case .closing(let error, let tooManyPings):
      // Before `lost`: the replacement channel starts right there and must ping less already.
      if tooManyPings { slowDownKeepalive(askedBy: generation) }
      lost(generation: generation, reason: Self.reason(error), keepDraining: true)
    case .closed(let error, let tooManyPings):
      if tooManyPings { slowDownKeepalive(askedBy: generation) }
      draining[generation] = nil
      lost(generation: generation, reason: Self.reason(error), keepDraining: false)
      terminateWhenDrained()
    }
  }

  /// Doubles the keepalive time for every later channel (grpc `doc/keepalive.md`), once per
  /// channel that asked: its GOAWAY (`closing`) and its close (`closed`) both say so.
  private func slowDownKeepalive(askedBy generation: UInt64) {
    guard keepaliveSlowedDownFor != generation else { return }
    keepaliveSlowedDownFor = generation
    channelConfiguration = channelConfiguration.afterTooManyPings()
    logger.warning(
      "server asked for fewer keepalive pings",
      metadata: ["keepalive_time": "\(channelConfiguration.keepaliveTime)"]
    )
  }

  /// Makes `name` the database later calls default to, on the live channel now and on every
  /// channel a reconnect makes.
  func useDatabase(_ name: String) {
    database = name
    channelConfiguration.defaultMetadata = setup.defaultMetadata(currentConfig)
    current?.channel.onLoop.setDefaultMetadata(channelConfiguration.defaultMetadata)
  }

  /// The channel is ready: run the set-up step (if any) before the attempt counts as a success.
  private func setUp(generation: UInt64) {
    guard let current, current.generation == generation else { return }
    if setup.isNone { return attemptReady(generation: generation) }
    let channel = current.channel
    setup.setUp(channel, currentConfig, config.connectTimeout) { [weak self] outcome in
      guard let self, let current = self.current, current.generation == generation else { return }
      switch outcome {
      case .ready:
        channel.onLoop.setDefaultMetadata(self.setup.defaultMetadata(self.currentConfig))
        self.attemptReady(generation: generation)
      case .failed(let reason):
        // Fail first, so that the close below is not reported as the reason.
        self.attemptFailed(generation: generation, reason: reason)
        channel.onLoop.close()
      case .refused(let error, let reason):
        guard
          case .shutDown(let shutDown) = self.machine.attemptRefused(
            generation: generation, error: error, reason: reason)
        else { return }
        self.logger.error("the server refused the connection", metadata: ["reason": "\(reason)"])
        self.shut(shutDown, reason: reason)
      }
    }
  }

  /// Transport, HTTP/2 and the set-up step all succeeded.
  private func attemptReady(generation: UInt64) {
    switch machine.attemptSucceeded(generation: generation) {
    case .none:
      // A late success from an abandoned attempt: not ours any more.
      if let current, current.generation == generation { current.channel.onLoop.close() }
    case .connected(_, let transition, let resumeWaiters):
      connects.increment()
      let elapsed = attemptStartedAt.map { loop.now - $0 } ?? .zero
      logger.info(
        "connected",
        metadata: ["host": "\(config.host)", "port": "\(config.port)", "after": "\(elapsed)"])
      publish(transition)
      let answer = liveChannel()
      for id in resumeWaiters { waiters.removeValue(forKey: id)?(answer) }
      armWaiterTimer()
      armAgeTimer()
    }
  }

  /// A channel went away (before or after it was ready).
  private func lost(generation: UInt64, reason: String, keepDraining: Bool) {
    guard let current, current.generation == generation else { return }
    if machine.isConnected {
      switch machine.channelClosed(generation: generation, reason: reason) {
      case .none:
        return
      case .reconnect(let closing, let next, let transition):
        failures.increment()
        logger.warning("connection lost, reconnecting", metadata: ["reason": "\(reason)"])
        if keepDraining { draining[closing] = current.channel }
        ageTimer?.stop()
        // The machine forgot a replacement under way; the reconnect opens its own channel.
        replacement?.channel.onLoop.close()
        replacement = nil
        self.current = nil
        publish(transition)
        startAttempt(generation: next, attempt: 1)
      }
    } else {
      if keepDraining { current.channel.onLoop.close() }
      attemptFailed(generation: generation, reason: reason)
    }
  }

  private func attemptFailed(generation: UInt64, reason: String) {
    switch machine.attemptFailed(generation: generation, reason: reason) {
    case .none:
      return
    case .scheduleRetry(let delay, let attempt):
      failures.increment()
      current = nil
      // A failed attempt changes no state but is news: observers see every one, with why.
      let state = machine.connectivityState
      publish(
        StateTransition(
          from: state, to: state,
          reason: "attempt \(attempt - 1) failed: \(reason); next attempt in \(delay)"))
      reconnectDelays.recordNanoseconds(delay.saturatingNanoseconds)
      logger.warning(
        "connect attempt failed",
        metadata: [
          "reason": "\(reason)", "next_attempt": "\(attempt)", "retry_in": "\(delay)",
        ])
      scheduleRetry(after: delay)
    }
  }

  private func scheduleRetry(after delay: Duration) {
    if let retryTimer {
      retryTimer.rearm(after: delay)
      return
    }
    retryTimer = try? loop.scheduleTimer(after: delay) { [weak self] in
      guard let self else { return }
      switch self.machine.backoffElapsed() {
      case .none: break
      case .startAttempt(let generation, let attempt):
        self.startAttempt(generation: generation, attempt: attempt)
      }
    }
  }

  // MARK: - Channel recycling

  /// Test hook: channels that still finish their calls (retired or after a GOAWAY).
  var drainingChannelCount: Int { draining.count }

  /// Arms the age timer of the connected channel (``ConnectionConfig/maxChannelAge`` ±10 %),
  /// or for `delay` (a retry after a failed replacement).
  private func armAgeTimer(after delay: Duration? = nil) {
    guard let maxAge = config.maxChannelAge else { return }
    let draw = ageRandom.nextUnitValue()
    let unit = draw.isNaN ? 0.5 : min(max(draw, 0), 1)
    let due = delay ?? maxAge * (0.9 + 0.2 * unit)
    if let ageTimer {
      ageTimer.rearm(after: due)
    } else {
      ageTimer = try? loop.scheduleTimer(after: due) { [weak self] in self?.recycle() }
    }
  }

  /// The connected channel reached its age: open its replacement; the old one keeps serving.
  private func recycle() {
    guard let generation = machine.recycleStarted() else { return }
    logger.debug("recycling the channel", metadata: ["max_age": "\(config.maxChannelAge ?? .zero)"])
    do {
      let channel = try GRPCChannel.connectOnLoop(configuration: channelConfiguration, loop: loop) {
        [weak self] event in
        self?.replacementEvent(generation: generation, event)
      }
      replacement = (generation, channel)
    } catch {
      replacementFailed(generation: generation, reason: "\(error)")
    }
  }

  /// An event of a channel opened as a replacement: while it is the replacement under way it
  /// decides the recycling; once it is the connected channel (or retired), it is any channel's.
  private func replacementEvent(generation: UInt64, _ event: ChannelEvent) {
    guard let replacement, replacement.generation == generation else {
      return channelEvent(generation: generation, event)
    }
    switch event {
    case .ready:
      if setup.isNone { return replacementReady(generation: generation) }
      let channel = replacement.channel
      setup.setUp(channel, currentConfig, config.connectTimeout) { [weak self] outcome in
        guard let self, self.replacement?.generation == generation else { return }
        switch outcome {
        case .ready:
          channel.onLoop.setDefaultMetadata(self.setup.defaultMetadata(self.currentConfig))
          self.replacementReady(generation: generation)
        case .failed(let reason), .refused(_, let reason):
          self.replacementFailed(generation: generation, reason: reason)
        }
      }
    case .closing(let error, _), .closed(let error, _):
      replacementFailed(generation: generation, reason: Self.reason(error))
    }
  }

  /// The replacement is ready: new calls go to it, the old channel finishes its calls and
  /// closes by itself.
  private func replacementReady(generation: UInt64) {
    guard let replacement, let current, machine.recycleSucceeded(generation: generation) != nil
    else { return }
    self.current = replacement
    self.replacement = nil
    draining[current.generation] = current.channel
    current.channel.onLoop.retire()
    logger.info("channel recycled")
    publish(
      StateTransition(
        from: .connected, to: .connected,
        reason: "channel recycled: a new channel took over, the old one closes once idle"))
    armAgeTimer()
  }

  /// The replacement failed before it was ready: the connected channel stays; try again after
  /// the base reconnect delay.
  private func replacementFailed(generation: UInt64, reason: String) {
    guard machine.recycleFailed(generation: generation), let replacement else { return }
    self.replacement = nil
    replacement.channel.onLoop.close()
    logger.warning(
      "channel recycling failed; the current channel stays", metadata: ["reason": "\(reason)"])
    armAgeTimer(after: config.reconnectBaseDelay)
  }

  /// Keeps the one waiter timer due at the earliest waiter deadline (a due one fires in the
  /// next loop iteration: ``LoopTimer/rearm(after:)`` with zero).
  private func armWaiterTimer() {
    guard let deadline = machine.nextWaiterDeadline else {
      waiterTimer?.stop()
      waiterTimerDeadline = nil
      return
    }
    if deadline == waiterTimerDeadline, waiterTimer?.isScheduled == true { return }
    waiterTimerDeadline = deadline
    let delay = max(.zero, deadline - loop.now)
    if let waiterTimer {
      waiterTimer.rearm(after: delay)
    } else {
      waiterTimer = try? loop.scheduleTimer(after: delay) { [weak self] in
        guard let self else { return }
        if case .fail(let ids, let error) = self.machine.waiterDeadlinesPassed(now: self.loop.now) {
          for id in ids { self.waiters.removeValue(forKey: id)?(.failure(error)) }
        }
        self.armWaiterTimer()
      }
    }
  }

  /// The words a transition carries for a channel error.
  private static func reason(_ error: MilvexError) -> String {
    switch error {
    case .connection(let reason, _, _, _): return reason
    case .tls(let failure, _, _): return "TLS: \(failure)"
    case .grpcStatus(let status): return status.message
    case .protocolViolation(let message): return "protocol error: \(message)"
    default: return "\(error)"
    }
  }
}
