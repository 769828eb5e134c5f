import Logging
import XCTest

@testable import MilvexReactor

/// Issue 16, item 2: channel recycling. The machine's rules (pure), then a connection that
/// recycles every ~100 ms while calls run: none fails, not even one made from another thread
/// on a channel that was replaced while the call was on its way to the loop.
final class ChannelRecyclingTests: XCTestCase {
  private func connectedMachine() throws -> (ConnectionStateMachine, UInt64) {
    var machine = ConnectionStateMachine(config: try ConnectionConfig())
    guard case .startAttempt(let generation, _) = machine.start() else {
      throw PeerError.unexpected("no first attempt")
    }
    guard case .connected = machine.attemptSucceeded(generation: generation) else {
      throw PeerError.unexpected("not connected")
    }
    return (machine, generation)
  }

  func testTheReplacementTakesOverOnlyWhenReady() throws {
    var (machine, first) = try connectedMachine()
    let replacement = try XCTUnwrap(machine.recycleStarted())
    XCTAssertNotEqual(replacement, first)
    XCTAssertNil(machine.recycleStarted(), "one replacement at a time")
    XCTAssertEqual(machine.channel, .connected(generation: first), "the old one still serves")
    XCTAssertNil(machine.recycleSucceeded(generation: replacement + 1), "not the replacement")
    XCTAssertEqual(machine.recycleSucceeded(generation: replacement), first, "retire the old")
    XCTAssertEqual(machine.channel, .connected(generation: replacement))
    XCTAssertNil(machine.replacementGeneration)
    XCTAssertEqual(machine.connectivityState, .connected)
    // The retired channel closing later changes nothing.
    XCTAssertEqual(machine.channelClosed(generation: first, reason: "recycled"), .none)
  }

  func testAFailedReplacementKeepsTheConnectedChannel() throws {
    var (machine, first) = try connectedMachine()
    let replacement = try XCTUnwrap(machine.recycleStarted())
    XCTAssertFalse(machine.recycleFailed(generation: first))
    XCTAssertTrue(machine.recycleFailed(generation: replacement))
    XCTAssertFalse(machine.recycleFailed(generation: replacement), "once")
    XCTAssertEqual(machine.channel, .connected(generation: first))
    XCTAssertNotNil(machine.recycleStarted(), "a later recycling may start")
  }

  func testLosingTheConnectedChannelDropsTheReplacement() throws {
    var (machine, first) = try connectedMachine()
    let replacement = try XCTUnwrap(machine.recycleStarted())
    guard case .reconnect = machine.channelClosed(generation: first, reason: "EOF") else {
      return XCTFail("the loss reconnects as usual")
    }
    XCTAssertNil(machine.recycleSucceeded(generation: replacement))
    XCTAssertFalse(machine.recycleFailed(generation: replacement))
    XCTAssertNil(machine.recycleStarted(), "nothing to recycle while reconnecting")
  }

  func testNoRecyclingBeforeConnectedOrAfterDisconnect() throws {
    var machine = ConnectionStateMachine(config: try ConnectionConfig())
    XCTAssertNil(machine.recycleStarted())
    _ = machine.start()
    XCTAssertNil(machine.recycleStarted())
    var (connected, _) = try connectedMachine()
    _ = connected.disconnect(reason: "bye")
    XCTAssertNil(connected.recycleStarted())
  }

  /// Live: the channel is replaced every 90–110 ms while 4 callers keep 200 ms and instant
  /// calls going for 1.5 s; every call succeeds and the connection never leaves `connected`.
  ///
  /// On real time: a soak of real concurrency, half of whose calls wait on the peer's own
  /// 200 ms timer. The age timer on virtual time is `VirtualTimeLibraryTimerTests`'
  /// `testChannelRecyclingWaitsForTheClock`.
  func testCallsNeverFailBecauseOfRecycling() async throws {
    let server = try PeerProcess.misbehavingServer("echo")
    defer { server.stop() }
    let loop = try EventLoop(threadName: "recycling")
    defer { loop.shutdown() }
    var config = try ConnectionConfig(
      host: "127.0.0.1", port: server.port, connectTimeout: .seconds(5),
      allowTestingTimings: true)
    config.maxChannelAge = .milliseconds(100)
    var logger = Logger(label: "recycling")
    logger.logLevel = .critical
    let transitions = EventRecorder<StateTransition>()
    let connection = try Connection.start(config: config, on: loop, logger: logger) {
      transitions.record($0)
    }
    defer { connection.disconnect() }
    _ = try await connection.waitForChannel(timeout: .seconds(10))
    let end = ContinuousClock.now + .milliseconds(1500)
    let outcomes = try await withThrowingTaskGroup(of: (calls: Int, failures: [String]).self) {
      group in
      for caller in 0..<4 {
        group.addTask {
          var calls = 0
          var failures: [String] = []
          while ContinuousClock.now < end {
            let (channel, _) = try await connection.waitForChannel(timeout: .seconds(5))
            let path = caller % 2 == 0 ? "/test.Echo/Delay" : "/test.Echo/Call"
            do {
              let reply = try await channel.unary(
                path: path, request: [UInt8(caller)], timeout: .seconds(5))
              if reply != [UInt8(caller)] { failures.append("wrong echo \(reply)") }
            } catch {
              failures.append("\(error)")
            }
            calls += 1
          }
          return (calls, failures)
        }
      }
      return try await group.reduce(into: [(calls: Int, failures: [String])]()) { $0.append($1) }
    }
    let calls = outcomes.map(\.calls).reduce(0, +)
    let failures = outcomes.flatMap(\.failures)
    XCTAssertEqual(failures, [], "\(calls) calls")
    XCTAssertGreaterThan(calls, 20)
    let recycled = transitions.all.filter { $0.reason.hasPrefix("channel recycled") }.count
    XCTAssertGreaterThanOrEqual(recycled, 5, "\(transitions.all)")
    XCTAssertFalse(transitions.all.contains { $0.to != .connected }, "\(transitions.all)")
    // The retired channels close once idle after their 1 s grace: recycling goes on every
    // ~100 ms, so about ten are within their grace at any time, never the ~30 made by now.
    try await Task.sleep(for: .seconds(1.5))
    let draining = try await loop.submit { connection.driverOnLoop?.drainingChannelCount ?? -1 }
    XCTAssertGreaterThanOrEqual(draining, 0)
    XCTAssertLessThanOrEqual(draining, 14, "retired channels close once idle")
  }
}
