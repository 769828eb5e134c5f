import Dispatch
import Logging
import Metrics
import ServiceLifecycle

/// A gRPC connection that stays alive: it keeps one gRPC channel, notices when it dies (EOF,
/// error, GOAWAY, keepalive timeout) and replaces it with exponential backoff and jitter, until
/// ``disconnect()``.
///
/// A set-up step (``ChannelSetup``) given to
/// ``start(config:on:name:setup:logger:random:metrics:onStateChange:)`` runs on every new
/// channel before it counts as connected and supplies the metadata every call carries; the
/// Milvus client's step is Milvus's `Connect` handshake. Without one, the connection serves
/// any gRPC server.
///
/// `Connection` is a `Sendable` handle; the work happens on its ``EventLoop``. See
/// `Docs/connection.md` for the states and the backoff.
///
/// ```swift
/// let loop = try EventLoop()
/// let connection = try Connection.start(config: ConnectionConfig(host: "127.0.0.1"), on: loop)
/// let (channel, config) = try await connection.waitForChannel(timeout: .seconds(5))
/// ```
///
/// Releasing the last reference to a running connection disconnects it.
public final class Connection: Sendable, Service {
  /// The event loop the connection's channels, timers and callbacks run on.
  public let loop: EventLoop
  /// The configuration the connection was started with.
  public let config: ConnectionConfig
  /// The name it is registered under, if any.
  public let name: String?
  /// The set-up step run on every new channel (nil: none, a plain gRPC connection).
  public let setup: (any ChannelSetup)?
  /// The loop-side half. Nothing the driver holds points back at this handle (no `weak self`):
  /// the driver reports to `observers`, and its last act replaces it here with `.finished`, so a
  /// disconnected handle that the application keeps holds no driver, channel or timer.
  private let phase: LoopBound<Phase>
  private let observers: LockedState<Observers>

  private enum Phase {
    /// `start` returned; the loop has not created the driver yet.
    case starting
    case running(EndpointGroup)
    /// Disconnected: the driver is released; its last answer and database are kept.
    case finished(error: MilvexError, database: String)
  }

  private struct Observers {
    var state: ConnectivityState = .connecting
    var callbacks: [@Sendable (StateTransition) -> Void] = []
    var endpointCallbacks: [@Sendable (StateTransition) -> Void] = []
    /// Each endpoint's state, for a connection with several.
    var endpointStates: [Endpoint: ConnectivityState] = [:]
    var streams: [UInt64: AsyncStream<StateTransition>.Continuation] = [:]
    var nextStreamID: UInt64 = 0
  }

  private init(
    loop: EventLoop, config: ConnectionConfig, name: String?, setup: (any ChannelSetup)?
  ) {
    self.loop = loop
    self.config = config
    self.name = name
    self.setup = setup
    self.phase = LoopBound(.starting, loop: loop)
    self.observers = LockedState(Observers())
  }

  deinit {
    // The running driver's closures hold `phase`, which holds the driver: disconnecting ends
    // that cycle. If the loop no longer accepts work, its shutdown disconnects the driver.
    let phase = self.phase
    try? loop.execute {
      if case .running(let driver) = phase.value {
        driver.disconnect(reason: "the Connection was released by its owner")
      }
    }
  }

  // MARK: - Start, look up, disconnect

