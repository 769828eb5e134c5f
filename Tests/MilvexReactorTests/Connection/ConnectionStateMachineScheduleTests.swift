import XCTest

@testable import MilvexReactor

private typealias Machine = ConnectionStateMachine
private typealias WaiterID = ConnectionStateMachine.WaiterID

private let notConnected = MilvexError.notConnected(host: "db.example", port: 19530)

/// Plays the owner that the Connection will be: executes the machine's actions against a
/// manual clock and a scripted server, and records what a user would see.
private struct SimulatedOwner {
  var machine: Machine
  var clock = ManualClock()
  private var retryTimerDeadline: ContinuousClock.Instant?
  private var attemptInFlight: UInt64?
  private(set) var connectedChannel: UInt64?
  /// When each attempt started (time since the clock's origin), with its generation and
  /// number.
  private(set) var attemptStarts: [(generation: UInt64, attempt: Int, at: Duration)] = []
  private(set) var retryDelays: [Duration] = []
  private(set) var transitions: [StateTransition] = []
  private(set) var closedChannels: [UInt64] = []

  init(base: Duration, max: Duration, jitter: Double, random: [Double]) {
    let config = try! ConnectionConfig(
      host: "db.example", reconnectBaseDelay: base, reconnectMaxDelay: max,
      reconnectMultiplier: 2, reconnectJitter: jitter)
    machine = Machine(config: config, random: PinnedRandomSource(random))
  }

  mutating func start() {
    guard case .startAttempt(let generation, let attempt) = machine.start() else {
      return XCTFail("start did not start an attempt")
    }
    began(generation, attempt)
  }

  private mutating func began(_ generation: UInt64, _ attempt: Int) {
    XCTAssertNil(attemptInFlight, "two attempts in flight")
    attemptInFlight = generation
    attemptStarts.append((generation, attempt, clock.elapsed))
  }

  /// The server refuses `refusals` attempts and accepts the next one; returns when connected.
  mutating func runUntilConnected(refusing refusals: Int) {
    var refusals = refusals
    for _ in 0..<10_000 {
      if let generation = attemptInFlight {
        attemptInFlight = nil
        if refusals > 0 {
          refusals -= 1
          let action = machine.attemptFailed(generation: generation, reason: "connection refused")
          guard case .scheduleRetry(let delay, let attempt) = action else {
            return XCTFail("attempt \(generation) failed, action \(action)")
          }
          XCTAssertEqual(attempt, attemptStarts.last!.attempt + 1)
          retryDelays.append(delay)
          retryTimerDeadline = clock.now + delay
        } else {
          let action = machine.attemptSucceeded(generation: generation)
          guard case .connected(let channel, let transition, _) = action else {
            return XCTFail("attempt \(generation) succeeded, action \(action)")
          }
          connectedChannel = channel
          transitions.append(transition)
          return
        }
      } else if let deadline = retryTimerDeadline {
        clock.advance(by: deadline - clock.now)
        retryTimerDeadline = nil
        guard case .startAttempt(let generation, let attempt) = machine.backoffElapsed() else {
          return XCTFail("the retry timer fired but no attempt started")
        }
        began(generation, attempt)
      } else {
        return XCTFail("nothing in flight and no timer: the connection is stuck")
      }
    }
    XCTFail("no connection after 10,000 steps")
  }

  mutating func serverCloses(after delay: Duration, reason: String) {
    clock.advance(by: delay)
    guard let channel = connectedChannel else { return XCTFail("not connected") }
    let action = machine.channelClosed(generation: channel, reason: reason)
    guard case .reconnect(let closing, let generation, let transition) = action else {
      return XCTFail("channel closed, action \(action)")
    }
    connectedChannel = nil
    closedChannels.append(closing)
    transitions.append(transition)
    began(generation, 1)
  }
}

