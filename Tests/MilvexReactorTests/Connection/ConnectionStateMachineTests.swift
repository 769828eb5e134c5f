import XCTest

@testable import MilvexReactor

private typealias Machine = ConnectionStateMachine
private typealias WaiterID = ConnectionStateMachine.WaiterID

/// Host and port of every machine here, as they appear in `notConnected` errors.
private let host = "db.example"
private let port = 19530
private let notConnected = MilvexError.notConnected(host: host, port: port)

/// Base 100 ms, max 1 s, multiplier 2, no jitter: delays 100, 200, 400, 800, 1000, 1000 ms.
private func makeMachine(
  jitter: Double = 0, random: any BackoffRandomSource = PinnedRandomSource([0.5]),
  baseDelay: Duration = .milliseconds(100), maxDelay: Duration = .seconds(1)
) -> Machine {
  let config = try! ConnectionConfig(
    host: host, port: port, reconnectBaseDelay: baseDelay, reconnectMaxDelay: maxDelay,
    reconnectMultiplier: 2, reconnectJitter: jitter)
  return Machine(config: config, random: random)
}

private func transition(
  _ from: ConnectivityState, _ to: ConnectivityState, _ reason: String
) -> StateTransition {
  StateTransition(from: from, to: to, reason: reason)
}

/// The states a connection can be in, each reached by real events from a new machine.
private enum Situation: String, CaseIterable {
  case idle, connectingInFlight, connectingWaiting, connected, reconnectingInFlight
  case reconnectingWaiting, disconnected

  /// The machine, and the generation its events are about (the one the next attempt gets
  /// while idle).
  func make() -> (Machine, current: UInt64) {
    var machine = makeMachine()
    switch self {
    case .idle:
      return (machine, 1)
    case .connectingInFlight:
      _ = machine.start()
    case .connectingWaiting:
      _ = machine.start()
      _ = machine.attemptFailed(generation: 1, reason: "connection refused")
    case .connected:
      _ = machine.start()
      _ = machine.attemptSucceeded(generation: 1)
    case .reconnectingInFlight, .reconnectingWaiting:
      _ = machine.start()
      _ = machine.attemptSucceeded(generation: 1)
      _ = machine.channelClosed(generation: 1, reason: "GOAWAY")
      if self == .reconnectingWaiting {
        _ = machine.attemptFailed(generation: 2, reason: "connection refused")
      }
      return (machine, 2)
    case .disconnected:
      _ = machine.start()
      _ = machine.disconnect(reason: "bye")
    }
    return (machine, 1)
  }
}

/// Every event the machine takes that changes its lifecycle.
private enum Event: String, CaseIterable {
  case start, succeeded, succeededStale, failed, failedStale, backoffElapsed, channelClosed
  case channelClosedStale, disconnect
}

/// The result of any event, so that one table can hold them all.
private enum Outcome: Equatable {
  case start(Machine.OnStart)
  case succeeded(Machine.OnAttemptSucceeded)
  case failed(Machine.OnAttemptFailed)
  case backoffElapsed(Machine.OnBackoffElapsed)
  case channelClosed(Machine.OnChannelClosed)
  case disconnect(Machine.OnDisconnect)
  /// Shorthand for "ignored", whatever the event.
  case none
}

private func apply(_ event: Event, to machine: inout Machine, current: UInt64) -> Outcome {
  // Never issued by the machine: what an attempt or channel it abandoned would carry.
  let stale = current + 1000
  let outcome: Outcome
  switch event {
  case .start: outcome = .start(machine.start())
  case .succeeded: outcome = .succeeded(machine.attemptSucceeded(generation: current))
  case .succeededStale: outcome = .succeeded(machine.attemptSucceeded(generation: stale))
  case .failed: outcome = .failed(machine.attemptFailed(generation: current, reason: "refused"))
  case .failedStale: outcome = .failed(machine.attemptFailed(generation: stale, reason: "x"))
  case .backoffElapsed: outcome = .backoffElapsed(machine.backoffElapsed())
  case .channelClosed:
    outcome = .channelClosed(
      machine.channelClosed(generation: current, reason: "keepalive timeout"))
  case .channelClosedStale:
    outcome = .channelClosed(machine.channelClosed(generation: stale, reason: "EOF"))
  case .disconnect: outcome = .disconnect(machine.disconnect(reason: "app stop"))
  }
  switch outcome {
  case .start(.none), .succeeded(.none), .failed(.none), .backoffElapsed(.none),
    .channelClosed(.none), .disconnect(.none):
    return .none
  default:
    return outcome
  }
}

