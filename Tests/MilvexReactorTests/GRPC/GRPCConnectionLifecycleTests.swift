import XCTest

@testable import MilvexReactor

/// The gRPC connection's life as a pure value: a table over every state × event.
final class GRPCConnectionLifecycleTests: XCTestCase {
  typealias Machine = GRPCConnectionLifecycle
  private static let goAway = MilvexError.connection(
    reason: "GOAWAY", host: "h", port: 1, retriable: true)
  private static let failure = MilvexError.connection(
    reason: "EOF", host: "h", port: 1, retriable: true)

  private enum Event: CaseIterable {
    case socket, settings, goAway, goAwayCalm, quietFinished, quietNoStreams, quietStreamsOpen,
      failed

    var value: Machine.Event {
      switch self {
      case .socket: return .socketConnected
      case .settings: return .settingsReceived
      case .goAway: return .goAway(reason: GRPCConnectionLifecycleTests.goAway, tooManyPings: false)
      case .goAwayCalm:
        return .goAway(reason: GRPCConnectionLifecycleTests.goAway, tooManyPings: true)
      case .quietFinished:
        return .quiet(sessionFinished: true, openStreams: 0, sessionError: "bad frame")
      case .quietNoStreams: return .quiet(sessionFinished: false, openStreams: 0, sessionError: nil)
      case .quietStreamsOpen:
        return .quiet(sessionFinished: false, openStreams: 2, sessionError: nil)
      case .failed: return .failed(GRPCConnectionLifecycleTests.failure)
      }
    }
  }

  /// A machine in `state`, reached through real events.
  private func machine(in state: Machine.State) -> Machine {
    var machine = Machine()
    let path: [Machine.Event]
    switch state {
    case .connecting: path = []
    case .awaitingSettings: path = [.socketConnected]
    case .ready: path = [.socketConnected, .settingsReceived]
    case .draining: path = [.socketConnected, .settingsReceived, Event.goAway.value]
    case .closed: path = [.failed(Self.failure)]
    }
    for event in path { _ = machine.handle(event) }
    XCTAssertEqual(machine.state, state)
    return machine
  }

  func testEveryStateAndEvent() {
    let sessionEnded = MilvexError.protocolViolation("the HTTP/2 session ended: bad frame")
    func close(_ error: MilvexError, calm: Bool = false, wasReady: Bool) -> Machine.Action {
      .close(error: error, tooManyPings: calm, wasReady: wasReady)
    }
    let table: [Machine.State: [Event: (Machine.State, Machine.Action)]] = [
      .connecting: [
        .socket: (.awaitingSettings, .startSession), .settings: (.connecting, .none),
        .goAway: (.connecting, .none), .goAwayCalm: (.connecting, .none),
        .quietFinished: (.connecting, .none), .quietNoStreams: (.connecting, .none),
        .quietStreamsOpen: (.connecting, .none),
        .failed: (.closed, close(Self.failure, wasReady: false)),
      ],
      .awaitingSettings: [
        .socket: (.awaitingSettings, .none), .settings: (.ready, .becomeReady),
        .goAway: (.draining, .startDraining(reason: Self.goAway, tooManyPings: false)),
        .goAwayCalm: (.draining, .startDraining(reason: Self.goAway, tooManyPings: true)),
        .quietFinished: (.closed, close(sessionEnded, wasReady: false)),
        .quietNoStreams: (.awaitingSettings, .none), .quietStreamsOpen: (.awaitingSettings, .none),
        .failed: (.closed, close(Self.failure, wasReady: false)),
      ],
      .ready: [
        .socket: (.ready, .none), .settings: (.ready, .none),
        .goAway: (.draining, .startDraining(reason: Self.goAway, tooManyPings: false)),
        .goAwayCalm: (.draining, .startDraining(reason: Self.goAway, tooManyPings: true)),
        .quietFinished: (.closed, close(sessionEnded, wasReady: true)),
        .quietNoStreams: (.ready, .none), .quietStreamsOpen: (.ready, .none),
        .failed: (.closed, close(Self.failure, wasReady: true)),
      ],
      .draining: [
        .socket: (.draining, .none), .settings: (.draining, .none),
        .goAway: (.draining, .none), .goAwayCalm: (.draining, .none),
        // The GOAWAY is the reason on record, whatever ends the session.
        .quietFinished: (.closed, close(Self.goAway, wasReady: true)),
        .quietNoStreams: (.closed, close(Self.goAway, wasReady: true)),
        .quietStreamsOpen: (.draining, .none),
        .failed: (.closed, close(Self.failure, wasReady: true)),
      ],
      .closed: Dictionary(uniqueKeysWithValues: Event.allCases.map { ($0, (.closed, .none)) }),
    ]
    var checked = 0
    for state in Machine.State.allCases {
      for event in Event.allCases {
        guard let (expectedState, expectedAction) = table[state]?[event] else {
          XCTFail("no row for (\(state), \(event))")
          continue
        }
        var machine = machine(in: state)
        XCTAssertEqual(machine.handle(event.value), expectedAction, "(\(state), \(event))")
        XCTAssertEqual(machine.state, expectedState, "(\(state), \(event))")
        checked += 1
      }
    }
    XCTAssertEqual(checked, Machine.State.allCases.count * Event.allCases.count)
  }

