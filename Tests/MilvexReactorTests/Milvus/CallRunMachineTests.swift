import XCTest

@testable import MilvexReactor

private typealias Machine = CallRunMachine
private typealias Action = CallRunMachine.Action

/// A manual clock in the machine's time (the duration since the call started).
private struct ElapsedClock {
  /// When the call started.
  let start: Duration = .zero
  private(set) var elapsed: Duration = .zero

  var now: Duration { start + elapsed }

  mutating func advance(by duration: Duration) { elapsed += duration }
}

/// Every machine here starts at `clock.start` with a 10 s timeout.
private let timeout: Duration = .seconds(10)

/// Three attempts, delays 100 ms then 200 ms, ±10 % jitter.
private let policy = RetryPolicy(
  maxAttempts: 3, baseDelay: .milliseconds(100), maxDelay: .seconds(1), multiplier: 2,
  jitter: 0.1)

private let unavailable = MilvexError.status(.unavailable, "the server went away")
private let rateLimited = MilvexError.milvus(code: 8, reason: "rate limit exceeded")
private let collectionMissing = MilvexError.milvus(code: 100, reason: "collection not found")
private let mismatch = MilvexError.milvus(code: 2400, reason: "schema mismatch")
private let request: [UInt8] = [1, 2, 3]

private let schemaV1 = Machine.KnownSchema(
  schema: CollectionSchema(fields: [.primaryKey("id"), .vector("vec", dimension: 2)]),
  timestamp: 100)
private let schemaV2 = Machine.KnownSchema(
  schema: CollectionSchema(fields: [.primaryKey("id"), .vector("vec", dimension: 4)]),
  timestamp: 200)

/// A machine for method `Search` (or `Insert` when `isWrite`), deadline `clock.start + 10 s`.
///
/// - Parameter random: the jitter draws, in order (0.5 = no jitter).
private func makeMachine(
  _ clock: ElapsedClock, isWrite: Bool = false, needsSchema: Bool = true,
  policy: RetryPolicy = policy, random: [Double] = [0.5]
) -> Machine {
  Machine(
    method: isWrite ? "Insert" : "Search", isWrite: isWrite, needsSchema: needsSchema,
    policy: policy, deadline: clock.start + timeout, random: PinnedRandomSource(random))
}

/// Drives a new machine to its first send: the schema (if needed) is cached, the channel
/// ready, `request` in flight.
private func sendFirstAttempt(_ machine: inout Machine, now: Duration) {
  _ = machine.start(now: now)
  if machine.needsSchema { _ = machine.schemaLookedUp(schemaV1, now: now) }
  _ = machine.encoded(request)
  _ = machine.channelReady(now: now)
}

/// Whether `action` ends the call.
private func isTerminal(_ action: Action) -> Bool {
  switch action {
  case .succeed, .fail: return true
  case .lookUpSchema, .fetchSchema, .rememberSchema, .forgetSchema, .encode, .waitForChannel,
    .send, .scheduleRetry, .cancelRetryTimer, .cancelInFlight:
    return false
  }
}

/// The gRPC status inside the `fail` action that `actions` ends with.
private func failure(
  _ actions: Machine.Actions, file: StaticString = #filePath, line: UInt = #line
) -> GRPCStatus? {
  guard case .fail(.grpcStatus(let status)) = actions.last else {
    XCTFail("not a gRPC failure: \(actions)", file: file, line: line)
    return nil
  }
  return status
}

/// The steps a call can be at, each reached by real events from a new machine (a read that
/// needs a schema).
private enum Step: String, CaseIterable {
  case idle, lookingUpSchema, fetchingSchema, encoding, waitingForChannel, inFlight
  case waitingToRetry, finished

  func make(_ clock: ElapsedClock) -> Machine {
    var machine = makeMachine(clock)
    let now = clock.now
    switch self {
    case .idle:
      break
    case .lookingUpSchema:
      _ = machine.start(now: now)
    case .fetchingSchema:
      _ = machine.start(now: now)
      _ = machine.schemaLookedUp(nil, now: now)
    case .encoding:
      _ = machine.start(now: now)
      _ = machine.schemaLookedUp(schemaV1, now: now)
    case .waitingForChannel, .inFlight, .waitingToRetry, .finished:
      _ = machine.start(now: now)
      _ = machine.schemaLookedUp(schemaV1, now: now)
      _ = machine.encoded(request)
      if self == .waitingToRetry { _ = machine.channelFailed(unavailable, now: now) }
      if self == .inFlight || self == .finished { _ = machine.channelReady(now: now) }
      if self == .finished { _ = machine.answered(.success, now: now) }
    }
    return machine
  }
}

