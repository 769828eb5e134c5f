/// What a ``Connection`` does on every new channel before the channel counts as connected, and
/// the metadata every call on it carries.
///
/// A connection started without a set-up step is a reconnecting gRPC connection to any gRPC
/// server: a channel is connected once HTTP/2 is up, and calls carry no default metadata. The
/// layer above supplies its own step: the Milvus client's is Milvus's `Connect` handshake and
/// the `authorization`, `dbname` and `identifier` metadata.
///
/// The connection calls both requirements on its loop thread: on every new channel
/// ``setUp(channel:config:timeout:completion:)``, then ``defaultMetadata(config:session:)``
/// with what the set-up returned; after ``Connection/useDatabase(_:)`` only the latter.
public protocol ChannelSetup: Sendable {
  /// What the step learned on one channel that its calls' metadata depends on (for Milvus,
  /// the server's identifier).
  associatedtype Session: Sendable

  /// Runs on a channel whose HTTP/2 session is ready and calls `completion` once, on the loop
  /// thread. Until then the connection is not connected and calls wait for it.
  ///
  /// - Parameters:
  ///   - channel: the new channel; its calls carry ``defaultMetadata(config:session:)`` for a
  ///     session not yet known (`nil`).
  ///   - config: the connection's configuration, with the database calls default to now.
  ///   - timeout: how long the step may take (the connection's connect timeout).
  ///   - completion: called once, on the loop thread, with the step's ``ChannelSetupOutcome``.
  /// - Important: Called on the loop thread; `completion` must run on the loop thread.
  func setUp(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (ChannelSetupOutcome<Session>) -> Void)

  /// The metadata every call on a channel carries, for `config` (with the database calls
  /// default to now) and what ``setUp(channel:config:timeout:completion:)`` returned for that
  /// channel (`nil` before it returned).
  ///
  /// - Important: Called on the loop thread. The values may carry credentials: never log them.
  func defaultMetadata(config: ConnectionConfig, session: Session?) -> GRPCMetadata

  /// Asks the server on a connected channel whether it is healthy, every
  /// ``ConnectionConfig/healthCheckInterval`` (when set); `completion` gets nil for healthy, or
  /// why not. An endpoint that is not healthy gets no new calls while another one is ready and
  /// healthy; its channel stays open. The default answers healthy at once.
  ///
  /// - Important: Called on the loop thread; `completion` must run on the loop thread.
  func probe(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (_ unhealthy: String?) -> Void)
}

extension ChannelSetup {
  /// Healthy, at once: a step without a health check of its own.
  ///
  /// - Important: Called on the loop thread; calls `completion` before it returns.
  public func probe(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (_ unhealthy: String?) -> Void
  ) {
    completion(nil)
  }
}

/// How a ``ChannelSetup`` step ended on one channel.
public enum ChannelSetupOutcome<Session> {
  /// The channel is ready for calls; `session` goes to
  /// ``ChannelSetup/defaultMetadata(config:session:)``.
  case ready(Session)
  /// This attempt failed (it counts as a failed connect attempt, retried with backoff); the
  /// words are the attempt's failure reason.
  case failed(reason: String)
  /// The server refused the connection for good (for example wrong credentials): trying again
  /// cannot help. The connection ends; waiting and later callers get `error`.
  case refused(MilvexError, reason: String)
}

/// The step of a connection without one: ready at once, no default metadata.
struct NoChannelSetup: ChannelSetup {
  func setUp(
    channel: GRPCChannel, config: ConnectionConfig, timeout: Duration,
    completion: @escaping (ChannelSetupOutcome<Void>) -> Void
  ) {
    completion(.ready(()))
  }

  func defaultMetadata(config: ConnectionConfig, session: Void?) -> GRPCMetadata {
    GRPCMetadata()
  }
}

/// A ``ChannelSetup`` with its session type erased, as the loop-side driver keeps it: one
/// value per connection, holding the current channel's session.
struct ErasedChannelSetup {
  /// Runs the step; `completion` gets the outcome with the session already stored.
  let setUp:
    (GRPCChannel, ConnectionConfig, Duration, @escaping (ChannelSetupOutcome<Void>) -> Void) ->
      Void
  /// The default metadata for the config and the stored session.
  let defaultMetadata: (ConnectionConfig) -> GRPCMetadata
  /// Forgets the stored session (a new channel starts without one).
  let reset: () -> Void
  /// The step's health probe (``ChannelSetup/probe(channel:config:timeout:completion:)``).
  let probe: (GRPCChannel, ConnectionConfig, Duration, @escaping (String?) -> Void) -> Void

  /// Whether the step is a connection's own (a plain gRPC connection).
  let isNone: Bool
  /// The step as given, for ``Connection/setup``.
  let base: any ChannelSetup

  init<Setup: ChannelSetup>(_ setup: Setup) {
    let session = SessionBox<Setup.Session>()
    setUp = { channel, config, timeout, completion in
      setup.setUp(channel: channel, config: config, timeout: timeout) { outcome in
        switch outcome {
        case .ready(let value):
          session.value = value
          completion(.ready(()))
        case .failed(let reason):
          completion(.failed(reason: reason))
        case .refused(let error, let reason):
          completion(.refused(error, reason: reason))
        }
      }
    }
    defaultMetadata = { config in setup.defaultMetadata(config: config, session: session.value) }
    reset = { session.value = nil }
    probe = { channel, config, timeout, completion in
      setup.probe(channel: channel, config: config, timeout: timeout, completion: completion)
    }
    isNone = setup is NoChannelSetup
    base = setup
  }
}

/// The session of the current channel (loop-confined, shared by the erased closures).
private final class SessionBox<Value> {
  var value: Value?
}
