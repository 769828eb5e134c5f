/// The life of one gRPC connection as a pure value (issue 11): events in, one action out, no
/// I/O, no timer, no clock. ``GRPCConnection`` feeds it what happened and does what it says.
///
/// ```
///   connecting ──socketConnected──▶ awaitingSettings ──settings──▶ ready
///        │                               │    │                    │ │
///        │                               │    └──GOAWAY──▶ draining ◀┘ │ GOAWAY
///        │                               │                    │       │
///        │                               │    drained (no open streams left, or the
///        │                               │    session is over) │       │ session over
///        ▼                               ▼                    ▼       ▼
///   any state ──failed (refused, timeout, keepalive, EOF, protocol error, close)──▶ closed
/// ```
///
/// The first reason for the end (a GOAWAY, or the failure) is kept and reported with the
/// close; `too_many_pings` travels on both the GOAWAY's action and the close (grpc
/// `doc/keepalive.md`).
struct GRPCConnectionLifecycle: Equatable {
  enum State: Equatable, CaseIterable {
    /// Resolving and connecting TCP.
    case connecting
    /// The HTTP/2 preface is out; the server's SETTINGS have not arrived.
    case awaitingSettings
    /// Calls run.
    case ready
    /// The server sent GOAWAY: started calls may finish, no new call starts.
    case draining
    /// For good.
    case closed
  }

  enum Event: Equatable {
    /// The TCP connection is up.
    case socketConnected
    /// The server's SETTINGS arrived.
    case settingsReceived
    /// The server sent GOAWAY; `reason` says so in words.
    case goAway(reason: MilvexError, tooManyPings: Bool)
    /// The HTTP/2 session may be over: `sessionFinished` (nghttp2 wants neither to read nor to
    /// write, `sessionError` says why if it knows) or no stream left open.
    case quiet(sessionFinished: Bool, openStreams: Int, sessionError: String?)
    /// Anything that ends the connection at once: the connect attempt failed or timed out, the
    /// stream ended, keepalive declared it dead, a protocol error, or the owner closed it.
    case failed(MilvexError)
  }

  enum Action: Equatable {
    case none
    /// Wrap the socket in a stream and start the HTTP/2 session (preface and SETTINGS).
    case startSession
    /// Stop the connect timer, start keepalive, report `.ready`, start the waiting calls.
    case becomeReady
    /// Fail the calls that have not started with `UNAVAILABLE`, report `.closing`.
    case startDraining(reason: MilvexError, tooManyPings: Bool)
    /// Tear down (timers, stream, session), fail every call with `error`, report `.closed`.
    /// `wasReady` says whether calls had ever run (for the log).
    case close(error: MilvexError, tooManyPings: Bool, wasReady: Bool)
  }

  private(set) var state = State.connecting
  /// The first reason for the end: a GOAWAY's, or the failure's.
  private(set) var closeReason: MilvexError?
  private(set) var tooManyPings = false

  mutating func handle(_ event: Event) -> Action {
    switch (state, event) {
    case (.closed, _):
      return .none

    case (.connecting, .socketConnected):
      state = .awaitingSettings
      return .startSession
    case (.awaitingSettings, .socketConnected), (.ready, .socketConnected),
      (.draining, .socketConnected):
      return .none

    case (.awaitingSettings, .settingsReceived):
      state = .ready
      return .becomeReady
    case (.connecting, .settingsReceived), (.ready, .settingsReceived),
      (.draining, .settingsReceived):
      return .none  // a later SETTINGS changes nothing here; none can come before the socket

    case (.awaitingSettings, .goAway(let reason, let pings)),
      (.ready, .goAway(let reason, let pings)):
      state = .draining
      closeReason = closeReason ?? reason
      tooManyPings = tooManyPings || pings
      return .startDraining(reason: reason, tooManyPings: tooManyPings)
    case (.draining, .goAway(let reason, let pings)):
      closeReason = closeReason ?? reason
      tooManyPings = tooManyPings || pings
      return .none
    case (.connecting, .goAway):
      return .none

    case (.connecting, .quiet):
      return .none
    case (.awaitingSettings, .quiet(let finished, _, let why)),
      (.ready, .quiet(let finished, _, let why)):
      return finished ? close(closeReason ?? Self.sessionEnded(why)) : .none
    case (.draining, .quiet(let finished, let openStreams, let why)):
      return finished || openStreams == 0 ? close(closeReason ?? Self.sessionEnded(why)) : .none

    case (_, .failed(let error)):
      return close(error)
    }
  }

  /// What a new call does now.
  enum Admission: Equatable {
    /// Wait for the connection to be ready (or for a stream slot, which the owner checks).
    case wait
    /// Start it if a stream is free, else wait.
    case start
    /// Fail it: the connection is going away or closed.
    case reject(MilvexError)
  }

  var admission: Admission {
    switch state {
    case .connecting, .awaitingSettings: return .wait
    case .ready: return .start
    case .draining, .closed:
      guard let closeReason else {
        return .reject(.status(.unavailable, "no new call can start: the connection is closing"))
      }
      return .reject(
        Self.callError(closedBy: closeReason, "no new call can start on this connection"))
    }
  }

  /// How a call fails because the connection closed with `error`: disconnects and loop shutdown
  /// as they are, anything else as a retriable UNAVAILABLE that keeps a typed TLS cause, the same
  /// for calls in flight and for calls that arrive after the close.
  static func callError(closedBy error: MilvexError, _ context: String) -> MilvexError {
    switch error {
    case .disconnected, .eventLoopShutDown:
      return error
    case .tls(let failure, _, _):
      return .grpcStatus(
        GRPCStatus(code: .unavailable, message: "\(context): \(error)", cause: .tls(failure)))
    default:
      return .status(.unavailable, "\(context): \(error)")
    }
  }

  /// Where a connect timeout caught the attempt, for its message.
  var connectPhase: String {
    state == .connecting ? "connecting" : "waiting for the server's HTTP/2 SETTINGS"
  }

  /// The reason for a session that ended without a GOAWAY or failure on record (built only then).
  private static func sessionEnded(_ why: String?) -> MilvexError {
    .protocolViolation("the HTTP/2 session ended: \(why ?? "the server violated the protocol")")
  }

  private mutating func close(_ error: MilvexError) -> Action {
    let wasReady = state == .ready || state == .draining
    state = .closed
    closeReason = closeReason ?? error
    return .close(error: error, tooManyPings: tooManyPings, wasReady: wasReady)
  }
}