  /// Starts a connection and returns at once, even when the server is down (it keeps trying).
  ///
  /// - Parameters:
  ///   - config: validated here; an invalid one is rejected at once.
  ///   - loop: the event loop the connection's channels, timers and callbacks run on (``loop``).
  ///   - name: registers the connection under this name until it is disconnected.
  ///   - setup: run on every new channel before it counts as connected, and the source of the
  ///     metadata every call carries (``ChannelSetup``); nil for none (any gRPC server).
  ///   - logger: where the connection and its channels log; label `milvex.connection` by
  ///     default.
  ///   - onStateChange: told every transition (also available as ``transitions``).
  ///   - random: the jitter's random source (tests pin it).
  ///   - metrics: where the connection's counters and timers go (`MetricsSystem.factory` if nil):
  ///     `milvex_connection_attempts_total`, `…_attempt_failures_total`, `…_connected_total`,
  ///     `…_disconnects_total` and the timer `milvex_connection_retry_delay`.
  /// - Important: Callable from any thread; `onStateChange` runs on the loop thread.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for a bad config or a name in
  ///   use; ``MilvexError/eventLoopShutDown(operation:)`` if the loop has shut down.
  public static func start(
    config: ConnectionConfig, on loop: EventLoop, name: String? = nil,
    setup: (any ChannelSetup)? = nil,
    logger: Logger = Logger(label: "milvex.connection"),
    random: any BackoffRandomSource = SystemBackoffRandomSource(),
    metrics: (any MetricsFactory)? = nil,
    onStateChange: (@Sendable (StateTransition) -> Void)? = nil
  ) throws(MilvexError) -> Connection {
    try config.validate()
    if let name, name.isEmpty {
      throw .invalidArgument(field: "name", message: "must not be empty")
    }
    let connection = Connection(loop: loop, config: config, name: name, setup: setup)
    let shown = EndpointGroup.initialEndpoints(of: config)
    if !shown.isEmpty {
      connection.observers.withLock {
        for endpoint in shown { $0.endpointStates[endpoint] = .connecting }
      }
    }
    if let onStateChange { connection.observers.withLock { $0.callbacks.append(onStateChange) } }
    if let name {
      let registered = ConnectionRegistry.shared.withLock { names -> Bool in
        guard names[name] == nil else { return false }
        names[name] = connection
        return true
      }
      guard registered else {
        throw .invalidArgument(
          field: "name", message: "a connection named '\(name)' is already running")
      }
    }
    do {
      let metrics = metrics ?? MetricsSystem.factory
      try loop.execute { connection.startOnLoop(logger: logger, random: random, metrics: metrics) }
    } catch {
      connection.unregisterName()
      throw error
    }
    return connection
  }

  private func startOnLoop(
    logger: Logger, random: any BackoffRandomSource, metrics: any MetricsFactory
  ) {
    let (phase, observers, name) = (self.phase, self.observers, self.name)
    let group = EndpointGroup(
      loop: loop, config: config, name: name,
      setup: setup.map { ErasedChannelSetup($0) } ?? ErasedChannelSetup(NoChannelSetup()),
      logger: logger, random: random, metrics: metrics,
      publish: { transition in Self.publish(transition, to: observers) },
      publishEndpoint: { transition, leaves in
        Self.publishEndpoint(transition, leaves: leaves, to: observers)
      },
      onTerminated: {
        Self.finish(phase)
        Self.unregister(name: name, observers: observers)
      })
    phase.value = .running(group)
    group.start()
  }

  /// Replaces the driver, which has just disconnected, with what it answers from now on.
  private static func finish(_ phase: LoopBound<Phase>) {
    guard case .running(let driver) = phase.value else { return }
    let error: MilvexError
    switch driver.liveChannel() {
    case .failure(let answer): error = answer
    case .success: error = .disconnected(reason: "disconnected")  // not reached: it disconnected
    }
    phase.value = .finished(error: error, database: driver.database)
  }

  /// The running driver, if any.
  ///
  /// - Important: Loop thread only.
  private var driver: EndpointGroup? {
    guard case .running(let driver) = phase.value else { return nil }
    return driver
  }

  /// Why no driver answers: not started yet, or disconnected.
  ///
  /// - Important: Loop thread only.
  private var noDriverError: MilvexError {
    guard case .finished(let error, _) = phase.value else {
      return .notConnected(host: config.host, port: config.port)
    }
    return error
  }

  /// Test hook: the running driver.
  ///
  /// - Important: Loop thread only.
  var driverOnLoop: ConnectionDriver? { driver?.drivers.first }

