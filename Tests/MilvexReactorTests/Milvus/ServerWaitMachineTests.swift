import XCTest

@testable import MilvexReactor

/// Progress in percent, as a load reports it.
private typealias Machine = ServerWaitMachine<Int>
private typealias Action = Machine.Action

private func ms(_ value: Double) -> Duration { .nanoseconds(Int64(value * 1_000_000)) }

/// A manual clock in the machine's time: starts at 0, moves only when told.
private struct WaitClock {
  private(set) var now: Duration = .zero
  mutating func advance(by duration: Duration) { now += duration }
}

/// A wait for "the thing" that may take `timeout` (10 s unless told), progress as "N %".
private func makeMachine(timeout: Duration = .seconds(10)) -> Machine {
  Machine(what: "the thing", timeout: timeout) { "\($0) %" }
}

private let unavailable = MilvexError.status(.unavailable, "the server went away")
private let callDeadline = MilvexError.status(.deadlineExceeded, "the GetLoadState call timed out")
private let cancelled = MilvexError.status(.cancelled, "waiting for the thing was cancelled")

/// Issue 22, item 6: the decisions of a wait for the server, on virtual time.
final class ServerWaitMachineTests: XCTestCase {
  /// The machine's four states, each reached by events from a new machine at time 0.
  private enum Step: String, CaseIterable {
    case idle, checking, waiting, done

    func make() -> Machine {
      var machine = makeMachine()
      switch self {
      case .idle: break
      case .checking: _ = machine.start(now: .zero)
      case .waiting:
        _ = machine.start(now: .zero)
        _ = machine.checkAnswered(.pending(nil), now: .zero)
      case .done:
        _ = machine.start(now: .zero)
        _ = machine.checkAnswered(.finished(nil), now: .zero)
      }
      return machine
    }
  }

  /// Every event the machine takes.
  private enum Event: String, CaseIterable {
    case start, finished, pending, stepDone, failed, timerFired, timerFailed, cancel, loopShutDown

    func apply(to machine: inout Machine, now: Duration) -> [Action] {
      switch self {
      case .start: machine.start(now: now)
      case .finished: machine.checkAnswered(.finished(7), now: now)
      case .pending: machine.checkAnswered(.pending(7), now: now)
      case .stepDone: machine.checkAnswered(.stepDone(awaiting: "the next thing"), now: now)
      case .failed: machine.checkAnswered(.failed(unavailable), now: now)
      case .timerFired: machine.timerFired(now: now)
      case .timerFailed:
        machine.timerFailed(.eventLoopShutDown(operation: "scheduleTimer"))
      case .cancel: machine.cancel()
      case .loopShutDown: machine.loopShutDown()
      }
    }
  }

  private func isTerminal(_ action: Action) -> Bool {
    switch action {
    case .succeed, .fail: true
    case .runCheck, .report, .wait, .cancelCheck, .cancelTimer: false
    }
  }

  // MARK: - Every state × every event

  func testEveryEventInEveryState() {
    let now = Duration.seconds(1)
    let shutDown = MilvexError.eventLoopShutDown(operation: "scheduleTimer")
    let expected: [Step: [Event: [Action]]] = [
      .idle: [
        .start: [.runCheck(timeout: .seconds(10))],  // the deadline counts from the start
        .finished: [], .pending: [], .stepDone: [], .failed: [], .timerFired: [],
        .timerFailed: [],
        .cancel: [.fail(cancelled)],
        .loopShutDown: [],
      ],
      .checking: [
        .start: [],
        .finished: [.report(7), .succeed(7)],
        .pending: [.report(7), .wait(ms(50))],
        .stepDone: [.runCheck(timeout: .seconds(9))],
        .failed: [.fail(unavailable)],
        .timerFired: [], .timerFailed: [],
        .cancel: [.cancelCheck, .fail(cancelled)],
        .loopShutDown: [],  // the call in flight reports the shutdown
      ],
      .waiting: [
        .start: [], .finished: [], .pending: [], .stepDone: [], .failed: [],
        .timerFired: [.runCheck(timeout: .seconds(9))],
        .timerFailed: [.fail(shutDown)],
        .cancel: [.cancelTimer, .fail(cancelled)],
        .loopShutDown: [
          .cancelTimer, .fail(.eventLoopShutDown(operation: "waiting for the thing")),
        ],
      ],
      .done: Dictionary(uniqueKeysWithValues: Event.allCases.map { ($0, []) }),
    ]
    for step in Step.allCases {
      for event in Event.allCases {
        var machine = step.make()
        let actions = event.apply(to: &machine, now: now)
        XCTAssertEqual(actions, expected[step]?[event], "\(step) × \(event)")
      }
    }
  }