/// Every event a machine takes, with arguments that would move it on in its step.
private enum Event: String, CaseIterable {
  case start, retryTimerFired, retryTimerFailed, schemaFound, schemaMissing, schemaFetched
  case schemaFetchFailed, encoded, encodeFailed, channelReady, channelFailed, success
  case schemaMismatch, answerFailed, cancel, loopShutDown

  func apply(to machine: inout Machine, now: Duration) -> Machine.Actions {
    switch self {
    case .start: return machine.start(now: now)
    case .retryTimerFired: return machine.retryTimerFired(now: now)
    case .retryTimerFailed:
      return machine.retryTimerFailed(.eventLoopShutDown(operation: "scheduleTimer"))
    case .schemaFound: return machine.schemaLookedUp(schemaV1, now: now)
    case .schemaMissing: return machine.schemaLookedUp(nil, now: now)
    case .schemaFetched: return machine.schemaFetched(schemaV2)
    case .schemaFetchFailed: return machine.schemaFetchFailed(unavailable, now: now)
    case .encoded: return machine.encoded(request)
    case .encodeFailed:
      return machine.encodeFailed(.invalidArgument(field: "rows[0].vec", message: "dimension"))
    case .channelReady: return machine.channelReady(now: now)
    case .channelFailed: return machine.channelFailed(unavailable, now: now)
    case .success: return machine.answered(.success, now: now)
    case .schemaMismatch: return machine.answered(.schemaMismatch(mismatch), now: now)
    case .answerFailed: return machine.answered(.failure(unavailable), now: now)
    case .cancel: return machine.cancel()
    case .loopShutDown: return machine.loopShutDown()
    }
  }
}

final class CallRunMachineTests: XCTestCase {
  // MARK: - The way to success

  /// A call without schema: encode, wait for the channel until the deadline, send with what
  /// remains of it, deliver.
  func testACallWithoutSchemaEncodesWaitsSendsAndSucceeds() {
    var clock = ElapsedClock()
    var machine = makeMachine(clock, needsSchema: false)
    XCTAssertEqual(machine.start(now: clock.now), [.encode])
    XCTAssertEqual(machine.encoded(request), [.waitForChannel(deadline: clock.start + timeout)])
    clock.advance(by: .seconds(3))
    XCTAssertEqual(
      machine.channelReady(now: clock.now), [.send(request: request, timeout: .seconds(7))])
    XCTAssertTrue(machine.awaitsAnswer)
    XCTAssertEqual(machine.answered(.success, now: clock.now), [.succeed])
    XCTAssertTrue(machine.isFinished)
    XCTAssertEqual(machine.attempt, 1)
  }

  /// A cached schema is used as it is; nothing is read.
  func testACachedSchemaIsUsedWithoutReadingIt() {
    let clock = ElapsedClock()
    var machine = makeMachine(clock)
    XCTAssertEqual(machine.start(now: clock.now), [.lookUpSchema])
    XCTAssertEqual(machine.schemaLookedUp(schemaV1, now: clock.now), [.encode])
    XCTAssertEqual(machine.schema, schemaV1)
  }

  /// A schema not cached is read within the time left, remembered, then used to encode.
  func testAMissingSchemaIsReadWithinTheTimeLeftAndRemembered() {
    var clock = ElapsedClock()
    var machine = makeMachine(clock)
    _ = machine.start(now: clock.now)
    clock.advance(by: .seconds(2))
    XCTAssertEqual(
      machine.schemaLookedUp(nil, now: clock.now), [.fetchSchema(timeout: .seconds(8))])
    XCTAssertEqual(
      machine.schemaFetched(schemaV1), [.rememberSchema(schemaV1), .encode])
    XCTAssertEqual(machine.schema, schemaV1)
  }

  /// `start` begins the call once.
  func testStartingTwiceDoesNothing() {
    let clock = ElapsedClock()
    var machine = makeMachine(clock)
    XCTAssertEqual(machine.start(now: clock.now), [.lookUpSchema])
    XCTAssertEqual(machine.start(now: clock.now), [])
    XCTAssertEqual(machine.attempt, 1)
  }