private func shutDown(
  from: ConnectivityState, cancelRetryTimer: Bool = false, closeChannel: UInt64? = nil
) -> Outcome {
  .disconnect(
    .shutDown(
      Machine.ShutDown(
        transition: transition(from, .disconnected, "app stop"),
        cancelRetryTimer: cancelRetryTimer, closeChannel: closeChannel, failWaiters: [],
        error: .disconnected(reason: "app stop"))))
}

final class ConnectionStateMachineTests: XCTestCase {
  // MARK: - Every (state, event) pair

  func testEveryStateEventPair() {
    let idle = Machine.Snapshot.idle
    let connectingInFlight = Machine.Snapshot.connecting(
      generation: 1, attempt: 1, waitingToRetry: false)
    let connectingWaiting = Machine.Snapshot.connecting(
      generation: 1, attempt: 1, waitingToRetry: true)
    let connected = Machine.Snapshot.connected(generation: 1)
    let reconnectingInFlight = Machine.Snapshot.reconnecting(
      generation: 2, attempt: 1, waitingToRetry: false)
    let reconnectingWaiting = Machine.Snapshot.reconnecting(
      generation: 2, attempt: 1, waitingToRetry: true)
    let disconnected = Machine.Snapshot.disconnected(reason: "bye")
    let gone = Machine.Snapshot.disconnected(reason: "app stop")

    let table: [Situation: [Event: (Machine.Snapshot, Outcome)]] = [
      .idle: [
        .start: (connectingInFlight, .start(.startAttempt(generation: 1, attempt: 1))),
        .succeeded: (idle, .none),
        .succeededStale: (idle, .none),
        .failed: (idle, .none),
        .failedStale: (idle, .none),
        .backoffElapsed: (idle, .none),
        .channelClosed: (idle, .none),
        .channelClosedStale: (idle, .none),
        .disconnect: (gone, shutDown(from: .connecting)),
      ],
      .connectingInFlight: [
        .start: (connectingInFlight, .none),
        .succeeded: (
          connected,
          .succeeded(
            .connected(
              generation: 1,
              transition: transition(.connecting, .connected, "attempt 1 succeeded"),
              resumeWaiters: []))
        ),
        .succeededStale: (connectingInFlight, .none),
        .failed: (
          connectingWaiting, .failed(.scheduleRetry(after: .milliseconds(100), attempt: 2))
        ),
        .failedStale: (connectingInFlight, .none),
        .backoffElapsed: (connectingInFlight, .none),
        // A channel that closes before it is ready is reported as a failed attempt.
        .channelClosed: (connectingInFlight, .none),
        .channelClosedStale: (connectingInFlight, .none),
        .disconnect: (gone, shutDown(from: .connecting, closeChannel: 1)),
      ],
      .connectingWaiting: [
        .start: (connectingWaiting, .none),
        .succeeded: (connectingWaiting, .none),
        .succeededStale: (connectingWaiting, .none),
        .failed: (connectingWaiting, .none),
        .failedStale: (connectingWaiting, .none),
        .backoffElapsed: (
          .connecting(generation: 2, attempt: 2, waitingToRetry: false),
          .backoffElapsed(.startAttempt(generation: 2, attempt: 2))
        ),
        .channelClosed: (connectingWaiting, .none),
        .channelClosedStale: (connectingWaiting, .none),
        .disconnect: (gone, shutDown(from: .connecting, cancelRetryTimer: true)),
      ],
      .connected: [
        .start: (connected, .none),
        .succeeded: (connected, .none),
        .succeededStale: (connected, .none),
        .failed: (connected, .none),
        .failedStale: (connected, .none),
        .backoffElapsed: (connected, .none),
        .channelClosed: (
          .reconnecting(generation: 2, attempt: 1, waitingToRetry: false),
          .channelClosed(
            .reconnect(
              closing: 1, generation: 2,
              transition: transition(.connected, .reconnecting, "keepalive timeout")))
        ),
        .channelClosedStale: (connected, .none),
        .disconnect: (gone, shutDown(from: .connected, closeChannel: 1)),
      ],
      .reconnectingInFlight: [
        .start: (reconnectingInFlight, .none),
        .succeeded: (
          .connected(generation: 2),
          .succeeded(
            .connected(
              generation: 2,
              transition: transition(.reconnecting, .connected, "attempt 1 succeeded"),
              resumeWaiters: []))
        ),
        .succeededStale: (reconnectingInFlight, .none),
        // The backoff was reset when connected: the first retry waits the base delay again.
        .failed: (
          reconnectingWaiting, .failed(.scheduleRetry(after: .milliseconds(100), attempt: 2))
        ),
        .failedStale: (reconnectingInFlight, .none),
        .backoffElapsed: (reconnectingInFlight, .none),
        .channelClosed: (reconnectingInFlight, .none),
        .channelClosedStale: (reconnectingInFlight, .none),
        .disconnect: (gone, shutDown(from: .reconnecting, closeChannel: 2)),
      ],
      .reconnectingWaiting: [
        .start: (reconnectingWaiting, .none),
        .succeeded: (reconnectingWaiting, .none),
        .succeededStale: (reconnectingWaiting, .none),
        .failed: (reconnectingWaiting, .none),
        .failedStale: (reconnectingWaiting, .none),
        .backoffElapsed: (
          .reconnecting(generation: 3, attempt: 2, waitingToRetry: false),
          .backoffElapsed(.startAttempt(generation: 3, attempt: 2))
        ),
        .channelClosed: (reconnectingWaiting, .none),
        .channelClosedStale: (reconnectingWaiting, .none),
        .disconnect: (gone, shutDown(from: .reconnecting, cancelRetryTimer: true)),
      ],
      .disconnected: Dictionary(
        uniqueKeysWithValues: Event.allCases.map { ($0, (disconnected, Outcome.none)) }),
    ]

    var checked = 0
    for situation in Situation.allCases {
      for event in Event.allCases {
        guard let (expectedState, expectedOutcome) = table[situation]?[event] else {
          XCTFail("the table has no row for (\(situation), \(event))")
          continue
        }
        var (machine, current) = situation.make()
        let outcome = apply(event, to: &machine, current: current)
        XCTAssertEqual(outcome, expectedOutcome, "(\(situation), \(event))")
        XCTAssertEqual(machine.snapshot, expectedState, "(\(situation), \(event))")
        checked += 1
      }
    }
    XCTAssertEqual(checked, Situation.allCases.count * Event.allCases.count)
  }

