import Foundation
import XCTest

@testable import MilvexReactor

/// State that only the loop thread touches, read by the test thread after a happens-before
/// edge (a latch, or `shutdown()` returning).
/// @unchecked Sendable: tests use it from the loop thread only; TSan would report otherwise.
final class LoopConfined<Value>: @unchecked Sendable {
  var value: Value
  init(_ value: Value) { self.value = value }
}

/// Starts `count` threads running `body(index)` and waits for all of them.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
  let group = DispatchGroup()
  for index in 0..<count {
    group.enter()
    Thread.detachNewThread {
      body(index)
      group.leave()
    }
  }
  group.wait()
}

extension Latch {
  /// Waits up to `timeout` and fails the test if the latch did not open.
  func waitOrFail(
    _ what: String, timeout: Duration = .seconds(10), file: StaticString = #filePath,
    line: UInt = #line
  ) {
    if !wait(timeout: timeout) {
      XCTFail("timed out after \(timeout) waiting for \(what)", file: file, line: line)
    }
  }
}

/// Runs `body` on the loop thread and waits for it to finish.
func onLoop(_ loop: EventLoop, _ body: @escaping @Sendable () -> Void) throws {
  let done = Latch()
  try loop.execute {
    body()
    done.open()
  }
  done.waitOrFail("work on the loop thread")
}

/// A weak reference that a test can set on the loop thread and read after shutdown.
/// @unchecked Sendable: written on one thread, read after a happens-before edge.
final class WeakRef<Object: AnyObject>: @unchecked Sendable {
  weak var object: Object?
  init() {}
}

/// A value behind an `NSLock` (a pthread mutex), which ThreadSanitizer understands; tests use it
/// instead of `Synchronization.Mutex`, whose futex-based lock TSan cannot see.
final class Locked<Value>: @unchecked Sendable {
  // @unchecked Sendable: `value` is only touched inside `withLock`.
  private let lock = NSLock()
  private var value: Value

  init(_ value: Value) { self.value = value }

  func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
    lock.lock()
    defer { lock.unlock() }
    return try body(&value)
  }
}

/// Records events from any thread and lets a test wait for the first one that matches — an
/// event with a deadline, not a poll.
final class EventRecorder<Event: Sendable>: @unchecked Sendable {
  // @unchecked Sendable: every stored property is only touched with `lock` held.
  private final class Waiter {
    let matches: @Sendable (Event) -> Bool
    let latch = Latch()
    var found: Event?
    init(_ matches: @escaping @Sendable (Event) -> Bool) { self.matches = matches }
  }

  private let lock = NSLock()
  private var events: [Event] = []
  private var waiters: [Waiter] = []

  func record(_ event: Event) {
    lock.lock()
    events.append(event)
    let ready = waiters.filter { $0.found == nil && $0.matches(event) }
    for waiter in ready { waiter.found = event }
    waiters.removeAll { $0.found != nil }
    lock.unlock()
    for waiter in ready { waiter.latch.open() }
  }

  var all: [Event] { lock.withLock { events } }

  /// The first recorded event matching `matches`, waiting up to `timeout` for it.
  func first(within timeout: Duration, where matches: @escaping @Sendable (Event) -> Bool) async
    -> Event?
  {
    let (event, waiter) = register(matches)
    if let event { return event }
    let latch = waiter!.latch
    // Block a thread of our own, not one of the cooperative pool.
    let opened = await Task.detached { latch.wait(timeout: timeout) }.value
    return withdraw(waiter!, opened: opened)
  }

  private func register(_ matches: @escaping @Sendable (Event) -> Bool) -> (Event?, Waiter?) {
    lock.withLock {
      if let event = events.first(where: matches) { return (event, nil) }
      let waiter = Waiter(matches)
      waiters.append(waiter)
      return (nil, waiter)
    }
  }

  private func withdraw(_ waiter: Waiter, opened: Bool) -> Event? {
    lock.withLock {
      waiters.removeAll { $0 === waiter }
      return opened ? waiter.found : nil
    }
  }
}