  // MARK: - Retries

  /// Retriable failures are retried with the policy's delays, spread by the injected draws
  /// (0 → -10 %, 1 → +10 %); the request is encoded once and sent again as it is; the third
  /// failure ends the call (three attempts in total).
  func testRetriesFollowThePolicyWithExactJitterUntilTheBudgetIsSpent() {
    var clock = ElapsedClock()
    var machine = makeMachine(clock, random: [0, 1, 0.5])
    _ = machine.start(now: clock.now)
    _ = machine.schemaLookedUp(schemaV1, now: clock.now)
    _ = machine.encoded(request)
    XCTAssertEqual(
      machine.channelFailed(unavailable, now: clock.now),
      [.scheduleRetry(after: .milliseconds(90), attempt: 2, error: unavailable)])
    clock.advance(by: .milliseconds(90))
    XCTAssertEqual(
      machine.retryTimerFired(now: clock.now), [.waitForChannel(deadline: clock.start + timeout)],
      "the encoded request is kept")
    _ = machine.channelReady(now: clock.now)
    XCTAssertEqual(
      machine.answered(.failure(rateLimited), now: clock.now),
      [.forgetSchema, .scheduleRetry(after: .milliseconds(220), attempt: 3, error: rateLimited)],
      "a Milvus status (even a rate limit) forgets the schema; the request stays encoded")
    clock.advance(by: .milliseconds(220))
    _ = machine.retryTimerFired(now: clock.now)
    XCTAssertEqual(
      machine.channelReady(now: clock.now),
      [.send(request: request, timeout: timeout - .milliseconds(310))])
    XCTAssertEqual(machine.answered(.failure(unavailable), now: clock.now), [.fail(unavailable)])
    XCTAssertEqual(machine.attempt, 3)
  }

  /// A retry is taken only if its delay ends before the deadline.
  func testARetryThatWouldPassTheDeadlineIsNotTaken() {
    var clock = ElapsedClock()
    let exact = RetryPolicy(
      maxAttempts: 5, baseDelay: .milliseconds(100), maxDelay: .seconds(1), jitter: 0)
    var machine = makeMachine(clock, needsSchema: false, policy: exact)
    _ = machine.start(now: clock.now)
    _ = machine.encoded(request)
    clock.advance(by: timeout - .milliseconds(101))
    XCTAssertEqual(
      machine.channelFailed(unavailable, now: clock.now),
      [.scheduleRetry(after: .milliseconds(100), attempt: 2, error: unavailable)],
      "100 ms fit into the 101 ms left")
    clock.advance(by: .milliseconds(1))
    _ = machine.retryTimerFired(now: clock.now)
    // 200 ms do not fit into the 100 ms left.
    XCTAssertEqual(machine.channelFailed(unavailable, now: clock.now), [.fail(unavailable)])
  }

  /// Errors a retry cannot cure end the call at once.
  func testFinalErrorsAreNotRetried() {
    let clock = ElapsedClock()
    var machine = makeMachine(clock, needsSchema: false)
    _ = machine.start(now: clock.now)
    _ = machine.encoded(request)
    let refused = MilvexError.status(.permissionDenied, "no")
    XCTAssertEqual(machine.channelFailed(refused, now: clock.now), [.fail(refused)])
  }

  /// The retry timer that cannot start (the loop is shutting down) ends the call.
  func testARetryTimerThatCannotStartFailsTheCall() {
    let clock = ElapsedClock()
    var machine = Step.waitingToRetry.make(clock)
    let error = MilvexError.eventLoopShutDown(operation: "scheduleTimer")
    XCTAssertEqual(machine.retryTimerFailed(error), [.fail(error)])
  }

  // MARK: - Writes

  /// A write handed to a channel may have been applied: it is not retried, even after a
  /// retriable failure.
  func testASentWriteIsNeverRetried() {
    let clock = ElapsedClock()
    var machine = makeMachine(clock, isWrite: true)
    sendFirstAttempt(&machine, now: clock.now)
    XCTAssertTrue(machine.requestSent)
    XCTAssertEqual(machine.answered(.failure(unavailable), now: clock.now), [.fail(unavailable)])
  }