  /// The running connection registered under `name`, if any.
  ///
  /// - Important: Callable from any thread.
  public static func named(_ name: String) -> Connection? {
    ConnectionRegistry.shared.withLock { $0[name] }
  }

  /// Stops the connection: cancels its timers, closes the channel (in-flight and queued calls
  /// fail with the non-retriable ``MilvexError/disconnected(reason:)``), fails waiters, frees
  /// the name. Idempotent. Returns before the work is done; see ``disconnect()``.
  ///
  /// - Important: Callable from any thread.
  public func disconnect(reason: String = "disconnected by the application") {
    do {
      try loop.execute { [self] in driver?.disconnect(reason: reason) }
    } catch {
      // The loop is gone: its shutdown already disconnected us.
      unregisterName()
    }
  }

  /// Disconnects, then runs `completion` once the connection is in its terminal state (as
  /// ``disconnect(reason:)``, with a completion).
  ///
  /// - Parameters:
  ///   - reason: what calls in flight and later calls fail with, in
  ///     ``MilvexError/disconnected(reason:)``.
  ///   - completion: runs once, after the connection has disconnected and freed its name.
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread if the loop has shut down (its shutdown disconnected the connection).
  public func disconnect(
    reason: String = "disconnected by the application",
    completion: @escaping @Sendable () -> Void
  ) {
    do {
      try loop.execute { [self] in
        onLoop.disconnect(reason: reason)
        completion()
      }
    } catch {
      unregisterName()
      completion()
    }
  }

  /// `async` form of ``disconnect(reason:completion:)``: returns once the connection is in its
  /// terminal state.
  ///
  /// - Important: Callable from any task.
  public func disconnect() async {
    await withCheckedContinuation { continuation in
      disconnect { continuation.resume() }
    }
  }

  private func unregisterName() {
    Self.unregister(name: name, observers: observers)
  }

  /// Frees `name` if the connection owning `observers` holds it (`observers` identifies the
  /// connection without a reference to it).
  private static func unregister(name: String?, observers: LockedState<Observers>) {
    guard let name else { return }
    ConnectionRegistry.shared.withLock { names in
      if names[name]?.observers === observers { names[name] = nil }
    }
  }

  // MARK: - The current database

  /// Makes `database` the one later calls default to: the set-up step's metadata for it (for
  /// Milvus, `dbname`) goes with every later call. The choice outlives reconnects: every new
  /// channel carries it, and ``channel(_:)`` reports it in the config. It does not check that
  /// the database exists (the Milvus client's `useDatabase` does).
  ///
  /// - Important: Callable from any thread; takes effect on the loop thread before any call
  ///   submitted after it returns.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for an empty name;
  ///   ``MilvexError/eventLoopShutDown(operation:)`` if the loop has shut down.
  public func useDatabase(_ database: String) throws(MilvexError) {
    guard !database.isEmpty else {
      throw .invalidArgument(field: "database", message: "must not be empty")
    }
    do {
      try loop.execute { [self] in useDatabaseIfRunning(database) }
    } catch {
      throw .eventLoopShutDown(operation: "useDatabase")
    }
  }

  private func useDatabaseIfRunning(_ database: String) {
    switch phase.value {
    case .starting: break
    case .running(let driver): driver.useDatabase(database)
    case .finished(let error, _): phase.value = .finished(error: error, database: database)
    }
  }

  // MARK: - The channel

  /// The live channel and the config it was made with, or at once
  /// ``MilvexError/notConnected(host:port:lastFailure:)`` (retriable) while (re)connecting, or
  /// ``MilvexError/disconnected(reason:)`` after disconnect.
  ///
  /// - Important: Callable from any thread; `completion` runs on the loop thread (or at once on
  ///   the calling thread if the loop has shut down).
  public func channel(
    _ completion: @escaping @Sendable (Result<(GRPCChannel, ConnectionConfig), MilvexError>) -> Void
  ) {
    do {
      try loop.execute { [self] in completion(onLoop.channel()) }
    } catch {
      completion(.failure(.disconnected(reason: "the event loop has shut down")))
    }
  }