  // MARK: - Queries

  func testGetChannelAndStateAnswerInEveryState() {
    let expected: [Situation: (ConnectivityState, Machine.ChannelAnswer)] = [
      .idle: (.connecting, .notConnected(notConnected)),
      .connectingInFlight: (.connecting, .notConnected(notConnected)),
      // Once something failed, callers learn what: the attempt's reason, or the channel's loss.
      .connectingWaiting: (
        .connecting,
        .notConnected(.notConnected(host: host, port: port, lastFailure: "connection refused"))
      ),
      .connected: (.connected, .connected(generation: 1)),
      .reconnectingInFlight: (
        .reconnecting, .notConnected(.notConnected(host: host, port: port, lastFailure: "GOAWAY"))
      ),
      .reconnectingWaiting: (
        .reconnecting,
        .notConnected(.notConnected(host: host, port: port, lastFailure: "connection refused"))
      ),
      .disconnected: (.disconnected, .notConnected(.disconnected(reason: "bye"))),
    ]
    for situation in Situation.allCases {
      let (machine, _) = situation.make()
      guard let (state, answer) = expected[situation] else {
        XCTFail("no expectation for \(situation)")
        continue
      }
      XCTAssertEqual(machine.connectivityState, state, "\(situation)")
      XCTAssertEqual(machine.channel, answer, "\(situation)")
      XCTAssertEqual(machine.isConnected, situation == .connected, "\(situation)")
    }
    // What callers see: retriable while it keeps trying, final after disconnect.
    XCTAssertTrue(notConnected.isRetriable)
    XCTAssertFalse(MilvexError.disconnected(reason: "bye").isRetriable)
  }

