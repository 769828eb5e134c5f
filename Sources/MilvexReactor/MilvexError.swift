/// The one error type of MilvexReactor.
///
/// Every case says what failed in words a user can act on (``description``), and
/// ``isRetriable`` says whether trying the same thing again later can succeed.
/// Secrets (tokens, passwords) never appear in an error.
public enum MilvexError: Error, Sendable, Equatable, CustomStringConvertible {
  /// A caller passed a value that is not allowed. `field` names the argument or option.
  case invalidArgument(field: String, message: String)

  /// Work was submitted to an ``EventLoop`` that has shut down (or is shutting down).
  /// The work was not accepted and will never run.
  case eventLoopShutDown(operation: String)

  /// A method that must run on the loop thread was called from another thread, or a
  /// loop-thread-only method was used in a way the loop cannot honour (for example
  /// attaching the same watcher twice).
  case wrongThread(operation: String)

  public var isRetriable: Bool {
    switch self {
    case .invalidArgument, .eventLoopShutDown, .wrongThread:
      return false
    }
  }

  public var description: String {
    switch self {
    case .invalidArgument(let field, let message):
      return "invalid argument '\(field)': \(message)"
    case .eventLoopShutDown(let operation):
      return "\(operation) failed: the event loop has shut down and accepts no more work"
    case .wrongThread(let operation):
      return "\(operation) must be called on the event loop's thread"
    }
  }
}
