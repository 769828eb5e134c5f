import MilvexReactor

// Waits on a live connection for a test: until it is in a state, or until a transition a test
// describes happens, bounded by a deadline of wall time. Wall time on purpose: what a test
// waits for here is real I/O (a connect to a loopback server, a server's close), which runs in
// real time even on a virtual-time loop; move virtual time first, then wait.

extension Connection {
  /// Returns when the connection is in `state`: at once if it is already, else at the first
  /// transition to it.
  ///
  /// - Parameters:
  ///   - state: the state to wait for.
  ///   - timeout: how long to wait, in wall time.
  /// - Throws: `DEADLINE_EXCEEDED` naming the state, the current state and the last
  ///   transition when `timeout` passes first; `MilvexError/disconnected(reason:)` when the
  ///   connection ends (and `state` is not `ConnectivityState/disconnected`).
  /// - Important: Callable from any task.
  public func waitForState(_ state: ConnectivityState, timeout: Duration = .seconds(10))
    async throws(MilvexError)
  {
    // Subscribe before reading the state, so that a transition in between is not missed.
    let stream = transitions
    if self.state == state { return }
    _ = try await firstTransition(
      in: stream, awaiting: "state \(state)", timeout: timeout, where: { $0.to == state })
  }

  /// Returns the first transition from now on for which `matches` is true.
  ///
  /// ```swift
  /// let failed = try await connection.waitForTransition {
  ///   $0.from == .reconnecting && $0.to == .reconnecting
  /// }
  /// ```
  ///
  /// - Parameters:
  ///   - timeout: how long to wait, in wall time.
  ///   - matches: the test of a transition; runs on the waiting task.
  /// - Returns: the matching transition.
  /// - Throws: `DEADLINE_EXCEEDED` naming the current state and the last transition when
  ///   `timeout` passes first; `MilvexError/disconnected(reason:)` when the connection ends
  ///   with no transition matching.
  /// - Important: Callable from any task.
  public func waitForTransition(
    timeout: Duration = .seconds(10), where matches: @escaping @Sendable (StateTransition) -> Bool
  ) async throws(MilvexError) -> StateTransition {
    try await firstTransition(
      in: transitions, awaiting: "a matching transition", timeout: timeout, where: matches)
  }

  /// Starts watching for a transition now, for a test that then acts (moves virtual time,
  /// stops a server) and waits: a transition that happens between the action and the wait is
  /// not missed, as it could be by ``waitForTransition`` called after the action.
  ///
  /// ```swift
  /// let attempt = connection.expectTransition { $0.from == .reconnecting }
  /// try await loop.advanceTime(to: nextAttempt)
  /// let failed = try await attempt.wait()
  /// ```
  ///
  /// - Parameter matches: the test of a transition; runs on the waiting task.
  /// - Returns: a waiter; call its ``ConnectionTransitionWaiter/wait(timeout:)`` once.
  /// - Important: Callable from any thread.
  public func expectTransition(
    where matches: @escaping @Sendable (StateTransition) -> Bool
  ) -> ConnectionTransitionWaiter {
    ConnectionTransitionWaiter(connection: self, stream: transitions, matches: matches)
  }

  fileprivate func firstTransition(
    in stream: AsyncStream<StateTransition>, awaiting what: String, timeout: Duration,
    where matches: @escaping @Sendable (StateTransition) -> Bool
  ) async throws(MilvexError) -> StateTransition {
    let label = name.map { "connection '\($0)'" } ?? "the connection"
    let outcome = await withTaskGroup(of: TransitionWait.self) { group in
      group.addTask {
        var last: StateTransition?
        for await transition in stream {
          last = transition
          if matches(transition) { return .matched(transition) }
        }
        return .ended(last)
      }
      group.addTask {
        try? await Task.sleep(for: timeout)
        return .timedOut
      }
      let first = await group.next() ?? .timedOut
      group.cancelAll()
      return first
    }
    switch outcome {
    case .matched(let transition):
      return transition
    case .ended(let last):
      throw .disconnected(
        reason: "\(label) was disconnected while waiting for \(what)"
          + (last.map { " (last transition: \($0))" } ?? ""))
    case .timedOut:
      throw .status(
        .deadlineExceeded,
        "\(label) did not reach \(what) within \(timeout) of wall time; it is \(state)")
    }
  }
}

/// A transition a test expects, watched from the moment
/// `Connection.expectTransition(where:)` made it.
public struct ConnectionTransitionWaiter: Sendable {
  fileprivate let connection: Connection
  fileprivate let stream: AsyncStream<StateTransition>
  fileprivate let matches: @Sendable (StateTransition) -> Bool

  /// Returns the first matching transition since the waiter was made.
  ///
  /// - Parameter timeout: how long to wait, in wall time.
  /// - Returns: the matching transition.
  /// - Throws: `DEADLINE_EXCEEDED` naming the current state when `timeout` passes first;
  ///   `MilvexError.disconnected(reason:)` when the connection ends with no transition
  ///   matching.
  /// - Important: Callable from any task, once (a second call finds the stream finished).
  public func wait(timeout: Duration = .seconds(10)) async throws(MilvexError) -> StateTransition {
    try await connection.firstTransition(
      in: stream, awaiting: "the expected transition", timeout: timeout, where: matches)
  }
}

/// How a wait for a transition ended.
private enum TransitionWait: Sendable {
  case matched(StateTransition)
  case ended(StateTransition?)
  case timedOut
}