final class ConnectionStateMachineScheduleTests: XCTestCase {
  func testBackoffScheduleWithJitterThroughRepeatedFailuresAndAReconnect() {
    // The first delay of a run of failures has the factor 2u (u = 0.45: 0.9); the later ones
    // 1 - 0.1 + 0.2u, for u = 0.5, 0.75, 0.25, 0.45: 1.0, 1.05, 0.95, 0.99 (the values cycle).
    var owner = SimulatedOwner(
      base: .seconds(1), max: .seconds(60), jitter: 0.1, random: [0.45, 0.5, 0.75, 0.25])
    owner.start()
    owner.runUntilConnected(refusing: 8)

    // Nominal 1, 2, 4, 8, 16, 32, 60, 60 s, jittered; 63 s is clamped to the 60 s maximum.
    let delays: [Duration] = [900, 2000, 4200, 7600, 15840, 32000, 60000, 57000].map {
      .milliseconds($0)
    }
    XCTAssertEqual(owner.retryDelays, delays)
    XCTAssertEqual(owner.attemptStarts.map(\.generation), Array(1...9))
    XCTAssertEqual(owner.attemptStarts.map(\.attempt), Array(1...9))
    // The first attempt is immediate; each later one starts exactly its delay later.
    let starts: [Duration] = [0, 900, 2900, 7100, 14700, 30540, 62540, 122_540, 179_540].map {
      .milliseconds($0)
    }
    XCTAssertEqual(owner.attemptStarts.map(\.at), starts)
    XCTAssertEqual(owner.machine.channel, .connected(generation: 9))

    // Lost 5 s later: a new attempt at once, then the schedule starts over from the base.
    owner.serverCloses(after: .seconds(5), reason: "server closed the connection")
    XCTAssertEqual(owner.machine.connectivityState, .reconnecting)
    XCTAssertEqual(owner.attemptStarts.last?.at, .milliseconds(184_540))
    owner.runUntilConnected(refusing: 2)
    XCTAssertEqual(owner.retryDelays.suffix(2), [.milliseconds(900), .milliseconds(2000)])
    XCTAssertEqual(
      owner.attemptStarts.suffix(3).map(\.at),
      [.milliseconds(184_540), .milliseconds(185_440), .milliseconds(187_440)])
    XCTAssertEqual(owner.attemptStarts.suffix(3).map(\.attempt), [1, 2, 3])
    XCTAssertEqual(owner.closedChannels, [9])
    XCTAssertEqual(owner.machine.channel, .connected(generation: 12))
    XCTAssertEqual(
      owner.transitions,
      [
        StateTransition(from: .connecting, to: .connected, reason: "attempt 9 succeeded"),
        StateTransition(
          from: .connected, to: .reconnecting, reason: "server closed the connection"),
        StateTransition(from: .reconnecting, to: .connected, reason: "attempt 3 succeeded"),
      ])
  }

  func testScheduleWithoutJitterIsTheNominalDoubling() {
    var owner = SimulatedOwner(base: .milliseconds(100), max: .seconds(1), jitter: 0, random: [0])
    owner.start()
    owner.runUntilConnected(refusing: 6)
    XCTAssertEqual(
      owner.retryDelays, [100, 200, 400, 800, 1000, 1000].map { Duration.milliseconds($0) })
    XCTAssertEqual(owner.clock.elapsed, .milliseconds(3500))
  }

  // MARK: - Generations

  func testEventsFromOldAttemptsAndChannelsAreIgnored() {
    var owner = SimulatedOwner(base: .milliseconds(100), max: .seconds(1), jitter: 0, random: [0])
    var machine = owner.machine
    _ = machine.start()
    _ = machine.attemptFailed(generation: 1, reason: "timed out")
    XCTAssertEqual(machine.backoffElapsed(), .startAttempt(generation: 2, attempt: 2))
    // Attempt 1's channel reports late: it must not become the connection's channel.
    XCTAssertEqual(machine.attemptSucceeded(generation: 1), .none)
    XCTAssertEqual(machine.attemptFailed(generation: 1, reason: "late"), .none)
    XCTAssertEqual(machine.snapshot, .connecting(generation: 2, attempt: 2, waitingToRetry: false))
    guard case .connected(2, _, _) = machine.attemptSucceeded(generation: 2) else {
      return XCTFail("attempt 2 did not connect")
    }
    XCTAssertEqual(machine.channelClosed(generation: 1, reason: "EOF"), .none)
    XCTAssertEqual(machine.channel, .connected(generation: 2))
    guard
      case .reconnect(closing: 2, generation: 3, _) = machine.channelClosed(
        generation: 2, reason: "GOAWAY")
    else { return XCTFail("channel 2 closing did not reconnect") }
    // The replaced channel's last words change nothing.
    XCTAssertEqual(machine.attemptSucceeded(generation: 2), .none)
    XCTAssertEqual(machine.channelClosed(generation: 2, reason: "EOF"), .none)
    XCTAssertEqual(machine.attemptFailed(generation: 2, reason: "reset"), .none)
    XCTAssertEqual(
      machine.snapshot, .reconnecting(generation: 3, attempt: 1, waitingToRetry: false))
    guard case .connected(3, _, _) = machine.attemptSucceeded(generation: 3) else {
      return XCTFail("attempt 3 did not connect")
    }
    owner.machine = machine
    XCTAssertEqual(owner.machine.channel, .connected(generation: 3))
  }