  /// too_many_pings and the first reason survive to the close.
  func testTooManyPingsAndTheFirstReasonReachTheClose() {
    var machine = machine(in: .ready)
    XCTAssertEqual(
      machine.handle(Event.goAwayCalm.value),
      .startDraining(reason: Self.goAway, tooManyPings: true))
    XCTAssertEqual(
      machine.handle(.failed(Self.failure)),
      .close(error: Self.failure, tooManyPings: true, wasReady: true))
    XCTAssertEqual(machine.closeReason, Self.goAway, "the GOAWAY came first")
  }

  func testAdmissionInEveryState() {
    XCTAssertEqual(machine(in: .connecting).admission, .wait)
    XCTAssertEqual(machine(in: .awaitingSettings).admission, .wait)
    XCTAssertEqual(machine(in: .ready).admission, .start)
    guard case .reject(.grpcStatus(let status)) = machine(in: .draining).admission else {
      return XCTFail()
    }
    XCTAssertEqual(status.code, .unavailable)
    XCTAssertTrue(status.message.contains("GOAWAY"), status.message)
    var closedByOwner = Machine()
    _ = closedByOwner.handle(.failed(.disconnected(reason: "bye")))
    XCTAssertEqual(
      closedByOwner.admission, .reject(.disconnected(reason: "bye")), "final, not retriable")
    // A call that arrives after a TLS failure closed the connection fails like the calls that
    // were waiting: retriable UNAVAILABLE with the typed TLS cause (found by CI under TSan, where
    // a bad CA path could close the connection before the first call reached it).
    var closedByTLS = Machine()
    let badCA = TLSFailure.configuration("could not read /nonexistent/ca.pem")
    _ = closedByTLS.handle(.failed(.tls(badCA, host: "h", port: 1)))
    guard case .reject(.grpcStatus(let late)) = closedByTLS.admission else { return XCTFail() }
    XCTAssertEqual(late.code, .unavailable)
    XCTAssertEqual(late.cause, .tls(badCA))
    XCTAssertEqual(
      Machine.callError(closedBy: .tls(badCA, host: "h", port: 1), "the connection closed"),
      .grpcStatus(
        GRPCStatus(
          code: .unavailable,
          message: "the connection closed: \(MilvexError.tls(badCA, host: "h", port: 1))",
          cause: .tls(badCA))))
    XCTAssertEqual(machine(in: .connecting).connectPhase, "connecting")
    XCTAssertEqual(
      machine(in: .awaitingSettings).connectPhase, "waiting for the server's HTTP/2 SETTINGS")
  }
}