  /// With `retryWrites`, a sent write is retried like a read.
  func testASentWriteIsRetriedWhenThePolicyAllowsWrites() {
    let clock = ElapsedClock()
    var writes = policy
    writes.retryWrites = true
    var machine = makeMachine(clock, isWrite: true, policy: writes)
    sendFirstAttempt(&machine, now: clock.now)
    XCTAssertEqual(
      machine.answered(.failure(unavailable), now: clock.now),
      [.scheduleRetry(after: .milliseconds(100), attempt: 2, error: unavailable)])
  }

  /// A write whose request never left (the schema read or the wait for the channel failed)
  /// cannot have applied: it is retried like a read, until it is sent; then no more.
  func testAWriteWhoseRequestNeverLeftIsRetriedLikeARead() {
    var clock = ElapsedClock()
    var machine = makeMachine(
      clock, isWrite: true, policy: RetryPolicy(maxAttempts: 5, jitter: 0))
    _ = machine.start(now: clock.now)
    _ = machine.schemaLookedUp(nil, now: clock.now)
    XCTAssertEqual(
      machine.schemaFetchFailed(unavailable, now: clock.now),
      [.scheduleRetry(after: .milliseconds(100), attempt: 2, error: unavailable)])
    clock.advance(by: .milliseconds(100))
    XCTAssertEqual(machine.retryTimerFired(now: clock.now), [.lookUpSchema])
    _ = machine.schemaLookedUp(nil, now: clock.now)
    _ = machine.schemaFetched(schemaV1)
    _ = machine.encoded(request)
    let down = MilvexError.notConnected(host: "db", port: 19530)
    XCTAssertEqual(
      machine.channelFailed(down, now: clock.now),
      [.scheduleRetry(after: .milliseconds(200), attempt: 3, error: down)])
    XCTAssertFalse(machine.requestSent)
    clock.advance(by: .milliseconds(200))
    XCTAssertEqual(
      machine.retryTimerFired(now: clock.now), [.waitForChannel(deadline: clock.start + timeout)])
    _ = machine.channelReady(now: clock.now)
    XCTAssertEqual(machine.answered(.failure(unavailable), now: clock.now), [.fail(unavailable)])
  }

  // MARK: - Schema

  /// `SchemaMismatch`: forget the schema, read it again, encode again, resend, once; a
  /// second mismatch ends the call with the server's error.
  func testSchemaMismatchRereadsTheSchemaAndResendsExactlyOnce() {
    var clock = ElapsedClock()
    var machine = makeMachine(clock, isWrite: true)
    sendFirstAttempt(&machine, now: clock.now)
    clock.advance(by: .seconds(1))
    XCTAssertEqual(
      machine.answered(.schemaMismatch(mismatch), now: clock.now),
      [.forgetSchema, .fetchSchema(timeout: .seconds(9))])
    XCTAssertEqual(
      machine.schemaFetched(schemaV2), [.rememberSchema(schemaV2), .encode])
    XCTAssertEqual(machine.schema, schemaV2)
    let resent: [UInt8] = [4, 5, 6]
    XCTAssertEqual(machine.encoded(resent), [.waitForChannel(deadline: clock.start + timeout)])
    XCTAssertEqual(
      machine.channelReady(now: clock.now), [.send(request: resent, timeout: .seconds(9))])
    XCTAssertEqual(
      machine.answered(.schemaMismatch(mismatch), now: clock.now), [.forgetSchema, .fail(mismatch)])
    XCTAssertEqual(machine.attempt, 1, "the resend is part of the same attempt")
  }

  /// A mismatch on a call without schema cannot be cured by reading one.
  func testSchemaMismatchWithoutSchemaFails() {
    let clock = ElapsedClock()
    var machine = makeMachine(clock, needsSchema: false)
    sendFirstAttempt(&machine, now: clock.now)
    XCTAssertEqual(machine.answered(.schemaMismatch(mismatch), now: clock.now), [.fail(mismatch)])
  }

  /// A Milvus error may mean the collection changed: the cached schema is forgotten. A gRPC
  /// error says nothing about the collection and keeps it.
  func testAMilvusErrorForgetsTheSchema() {
    let clock = ElapsedClock()
    var machine = Step.inFlight.make(clock)
    XCTAssertEqual(
      machine.answered(.failure(collectionMissing), now: clock.now),
      [.forgetSchema, .fail(collectionMissing)])

    machine = Step.inFlight.make(clock)
    XCTAssertEqual(
      machine.answered(.failure(unavailable), now: clock.now),
      [.scheduleRetry(after: .milliseconds(100), attempt: 2, error: unavailable)])
  }