  /// `async` form of ``channel(_:)``.
  public func channel() async throws(MilvexError) -> (
    channel: GRPCChannel, config: ConnectionConfig
  ) {
    let result = await withCheckedContinuation { continuation in
      channel { continuation.resume(returning: $0) }
    }
    return try result.get()
  }

  /// Waits until connected (or `timeout` passes) and returns the channel and its config.
  /// Fails at once if the connection was disconnected; fails with a retriable
  /// ``MilvexError/notConnected(host:port:lastFailure:)`` when the timeout passes.
  ///
  /// - Important: Callable from any thread; `completion` runs on the loop thread.
  public func waitForChannel(
    timeout: Duration,
    _ completion: @escaping @Sendable (Result<(GRPCChannel, ConnectionConfig), MilvexError>) -> Void
  ) {
    let deadline = loop.now + timeout
    do {
      try loop.execute { [self] in
        guard let driver else { return completion(.failure(noDriverError)) }
        driver.waitForChannelAndConfig(deadline: deadline, completion)
      }
    } catch {
      completion(.failure(.disconnected(reason: "the event loop has shut down")))
    }
  }

  /// `async` form of ``waitForChannel(timeout:_:)``.
  public func waitForChannel(timeout: Duration) async throws(MilvexError) -> (
    channel: GRPCChannel, config: ConnectionConfig
  ) {
    let result = await withCheckedContinuation { continuation in
      waitForChannel(timeout: timeout) { continuation.resume(returning: $0) }
    }
    return try result.get()
  }

  // MARK: - On the loop thread

  /// The connection's loop-thread forms, for code that runs on its loop (callbacks, timers,
  /// layers built on the loop): no hop through the submission queue, completions need not be
  /// `Sendable`, and a connected channel is delivered before the call returns.
  ///
  /// - Important: Use it on the loop thread only (checked in debug builds).
  public var onLoop: LoopView { LoopView(connection: self) }

  /// A ``Connection`` as seen from its loop thread. Not `Sendable`: it must not leave the loop.
  public struct LoopView {
    fileprivate let connection: Connection

    /// The database calls default to now (the config's until ``Connection/useDatabase(_:)``).
    ///
    /// - Important: Loop thread only.
    public var database: String {
      connection.loop.assertInLoopThread()
      switch connection.phase.value {
      case .starting: return connection.config.database
      case .running(let driver): return driver.database
      case .finished(_, let database): return database
      }
    }

    /// The config with the database calls default to now.
    ///
    /// - Important: Loop thread only.
    public var config: ConnectionConfig {
      var config = connection.config
      config.database = database
      return config
    }

    /// Disconnects at once (see ``Connection/disconnect(reason:)``): when this returns, the
    /// connection is in its terminal state, calls in flight have failed and its name is free.
    /// Idempotent.
    ///
    /// - Parameter reason: what calls in flight and later calls fail with, in
    ///   ``MilvexError/disconnected(reason:)``.
    /// - Important: Loop thread only. Called off the loop thread (a misuse, answered rather
    ///   than trapped), it disconnects as ``Connection/disconnect(reason:)`` does: soon, on the
    ///   loop, not before it returns.
    public func disconnect(reason: String = "disconnected by the application") {
      guard connection.loop.inLoopThread else { return connection.disconnect(reason: reason) }
      connection.driver?.disconnect(reason: reason)
      connection.unregisterName()
    }

    /// ``Connection/useDatabase(_:)`` in effect before it returns.
    ///
    /// - Important: Loop thread only.
    /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for an empty name.
    public func useDatabase(_ database: String) throws(MilvexError) {
      connection.loop.assertInLoopThread()
      guard !database.isEmpty else {
        throw .invalidArgument(field: "database", message: "must not be empty")
      }
      connection.useDatabaseIfRunning(database)
    }