  func testGenerationsNeverRepeat() {
    var machine = SimulatedOwner(
      base: .milliseconds(100), max: .seconds(1), jitter: 0, random: [0]
    ).machine
    var generations: [UInt64] = []
    if case .startAttempt(let generation, _) = machine.start() { generations.append(generation) }
    for round in 0..<50 {
      let current = generations.last!
      if round % 3 == 0 {
        _ = machine.attemptFailed(generation: current, reason: "refused")
        if case .startAttempt(let next, _) = machine.backoffElapsed() { generations.append(next) }
      } else {
        _ = machine.attemptSucceeded(generation: current)
        if case .reconnect(_, let next, _) = machine.channelClosed(generation: current, reason: "x")
        {
          generations.append(next)
        }
      }
    }
    XCTAssertEqual(generations.count, 51)
    XCTAssertEqual(generations, Array(1...51))
  }

  // MARK: - Wait for ready

  private func makeMachine() -> Machine {
    SimulatedOwner(base: .milliseconds(100), max: .seconds(1), jitter: 0, random: [0]).machine
  }

  func testWaitersAreResumedWhenConnectedInRegistrationOrder() {
    var machine = makeMachine()
    let clock = ManualClock()
    // A waiter registered before start is carried into connecting.
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(7), deadline: clock.now + .seconds(5), now: clock.now),
      .wait(deadline: clock.now + .seconds(5)))
    _ = machine.start()
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(3), deadline: clock.now + .seconds(9), now: clock.now),
      .wait(deadline: clock.now + .seconds(9)))
    _ = machine.attemptFailed(generation: 1, reason: "refused")
    _ = machine.backoffElapsed()
    guard case .connected(2, _, let resumed) = machine.attemptSucceeded(generation: 2) else {
      return XCTFail("attempt 2 did not connect")
    }
    XCTAssertEqual(resumed, [WaiterID(7), WaiterID(3)])
    // Resumed once only: their deadlines passing later fails nobody.
    XCTAssertEqual(machine.waiterDeadlinesPassed(now: clock.now + .seconds(60)), .none)
    XCTAssertNil(machine.nextWaiterDeadline)
    // Connected: a new waiter gets the channel at once.
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(8), deadline: clock.now + .seconds(1), now: clock.now),
      .resume(generation: 2))
  }

  func testAWaiterFailsWithNotConnectedAtItsDeadline() {
    var machine = makeMachine()
    var clock = ManualClock()
    _ = machine.start()
    let early = clock.now + .seconds(1)
    let late = clock.now + .seconds(3)
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(1), deadline: late, now: clock.now), .wait(deadline: late))
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(2), deadline: early, now: clock.now), .wait(deadline: early)
    )
    XCTAssertEqual(machine.nextWaiterDeadline, early)
    clock.advance(by: .milliseconds(999))
    XCTAssertEqual(machine.waiterDeadlinesPassed(now: clock.now), .none)
    clock.advance(by: .milliseconds(1))
    XCTAssertEqual(
      machine.waiterDeadlinesPassed(now: clock.now), .fail([WaiterID(2)], notConnected))
    XCTAssertEqual(machine.waiterDeadlinesPassed(now: clock.now), .none)
    XCTAssertEqual(machine.nextWaiterDeadline, late)
    clock.advance(by: .seconds(5))
    XCTAssertEqual(
      machine.waiterDeadlinesPassed(now: clock.now), .fail([WaiterID(1)], notConnected))
    guard case .connected(1, _, let resumed) = machine.attemptSucceeded(generation: 1) else {
      return XCTFail("attempt 1 did not connect")
    }
    XCTAssertEqual(resumed, [], "a timed-out waiter must not be resumed too")
  }

  func testAWaiterWhoseDeadlineHasPassedFailsAtOnce() {
    var machine = makeMachine()
    let clock = ManualClock()
    _ = machine.start()
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(1), deadline: clock.now, now: clock.now),
      .fail(notConnected))
    XCTAssertNil(machine.nextWaiterDeadline)
  }

  func testWaitersDuringReconnectingAreResumedByTheNextChannel() {
    var machine = makeMachine()
    let clock = ManualClock()
    _ = machine.start()
    _ = machine.attemptSucceeded(generation: 1)
    _ = machine.channelClosed(generation: 1, reason: "keepalive timeout")
    XCTAssertEqual(
      machine.waitForReady(id: WaiterID(4), deadline: clock.now + .seconds(1), now: clock.now),
      .wait(deadline: clock.now + .seconds(1)))
    guard case .connected(2, _, let resumed) = machine.attemptSucceeded(generation: 2) else {
      return XCTFail("attempt 2 did not connect")
    }
    XCTAssertEqual(resumed, [WaiterID(4)])
  }

  func testDisconnectFailsEveryWaiterWithDisconnected() {
    for reconnecting in [false, true] {
      var machine = makeMachine()
      let clock = ManualClock()
      _ = machine.start()
      if reconnecting {
        _ = machine.attemptSucceeded(generation: 1)
        _ = machine.channelClosed(generation: 1, reason: "GOAWAY")
      }
      for id in [5, 1, 9] as [UInt64] {
        _ = machine.waitForReady(
          id: WaiterID(id), deadline: clock.now + .seconds(9), now: clock.now)
      }
      guard case .shutDown(let shutDown) = machine.disconnect(reason: "application stopped")
      else { return XCTFail("disconnect did nothing") }
      XCTAssertEqual(shutDown.failWaiters, [WaiterID(5), WaiterID(1), WaiterID(9)])
      XCTAssertEqual(shutDown.error, .disconnected(reason: "application stopped"))
      XCTAssertEqual(shutDown.closeChannel, reconnecting ? 2 : 1)
      XCTAssertEqual(machine.waiterDeadlinesPassed(now: clock.now + .seconds(10)), .none)
      XCTAssertEqual(
        machine.waitForReady(id: WaiterID(6), deadline: clock.now + .seconds(1), now: clock.now),
        .fail(.disconnected(reason: "application stopped")))
    }
  }

  func testDisconnectBeforeStartFailsTheEarlyWaiters() {
    var machine = makeMachine()
    let clock = ManualClock()
    _ = machine.waitForReady(id: WaiterID(1), deadline: clock.now + .seconds(1), now: clock.now)
    guard case .shutDown(let shutDown) = machine.disconnect(reason: "never mind") else {
      return XCTFail("disconnect did nothing")
    }
    XCTAssertEqual(shutDown.failWaiters, [WaiterID(1)])
    XCTAssertNil(shutDown.closeChannel)
    XCTAssertFalse(shutDown.cancelRetryTimer)
    XCTAssertEqual(machine.start(), .none)
  }

  func testACancelledWaiterIsNeitherResumedNorFailed() {
    var machine = makeMachine()
    let clock = ManualClock()
    _ = machine.start()
    _ = machine.waitForReady(id: WaiterID(1), deadline: clock.now + .seconds(1), now: clock.now)
    _ = machine.waitForReady(id: WaiterID(2), deadline: clock.now + .seconds(2), now: clock.now)
    XCTAssertTrue(machine.cancelWaiter(id: WaiterID(1)))
    XCTAssertFalse(machine.cancelWaiter(id: WaiterID(1)), "cancelled twice")
    XCTAssertEqual(machine.waiterDeadlinesPassed(now: clock.now + .seconds(1)), .none)
    guard case .connected(1, _, let resumed) = machine.attemptSucceeded(generation: 1) else {
      return XCTFail("attempt 1 did not connect")
    }
    XCTAssertEqual(resumed, [WaiterID(2)])
    XCTAssertFalse(machine.cancelWaiter(id: WaiterID(2)), "already resumed")
  }
}
