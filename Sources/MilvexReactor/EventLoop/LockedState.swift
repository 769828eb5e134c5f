#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A value guarded by a plain pthread mutex. The library uses it instead of
/// `Synchronization.Mutex` everywhere, for two reasons.
///
/// Speed: on Linux `Synchronization.Mutex` is
/// built on priority-inheritance futexes, which hand the lock from thread to thread through
/// the kernel under contention; with many producers on few cores that convoy costs tens of
/// microseconds per submission. A default pthread mutex lets a running thread take the lock
/// again without a context switch.
///
/// Checkability: ThreadSanitizer intercepts pthread locks but not raw futex system calls, so
/// it cannot see the ordering a `Synchronization.Mutex` provides and reports false races.
final class LockedState<State>: @unchecked Sendable {
  // @unchecked Sendable: `state` is only touched inside `withLock`, with `mutex` held.
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private var state: State

  init(_ state: State) {
    self.state = state
    pthread_mutex_init(mutex, nil)
  }

  deinit {
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
  }

  @inline(__always)
  func withLock<Result>(_ body: (inout State) throws -> Result) rethrows -> Result {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return try body(&state)
  }
}
