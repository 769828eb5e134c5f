#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A one-way gate: threads block in ``wait()`` until some thread calls ``open()``.
/// For threads outside the loop only (tests, examples, a blocking shutdown): never wait on
/// the loop thread.
///
/// Used where a thread must wait for another to reach a point (the loop thread starting,
/// the loop finishing its shutdown). Built on a pthread mutex and condition variable so that
/// ThreadSanitizer sees the happens-before edge from `open()` to every `wait()` return.
final class Latch: @unchecked Sendable {
  // @unchecked Sendable: `isOpen` is only touched with `mutex` held.
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private var isOpen = false

  init() {
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(condition, nil)
  }

  deinit {
    pthread_cond_destroy(condition)
    pthread_mutex_destroy(mutex)
    condition.deallocate()
    mutex.deallocate()
  }

  /// Opens the gate for every current and future waiter. Idempotent.
  ///
  /// - Important: Callable from any thread, the loop thread included.
  func open() {
    pthread_mutex_lock(mutex)
    isOpen = true
    pthread_cond_broadcast(condition)
    pthread_mutex_unlock(mutex)
  }

  /// Blocks the calling thread until ``open()`` has been called.
  ///
  /// - Important: Any thread but a loop thread: it blocks.
  func wait() {
    pthread_mutex_lock(mutex)
    while !isOpen { pthread_cond_wait(condition, mutex) }
    pthread_mutex_unlock(mutex)
  }

  /// Blocks until ``open()`` has been called or `timeout` has passed.
  ///
  /// - Important: Any thread but a loop thread: it blocks.
  /// - Returns: whether the latch is open.
  func wait(timeout: Duration) -> Bool {
    var deadline = timespec()
    clock_gettime(CLOCK_REALTIME, &deadline)
    // Saturating: a timeout of centuries waits "forever", it does not overflow `tv_sec`.
    let wait = max(0, timeout.saturatingNanoseconds)
    var nanoseconds = Int(deadline.tv_nsec) + Int(wait % 1_000_000_000)
    let (seconds, overflow) = deadline.tv_sec.addingReportingOverflow(
      Int(wait / 1_000_000_000) + nanoseconds / 1_000_000_000)
    deadline.tv_sec = overflow ? .max : seconds
    nanoseconds %= 1_000_000_000
    deadline.tv_nsec = nanoseconds
    pthread_mutex_lock(mutex)
    while !isOpen {
      if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
    }
    let result = isOpen
    pthread_mutex_unlock(mutex)
    return result
  }
}