  func testLastFailureReasonIsKeptWhileRetrying() {
    var machine = makeMachine()
    _ = machine.start()
    XCTAssertNil(machine.lastFailureReason)
    _ = machine.attemptFailed(generation: 1, reason: "connection refused")
    XCTAssertEqual(machine.lastFailureReason, "connection refused")
    _ = machine.backoffElapsed()
    _ = machine.attemptSucceeded(generation: 2)
    XCTAssertNil(machine.lastFailureReason)
  }

  // MARK: - Disconnect

  func testDisconnectInEveryStateIsTerminalAndIdempotent() {
    for situation in Situation.allCases {
      var (machine, current) = situation.make()
      let first = machine.disconnect(reason: "shutting down")
      if situation == .disconnected {
        XCTAssertEqual(first, .none, "\(situation)")
      } else {
        guard case .shutDown(let shutDown) = first else {
          XCTFail("\(situation): disconnect returned \(first)")
          continue
        }
        XCTAssertEqual(shutDown.transition.to, .disconnected)
        XCTAssertEqual(shutDown.error, .disconnected(reason: "shutting down"))
      }
      XCTAssertEqual(machine.disconnect(reason: "again"), .none, "\(situation)")
      XCTAssertEqual(machine.connectivityState, .disconnected, "\(situation)")
      // Nothing brings it back.
      for event in Event.allCases {
        XCTAssertEqual(
          apply(event, to: &machine, current: current), .none, "\(situation), \(event)")
      }
      XCTAssertEqual(machine.connectivityState, .disconnected, "\(situation)")
      let clock = ManualClock()
      let wait = machine.waitForReady(
        id: WaiterID(1), deadline: clock.now + .seconds(1), now: clock.now)
      guard case .fail(.disconnected) = wait else {
        XCTFail("\(situation): waitForReady after disconnect returned \(wait)")
        continue
      }
    }
  }

  // MARK: - Refusal

  /// A refused attempt ends the connection like a disconnect, but callers get the refusal.
  func testARefusedAttemptIsTerminalWithTheRefusalForEveryCaller() {
    let clock = ManualClock()
    let refusal = MilvexError.status(.unauthenticated, "refused the credentials")
    var machine = ConnectionStateMachine(config: try! ConnectionConfig())
    guard case .startAttempt(let generation, _) = machine.start() else { return XCTFail() }
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(1), deadline: clock.now + .seconds(5), now: clock.now),
      .wait(deadline: clock.now + .seconds(5)))
    XCTAssertEqual(
      machine.attemptRefused(generation: generation + 1, error: refusal, reason: "no"), .none,
      "another generation's answer")
    guard
      case .shutDown(let shutDown) = machine.attemptRefused(
        generation: generation, error: refusal, reason: "refused")
    else { return XCTFail() }
    XCTAssertEqual(shutDown.transition.from, .connecting)
    XCTAssertEqual(shutDown.transition.to, .disconnected)
    XCTAssertEqual(shutDown.closeChannel, generation)
    XCTAssertEqual(shutDown.failWaiters, [WaiterID(1)])
    XCTAssertEqual(shutDown.error, refusal)
    XCTAssertEqual(machine.connectivityState, .disconnected)
    XCTAssertEqual(machine.channel, .notConnected(refusal))
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(2), deadline: clock.now + .seconds(5), now: clock.now),
      .fail(refusal))
    XCTAssertEqual(
      machine.attemptRefused(generation: generation, error: refusal, reason: "x"), .none)
    XCTAssertEqual(machine.disconnect(reason: "later"), .none, "already terminal")
  }
}
