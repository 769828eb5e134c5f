/// An `async` pause measured by a loop timer (the loop owns every timer), that ends early when
/// the task is cancelled or the loop shuts down.
final class LoopPause: Sendable {
  private struct State {
    var continuation: CheckedContinuation<Void, Never>?
    var timer: LoopTimer?
    /// Ended before it started (cancelled before the loop ran `start`).
    var ended = false
  }

  private let loop: EventLoop
  private let state: LoopBound<State>

  private init(loop: EventLoop) {
    self.loop = loop
    state = LoopBound(State(), loop: loop)
  }

  static func pause(for delay: Duration, on loop: EventLoop) async {
    let pause = LoopPause(loop: loop)
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        do {
          try loop.execute { pause.start(delay, continuation) }
        } catch {
          continuation.resume()
        }
      }
    } onCancel: {
      try? loop.execute { pause.end() }
    }
  }

  private func start(_ delay: Duration, _ continuation: CheckedContinuation<Void, Never>) {
    guard !state.value.ended else { return continuation.resume() }
    state.value.continuation = continuation
    loop.onShutdown(of: self) { [self] in end() }
    do {
      state.value.timer = try loop.scheduleTimer(after: delay) { [self] in end() }
    } catch {
      end()
    }
  }

  /// Resumes the waiting task once; later calls do nothing.
  private func end() {
    guard let continuation = state.value.continuation else {
      state.value.ended = true
      return
    }
    state.value.continuation = nil
    state.value.timer?.cancel()
    state.value.timer = nil
    loop.removeShutdownHandler(of: self)
    continuation.resume()
  }
}