  /// From every state, every sequence of three events ends the wait at most once, the
  /// terminal action comes last, and after it no event asks for anything (no check, no
  /// timer, no report).
  func testEverySequenceOfEventsCompletesAtMostOnce() {
    for step in Step.allCases {
      for first in Event.allCases {
        for second in Event.allCases {
          for third in Event.allCases {
            let name = "\(step) \(first) \(second) \(third)"
            var machine = step.make()
            var clock = WaitClock()
            var terminals = step == .done ? 1 : 0
            for event in [first, second, third] {
              clock.advance(by: ms(100))
              let actions = event.apply(to: &machine, now: clock.now)
              if terminals > 0 { XCTAssertEqual(actions, [], name) }
              terminals += actions.filter(isTerminal).count
              if let index = actions.firstIndex(where: isTerminal) {
                XCTAssertEqual(index, actions.count - 1, "the terminal action comes last: \(name)")
              }
            }
            XCTAssertLessThanOrEqual(terminals, 1, name)
            XCTAssertEqual(machine.isFinished, terminals == 1, name)
          }
        }
      }
    }
  }

  // MARK: - Sequences on the manual clock

  /// 50 ms, then × 1.5 up to 1 s between pending checks; each check gets what remains.
  func testThePollScheduleGrowsFrom50msTo1s() {
    var clock = WaitClock()
    var machine = makeMachine(timeout: .seconds(60))
    XCTAssertEqual(machine.start(now: clock.now), [.runCheck(timeout: .seconds(60))])
    var delays: [Duration] = []
    for _ in 0..<11 {
      clock.advance(by: ms(10))  // the check's round trip
      guard case .wait(let delay) = machine.checkAnswered(.pending(nil), now: clock.now).last
      else { return XCTFail("no wait") }
      delays.append(delay)
      clock.advance(by: delay)
      XCTAssertEqual(
        machine.timerFired(now: clock.now), [.runCheck(timeout: .seconds(60) - clock.now)])
    }
    XCTAssertEqual(
      delays,
      [
        ms(50), ms(75), ms(112.5), ms(168.75), ms(253.125), ms(379.6875), ms(569.53125),
        ms(854.296875), .seconds(1), .seconds(1), .seconds(1),
      ])
  }

  /// The last wait is cut to the deadline; at the deadline the wait fails with
  /// DEADLINE_EXCEEDED naming what was awaited and the last progress.
  func testTheDeadlineEndsTheWaitNamingWhatAndTheLastProgress() {
    var clock = WaitClock()
    var machine = makeMachine(timeout: ms(200))
    _ = machine.start(now: clock.now)
    clock.advance(by: ms(10))
    XCTAssertEqual(
      machine.checkAnswered(.pending(40), now: clock.now), [.report(40), .wait(ms(50))])
    clock.advance(by: ms(50))
    XCTAssertEqual(machine.timerFired(now: clock.now), [.runCheck(timeout: ms(140))])
    clock.advance(by: ms(10))
    XCTAssertEqual(machine.checkAnswered(.pending(nil), now: clock.now), [.wait(ms(75))])
    clock.advance(by: ms(75))
    XCTAssertEqual(machine.timerFired(now: clock.now), [.runCheck(timeout: ms(55))])
    clock.advance(by: ms(10))
    XCTAssertEqual(
      machine.checkAnswered(.pending(60), now: clock.now), [.report(60), .wait(ms(45))],
      "cut to what remains")
    clock.advance(by: ms(45))
    XCTAssertEqual(
      machine.timerFired(now: clock.now),
      [.fail(.status(.deadlineExceeded, "the thing did not finish in time (60 %)"))])
    XCTAssertTrue(machine.isFinished)
    XCTAssertEqual(machine.checkAnswered(.finished(100), now: clock.now), [], "too late")
  }

  /// A pending answer that comes after the deadline fails at once, without waiting first;
  /// without progress the words name only what was awaited.
  func testAPendingAnswerAfterTheDeadlineFailsAtOnce() {
    var machine = makeMachine(timeout: ms(100))
    _ = machine.start(now: .zero)
    XCTAssertEqual(
      machine.checkAnswered(.pending(nil), now: ms(100)),
      [.fail(.status(.deadlineExceeded, "the thing did not finish in time"))])
  }

