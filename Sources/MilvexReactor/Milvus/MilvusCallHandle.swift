/// Cancels a call made with ``MilvusClient/perform(_:options:completion:)``.
public struct MilvusCallHandle: Sendable {
  let cancellation: CallCancellation

  /// Ends the call with `CANCELLED` (unless it has completed): the attempt in flight is reset,
  /// a pending retry dropped. Idempotent.
  ///
  /// - Important: Callable from any thread.
  public func cancel() {
    cancellation.cancel()
  }
}

/// Cancels a perform from any thread: from a task's cancellation handler or a handle.
@usableFromInline
final class CallCancellation: Sendable {
  struct State {
    var requested = false
    var cancel: (() -> Void)?
  }

  let loop: EventLoop
  let state: LoopBound<State>

  @usableFromInline
  init(loop: EventLoop) {
    self.loop = loop
    state = LoopBound(State(), loop: loop)
  }

  /// Cancels at once on the loop thread, soon after (through the queue) from another thread.
  @usableFromInline
  func cancel() {
    if loop.inLoopThread { return Self.cancel(state) }
    try? loop.execute { [state] in Self.cancel(state) }
  }

  private static func cancel(_ state: LoopBound<State>) {
    state.value.requested = true
    state.value.cancel?()
    state.value.cancel = nil
  }
}