    /// The live channel and its config now, as ``Connection/channel(_:)`` delivers them.
    ///
    /// - Important: Loop thread only.
    public func channel() -> Result<(GRPCChannel, ConnectionConfig), MilvexError> {
      connection.loop.assertInLoopThread()
      guard let driver = connection.driver else { return .failure(connection.noDriverError) }
      return driver.channelNow()
    }

    /// Delivers the live channel once connected (at once when connected now), or fails at
    /// `deadline` with a retriable ``MilvexError/notConnected(host:port:lastFailure:)``, or at
    /// once after disconnect. ``config`` gives the config that goes with it. `deadline` is on
    /// the loop's clock: compute it from ``EventLoop/now``.
    ///
    /// - Important: Loop thread only; `completion` runs on the loop thread.
    public func waitForChannel(
      deadline: ContinuousClock.Instant,
      _ completion: @escaping (Result<GRPCChannel, MilvexError>) -> Void
    ) {
      connection.loop.assertInLoopThread()
      guard let driver = connection.driver else {
        return completion(.failure(connection.noDriverError))
      }
      driver.waitForChannel(deadline: deadline, completion)
    }
  }

  // MARK: - State

  /// Whether the connection is connected, answered by the loop thread within `timeout`.
  ///
  /// `timeout` is wall time, on a loop with virtual time too: it bounds the wait for a loop
  /// that does not answer, which no loop timer can.
  ///
  /// - Important: Callable from any task.
  /// - Throws: `DEADLINE_EXCEEDED` if the loop does not answer in time,
  ///   ``MilvexError/eventLoopShutDown(operation:)`` if it has shut down.
  public func isConnected(timeout: Duration = .seconds(5)) async throws(MilvexError) -> Bool {
    let answer = OneShot<Result<Bool, MilvexError>>()
    // The watchdog cannot be a loop timer: it is there for a loop that does not answer. So it
    // measures wall time, on a loop with virtual time too.
    let watchdog = DispatchWorkItem {
      answer.resume(
        .failure(.status(.deadlineExceeded, "the event loop did not answer within \(timeout)")))
    }
    DispatchQueue.global().asyncAfter(
      deadline: .now() + .nanoseconds(Int(max(0, timeout.saturatingNanoseconds))), execute: watchdog
    )
    do throws(MilvexError) {
      try loop.execute { [self] in answer.resume(.success(driver?.state == .connected)) }
    } catch {
      answer.resume(.failure(error))
    }
    let result = await withCheckedContinuation { answer.set($0) }
    watchdog.cancel()
    return try result.get()
  }

  /// Callback form of ``isConnected(timeout:)``: the answer comes from the loop thread.
  ///
  /// - Important: Callable from any thread; `completion` runs on the loop thread, or at once
  ///   on the calling thread with `false` if the loop has shut down.
  public func isConnected(_ completion: @escaping @Sendable (Bool) -> Void) {
    do {
      try loop.execute { [self] in completion(driver?.state == .connected) }
    } catch {
      completion(false)
    }
  }

  /// The current state, as last published by the loop thread.
  ///
  /// - Important: Callable from any thread.
  public var state: ConnectivityState { observers.withLock { $0.state } }

  /// Every transition from now on, each with its reason. The stream finishes after the
  /// transition to ``ConnectivityState/disconnected``.
  ///
  /// - Important: Callable from any thread.
  public var transitions: AsyncStream<StateTransition> {
    let (stream, continuation) = AsyncStream<StateTransition>.makeStream()
    let finishedAlready = observers.withLock { observers -> Bool in
      guard observers.state != .disconnected else { return true }
      observers.nextStreamID += 1
      let id = observers.nextStreamID
      observers.streams[id] = continuation
      // Strong: the stream is removed (and this closure released) when it terminates.
      continuation.onTermination = { [observers = self.observers] _ in
        _ = observers.withLock { $0.streams.removeValue(forKey: id) }
      }
      return false
    }
    if finishedAlready { continuation.finish() }
    return stream
  }