  /// A bad argument found while encoding fails the call at once, never retried.
  func testAnEncodingFailureEndsTheCallAtOnce() {
    let clock = ElapsedClock()
    var machine = Step.encoding.make(clock)
    let bad = MilvexError.invalidArgument(field: "rows[0].vec", message: "has 3 values, not 2")
    XCTAssertEqual(machine.encodeFailed(bad), [.fail(bad)])
  }

  // MARK: - Deadline

  /// The deadline is checked before each step, with words saying which.
  func testTheDeadlinePassingAtEachStep() {
    let clock = ElapsedClock()
    let late = clock.start + timeout

    var machine = makeMachine(clock)
    var status = failure(machine.start(now: late))
    XCTAssertEqual(status?.code, .deadlineExceeded)
    XCTAssertEqual(status?.message, "the Search call's deadline passed before it could be sent")

    machine = Step.waitingToRetry.make(clock)
    status = failure(machine.retryTimerFired(now: late))
    XCTAssertEqual(status?.message, "the Search call's deadline passed before it could be sent")

    machine = Step.lookingUpSchema.make(clock)
    status = failure(machine.schemaLookedUp(nil, now: late))
    XCTAssertEqual(status?.code, .deadlineExceeded)
    XCTAssertEqual(status?.message, "the Search call's deadline passed while reading the schema")

    machine = Step.waitingForChannel.make(clock)
    status = failure(machine.channelReady(now: late))
    XCTAssertEqual(status?.code, .deadlineExceeded)
    XCTAssertEqual(status?.message, "the Search call's deadline passed")

    // The operation running when the deadline passes fails on its own timeout; a retriable
    // failure at the deadline is not retried either.
    machine = Step.fetchingSchema.make(clock)
    let expired = MilvexError.status(.deadlineExceeded, "DescribeCollection timed out")
    XCTAssertEqual(machine.schemaFetchFailed(expired, now: late), [.fail(expired)])
    machine = Step.inFlight.make(clock)
    XCTAssertEqual(machine.answered(.failure(unavailable), now: late), [.fail(unavailable)])

    machine = Step.inFlight.make(clock)
    let actions = machine.answered(.schemaMismatch(mismatch), now: late)
    XCTAssertEqual(actions.first, .forgetSchema)
    XCTAssertEqual(
      failure(actions)?.message, "the Search call's deadline passed while reading the schema")

    // A wait for the channel that ends at the deadline is not retried.
    machine = Step.waitingForChannel.make(clock)
    let down = MilvexError.notConnected(host: "db", port: 19530, lastFailure: "refused")
    status = failure(machine.channelFailed(down, now: late))
    XCTAssertEqual(status?.code, .unavailable)
  }

  /// A call that found no channel fails with `UNAVAILABLE` naming the server and the last
  /// connect error; the typed cause is kept.
  func testNotConnectedBecomesUnavailableWithTheLastError() {
    let error = Machine.callError(
      .notConnected(host: "db", port: 19530, lastFailure: "Connection refused"), method: "Search")
    guard case .grpcStatus(let status) = error else { return XCTFail("\(error)") }
    XCTAssertEqual(status.code, .unavailable)
    XCTAssertEqual(
      status.message,
      "the Search call found no connection to db:19530 within its deadline; last error: "
        + "Connection refused")
    XCTAssertEqual(
      status.cause, .notConnected(host: "db", port: 19530, lastFailure: "Connection refused"))
    XCTAssertEqual(Machine.callError(unavailable, method: "Search"), unavailable)
  }

  // MARK: - Cancellation and shutdown

  /// Cancelling ends the call with `CANCELLED` at every step, undoing what runs; after the
  /// call finished it does nothing.
  func testCancellationAtEachStep() {
    let clock = ElapsedClock()
    let cancelled = Action.fail(.status(.cancelled, "the Search call was cancelled by the client"))
    let expected: [Step: Machine.Actions] = [
      .idle: [cancelled], .lookingUpSchema: [cancelled], .fetchingSchema: [cancelled],
      .encoding: [cancelled], .waitingForChannel: [cancelled],
      .inFlight: [.cancelInFlight, cancelled], .waitingToRetry: [.cancelRetryTimer, cancelled],
      .finished: [],
    ]
    for step in Step.allCases {
      var machine = step.make(clock)
      XCTAssertEqual(machine.cancel(), expected[step], step.rawValue)
      XCTAssertTrue(machine.isFinished, step.rawValue)
      XCTAssertEqual(machine.cancel(), [], "\(step): cancelling twice")
    }
  }