  /// A check whose own timeout (what remained) ran out fails the wait with the wait's words;
  /// one that fails with DEADLINE_EXCEEDED earlier (a server's own deadline) passes through.
  func testACheckThatTimesOutAtTheDeadlineGetsTheWaitsWords() {
    var machine = makeMachine(timeout: ms(300))
    _ = machine.start(now: .zero)
    _ = machine.checkAnswered(.pending(20), now: ms(10))
    _ = machine.timerFired(now: ms(60))
    XCTAssertEqual(
      machine.checkAnswered(.failed(callDeadline), now: ms(300)),
      [.fail(.status(.deadlineExceeded, "the thing did not finish in time (20 %)"))])

    var early = makeMachine(timeout: ms(300))
    _ = early.start(now: .zero)
    XCTAssertEqual(early.checkAnswered(.failed(callDeadline), now: ms(200)), [.fail(callDeadline)])
  }

  /// Progress is reported only when it changes; the wait succeeds with the last one.
  func testProgressIsReportedOnlyWhenItChanges() {
    var machine = makeMachine()
    var now = Duration.zero
    _ = machine.start(now: now)
    var reported: [Int] = []
    for answer in [Optional(10), 10, nil, 30, 30, nil] {
      now += ms(100)
      for case .report(let percent) in machine.checkAnswered(.pending(answer), now: now) {
        reported.append(percent)
      }
      now += ms(100)
      _ = machine.timerFired(now: now)
    }
    XCTAssertEqual(reported, [10, 30])
    XCTAssertEqual(machine.checkAnswered(.finished(nil), now: now), [.succeed(30)])

    var loaded = makeMachine()
    _ = loaded.start(now: .zero)
    _ = loaded.checkAnswered(.pending(100), now: .zero)
    _ = loaded.timerFired(now: ms(50))
    XCTAssertEqual(
      loaded.checkAnswered(.finished(100), now: ms(60)), [.succeed(100)],
      "100 is not reported twice")
  }

  /// A step done runs the next check at once and starts over: what is awaited, the poll
  /// schedule and the progress are the next step's.
  func testAStepDoneStartsTheNextStepAtOnce() {
    var machine = makeMachine()
    _ = machine.start(now: .zero)
    _ = machine.checkAnswered(.pending(50), now: ms(10))
    _ = machine.timerFired(now: ms(60))
    _ = machine.checkAnswered(.pending(50), now: ms(70))
    XCTAssertEqual(machine.timerFired(now: ms(145)), [.runCheck(timeout: .seconds(10) - ms(145))])
    XCTAssertEqual(
      machine.checkAnswered(.stepDone(awaiting: "the second thing"), now: ms(150)),
      [.runCheck(timeout: .seconds(10) - ms(150))])
    XCTAssertEqual(machine.what, "the second thing")
    XCTAssertEqual(
      machine.checkAnswered(.pending(50), now: ms(160)), [.report(50), .wait(ms(50))],
      "the schedule and the progress start over")
    XCTAssertEqual(
      machine.cancel(),
      [.cancelTimer, .fail(.status(.cancelled, "waiting for the second thing was cancelled"))])
  }

  /// A timeout that is not positive is refused before any check.
  func testANonPositiveTimeoutIsRefused() {
    for timeout in [Duration.zero, .seconds(-1)] {
      var machine = makeMachine(timeout: timeout)
      XCTAssertEqual(
        machine.start(now: .zero),
        [.fail(.invalidArgument(field: "timeout", message: "must be positive, is \(timeout)"))])
    }
  }

  /// Cancelled mid-check, the wait ends at once; the check's late answer and a stray timer
  /// do nothing.
  func testACancelledWaitIgnoresWhatComesAfter() {
    var machine = makeMachine()
    _ = machine.start(now: .zero)
    XCTAssertEqual(machine.cancel(), [.cancelCheck, .fail(cancelled)])
    XCTAssertEqual(machine.checkAnswered(.failed(.status(.cancelled, "call")), now: ms(1)), [])
    XCTAssertEqual(machine.checkAnswered(.finished(100), now: ms(1)), [])
    XCTAssertEqual(machine.timerFired(now: ms(50)), [])
    XCTAssertEqual(machine.cancel(), [], "cancelling twice")
  }
}