  /// Adds a callback told every later transition.
  ///
  /// - Important: Callable from any thread; `callback` runs on the loop thread.
  public func onStateChange(_ callback: @escaping @Sendable (StateTransition) -> Void) {
    observers.withLock { observers in
      guard observers.state != .disconnected else { return }  // nothing will follow
      observers.callbacks.append(callback)
    }
  }

  /// Each endpoint's state, for a connection with several endpoints or with host names expanded
  /// by ``AddressResolution/everyAddress(refreshInterval:)`` (one entry per address, which
  /// leaves when its address does); empty for a single endpoint, whose state is ``state``. As
  /// last published by the loop thread.
  ///
  /// - Important: Callable from any thread.
  public var endpointStates: [Endpoint: ConnectivityState] {
    observers.withLock { $0.endpointStates }
  }

  /// Adds a callback told every later transition of each endpoint of a connection with several
  /// (``StateTransition/endpoint`` names it); ``onStateChange(_:)`` tells the connection's.
  ///
  /// - Important: Callable from any thread; `callback` runs on the loop thread.
  public func onEndpointStateChange(_ callback: @escaping @Sendable (StateTransition) -> Void) {
    observers.withLock { observers in
      guard observers.state != .disconnected else { return }
      observers.endpointCallbacks.append(callback)
    }
  }

  /// Tells the endpoint observers; an endpoint that `leaves` the connection (its address no
  /// longer resolves) is dropped from ``endpointStates``.
  private static func publishEndpoint(
    _ transition: StateTransition, leaves: Bool, to observers: LockedState<Observers>
  ) {
    let callbacks = observers.withLock { observers in
      if let endpoint = transition.endpoint {
        observers.endpointStates[endpoint] = leaves ? nil : transition.to
      }
      return observers.endpointCallbacks
    }
    for callback in callbacks { callback(transition) }
  }

  /// Tells every observer; after the terminal transition they are released.
  private static func publish(_ transition: StateTransition, to observers: LockedState<Observers>) {
    let (callbacks, streams) = observers.withLock { observers in
      observers.state = transition.to
      let told = (observers.callbacks, Array(observers.streams.values))
      if transition.to == .disconnected {
        observers.callbacks = []
        observers.endpointCallbacks = []
        observers.streams = [:]
      }
      return told
    }
    for callback in callbacks { callback(transition) }
    for stream in streams {
      stream.yield(transition)
      if transition.to == .disconnected { stream.finish() }
    }
  }

  // MARK: - Service

  /// Runs the connection inside a `ServiceGroup`: returns after graceful shutdown (or task
  /// cancellation), having disconnected.
  ///
  /// - Important: Called by swift-service-lifecycle's `ServiceGroup`.
  public func run() async {
    try? await gracefulShutdown()
    await disconnect()
  }
}

/// The names of running connections. Named connections are owned here until disconnected.
enum ConnectionRegistry {
  static let shared = LockedState<[String: Connection]>([:])
}

/// A value delivered once, by whichever of several racers comes first, to a continuation that
/// may be set before or after the value arrives.
final class OneShot<Value: Sendable>: Sendable {
  private struct State {
    var continuation: CheckedContinuation<Value, Never>?
    var value: Value?
    var delivered = false
  }

  private let state = LockedState(State())

  func set(_ continuation: CheckedContinuation<Value, Never>) {
    let ready = state.withLock { state -> Value? in
      if let value = state.value {
        state.value = nil
        return value
      }
      state.continuation = continuation
      return nil
    }
    if let ready { continuation.resume(returning: ready) }
  }

  func resume(_ value: Value) {
    let continuation = state.withLock { state -> CheckedContinuation<Value, Never>? in
      guard !state.delivered else { return nil }
      state.delivered = true
      guard let continuation = state.continuation else {
        state.value = value
        return nil
      }
      state.continuation = nil
      return continuation
    }
    continuation?.resume(returning: value)
  }
}

@available(*, unavailable, message: "a loop view must stay on its loop thread")
extension Connection.LoopView: Sendable {}