  /// What was running when the call was cancelled ends on its own; its outcome does
  /// nothing: a schema read is not remembered, a channel that comes sends nothing, a late
  /// answer is not delivered.
  func testOutcomesAfterCancellationAreIgnored() {
    let clock = ElapsedClock()
    var machine = Step.fetchingSchema.make(clock)
    _ = machine.cancel()
    XCTAssertEqual(machine.schemaFetched(schemaV1), [])

    machine = Step.waitingForChannel.make(clock)
    _ = machine.cancel()
    XCTAssertEqual(machine.channelReady(now: clock.now), [])

    machine = Step.inFlight.make(clock)
    _ = machine.cancel()
    XCTAssertFalse(machine.awaitsAnswer, "a late response is not decoded")
    XCTAssertEqual(machine.answered(.success, now: clock.now), [])

    machine = Step.waitingToRetry.make(clock)
    _ = machine.cancel()
    XCTAssertEqual(machine.retryTimerFired(now: clock.now), [])
  }

  /// A loop shutting down ends a call waiting to retry (its timer would never fire); at any
  /// other step the operation running reports the shutdown itself, as its failure.
  func testLoopShutdownAtEachStep() {
    let clock = ElapsedClock()
    for step in Step.allCases {
      var machine = step.make(clock)
      let actions = machine.loopShutDown()
      if step == .waitingToRetry {
        XCTAssertEqual(
          actions, [.cancelRetryTimer, .fail(.eventLoopShutDown(operation: "Search retry"))])
      } else {
        XCTAssertEqual(actions, [], step.rawValue)
      }
    }
    let shutDown = MilvexError.eventLoopShutDown(operation: "waitForChannel")
    var machine = Step.waitingForChannel.make(clock)
    _ = machine.loopShutDown()
    XCTAssertEqual(machine.channelFailed(shutDown, now: clock.now), [.fail(shutDown)])
    machine = Step.fetchingSchema.make(clock)
    _ = machine.loopShutDown()
    XCTAssertEqual(machine.schemaFetchFailed(shutDown, now: clock.now), [.fail(shutDown)])
    machine = Step.inFlight.make(clock)
    _ = machine.loopShutDown()
    XCTAssertEqual(machine.answered(.failure(shutDown), now: clock.now), [.fail(shutDown)])
  }

  // MARK: - Exactly once

  /// From every step, every sequence of three events ends the call at most once, and once
  /// it has ended no event asks for anything.
  func testEverySequenceOfEventsCompletesAtMostOnce() {
    let clock = ElapsedClock()
    for step in Step.allCases {
      for first in Event.allCases {
        for second in Event.allCases {
          for third in Event.allCases {
            var machine = step.make(clock)
            var terminals = step == .finished ? 1 : 0
            for event in [first, second, third] {
              let actions = event.apply(to: &machine, now: clock.now)
              if terminals > 0 {
                XCTAssertEqual(actions, [], "\(step) \(first) \(second) \(third)")
              }
              terminals += actions.filter(isTerminal).count
              if let index = actions.firstIndex(where: isTerminal) {
                XCTAssertEqual(index, actions.count - 1, "the terminal action comes last")
              }
            }
            XCTAssertLessThanOrEqual(terminals, 1, "\(step) \(first) \(second) \(third)")
            XCTAssertEqual(
              machine.isFinished, terminals == 1, "\(step) \(first) \(second) \(third)")
          }
        }
      }
    }
  }

  /// An event that does not belong to the current step changes nothing.
  func testEventsOutOfTurnAreIgnored() {
    let clock = ElapsedClock()
    var machine = Step.fetchingSchema.make(clock)
    XCTAssertEqual(machine.channelReady(now: clock.now), [])
    XCTAssertEqual(machine.encoded(request), [])
    XCTAssertEqual(machine.answered(.success, now: clock.now), [])
    XCTAssertEqual(machine.retryTimerFired(now: clock.now), [])
    XCTAssertEqual(
      machine.schemaFetched(schemaV1), [.rememberSchema(schemaV1), .encode])
    XCTAssertEqual(machine.schema, schemaV1)
  }
}
