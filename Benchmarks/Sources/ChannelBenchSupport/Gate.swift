import Foundation

/// A one-way gate for the benchmarks' threads: ``wait()`` blocks until some thread calls
/// ``open()``; every waiter, earlier or later, then passes. Never wait on the loop thread.
public final class Gate: @unchecked Sendable {
  // @unchecked Sendable: `isOpen` is only touched with `condition` locked.
  private let condition = NSCondition()
  private var isOpen = false

  public init() {}

  /// Opens the gate for good and wakes every waiter.
  public func open() {
    condition.lock()
    isOpen = true
    condition.broadcast()
    condition.unlock()
  }

  /// Blocks until the gate is open.
  public func wait() {
    condition.lock()
    while !isOpen { condition.wait() }
    condition.unlock()
  }
}
