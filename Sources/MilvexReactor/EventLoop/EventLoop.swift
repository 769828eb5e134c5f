import CLibEV
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A single-threaded libev event loop that owns every socket, timer and watcher of the
/// connections running on it.
///
/// Only the **loop thread** touches loop state. Any other thread hands work to it with
/// ``execute(_:)``: closures go into a locked queue, one `ev_async` wakes the loop, and the
/// loop runs the whole queue in one batch per wake-up.
///
/// The loop runs in one of three ways (``Mode``):
/// - on a dedicated thread that the library starts and names (``init(threadName:)``);
/// - host-driven: the library owns the `ev_loop`, the host calls ``run()`` or
///   ``runOnce(blocking:)`` on its own thread (``hostDriven()``);
/// - embedded in a host's `struct ev_loop *` that the host runs (``init(embeddingIn:)``).
///
/// The layers above cannot tell these apart. Everything except ``execute(_:)``,
/// ``shutdown()``, ``submit(_:)``, ``inLoopThread`` and ``now`` is loop-thread-only.
///
/// A dedicated-thread loop made by MilvexTesting's `EventLoop.virtualTime(threadName:)` runs
/// on virtual time: real I/O, and timers that follow a manual clock the test moves (``now``,
/// Docs/testing.md).
public final class EventLoop: @unchecked Sendable {
  // @unchecked Sendable: the only state touched from other threads is `queue` (a Mutex) and
  // the `let`s; `loopThread` is written before any other thread can see `self` (see init);
  // every other stored property is confined to the loop thread, which the loop-only methods
  // check with `assertInLoopThread()`.

  /// How the loop is driven.
  public enum Mode: Sendable, Equatable {
    /// The library runs the loop on its own thread.
    case dedicatedThread(name: String)
    /// The library owns the `ev_loop`; the host calls ``EventLoop/run()`` or
    /// ``EventLoop/runOnce(blocking:)`` on the thread that created the loop.
    case hostDriven
    /// The host owns and runs the `ev_loop`; the library only adds watchers to it.
    case embedded
  }

  /// A closure handed to the loop from any thread.
  public typealias Work = @Sendable () -> Void

  private struct QueueState {
    var pending: [Work] = []
    /// True while an `ev_async_send` is outstanding that the loop has not drained yet, so
    /// that a burst of submissions costs one wake-up.
    var wakeRequested = false
    var accepting = true
    /// Set (under the lock) once the wake-up watcher is stopped: from then on nobody may
    /// call `ev_async_send`, because the loop may be destroyed at any moment.
    var wakeWatcherStopped = false
    /// Dedicated mode: whether some thread has claimed the `pthread_join` of the loop thread.
    var joinClaimed = false
  }

  /// How this loop is driven; fixed when the loop is created. Readable from any thread.
  public let mode: Mode

  /// The libev loop (`struct ev_loop *`). Loop-thread-only, like every libev call on it.
  let rawLoop: OpaquePointer
  /// The manual clock of a loop with virtual time (MilvexTesting); nil on real time.
  package let virtualClock: VirtualClock?
  private let queue = LockedState(QueueState())
  private let wakeWatcher: UnsafeMutablePointer<ev_async>
  /// Opened when the loop has shut down (dedicated mode: when the thread left `ev_run`).
  private let terminated = Latch()
  /// Dedicated mode: opened once the loop thread has been joined.
  private let joined = Latch()
  private var loopThread: pthread_t

  // Loop-confined state.
  private var spareBatch: [Work] = []
  // The loop thread's own bookkeeping, touched per call: `@exclusivity(unchecked)` saves the
  // dynamic checks; no access to these overlaps another (the work lists are swapped out before
  // they run).
  @exclusivity(unchecked) private var activeWatchers: [ObjectIdentifier: any LoopWatcher] = [:]
  private var shutdownPerformed = false
  private var shutdownHandlers: [ObjectIdentifier: () -> Void] = [:]
  private let beforePollWatcher: UnsafeMutablePointer<ev_prepare>
  @exclusivity(unchecked) private var beforePollWork: [any BeforePollTask] = []
  @exclusivity(unchecked) private var beforePollSpare: [any BeforePollTask] = []
  private var loopDestroyed = false
  /// See ``sharedReadBuffer``; allocated on first use.
  private var readBufferStorage: UnsafeMutableRawBufferPointer?

  private init(
    mode: Mode, rawLoop: OpaquePointer, loopThread: pthread_t, virtualTime: Bool = false
  ) {
    self.mode = mode
    self.rawLoop = rawLoop
    self.virtualClock = virtualTime ? VirtualClock(rawLoop: rawLoop) : nil
    self.loopThread = loopThread
    self.wakeWatcher = UnsafeMutablePointer<ev_async>.allocate(capacity: 1)
    self.beforePollWatcher = UnsafeMutablePointer<ev_prepare>.allocate(capacity: 1)
    clibev_async_init(wakeWatcher) { _, watcher, _ in
      guard let data = watcher?.pointee.data else { return }
      Unmanaged<EventLoop>.fromOpaque(data).takeUnretainedValue().wakeUp()
    }
    wakeWatcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    ev_async_start(rawLoop, wakeWatcher)
    clibev_prepare_init(beforePollWatcher) { _, watcher, _ in
      guard let data = watcher?.pointee.data else { return }
      Unmanaged<EventLoop>.fromOpaque(data).takeUnretainedValue().runBeforePollWork()
    }
    beforePollWatcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    virtualClock?.attach(to: self)
    if mode == .embedded {
      // An idle wake-up watcher must not keep the host's loop from returning.
      ev_unref(rawLoop)
    }
  }

  /// Starts a loop on a new thread named `threadName` (truncated to 15 bytes, the Linux limit).
  ///
  /// - Important: Callable from any thread. The loop thread runs until ``shutdown()``.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` if libev cannot create a loop
  ///   or the thread cannot be started.
  public convenience init(threadName: String = "milvex-loop") throws(MilvexError) {
    try self.init(threadName: threadName, virtualTime: false)
  }

  /// Starts a loop on a new thread, on real time or, with `virtualTime`, with timers that
  /// follow a manual clock (MilvexTesting's `EventLoop.virtualTime(threadName:)`).
  ///
  /// - Important: Callable from any thread. The loop thread runs until ``shutdown()``.
  package convenience init(threadName: String, virtualTime: Bool) throws(MilvexError) {
    guard let raw = ev_loop_new(UInt32(EVFLAG_AUTO)) else {
      throw .invalidArgument(field: "EventLoop", message: "libev could not create a loop")
    }
    self.init(
      mode: .dedicatedThread(name: threadName), rawLoop: raw, loopThread: pthread_self(),
      virtualTime: virtualTime)
    let started = Latch()
    let context = ThreadContext(loop: self, started: started, name: threadName)
    var thread = pthread_t()
    let rc = pthread_create(
      &thread, nil,
      { raw in
        let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
        context.started.wait()
        context.loop.runDedicatedThread(name: context.name)
        return nil
      }, Unmanaged.passRetained(context).toOpaque())
    guard rc == 0 else {
      ev_async_stop(raw, wakeWatcher)
      ev_loop_destroy(raw)
      loopDestroyed = true
      shutdownPerformed = true
      queue.withLock {
        $0.accepting = false
        $0.wakeWatcherStopped = true
        $0.joinClaimed = true  // there is no thread to join or detach
      }
      terminated.open()
      throw .invalidArgument(
        field: "EventLoop", message: "could not start the loop thread (errno \(rc))")
    }
    // Written before the thread may run (it waits on `started`) and before `self` is
    // returned to the caller, so every later reader sees it.
    loopThread = thread
    started.open()
  }

  /// Creates a loop that the host drives by calling ``run()`` or ``runOnce(blocking:)``.
  ///
  /// - Important: The calling thread becomes the loop thread: call `run`/`runOnce` and every
  ///   loop-only method from it.
  public static func hostDriven() throws(MilvexError) -> EventLoop {
    guard let raw = ev_loop_new(UInt32(EVFLAG_AUTO)) else {
      throw .invalidArgument(field: "EventLoop", message: "libev could not create a loop")
    }
    return EventLoop(mode: .hostDriven, rawLoop: raw, loopThread: pthread_self())
  }

  /// Attaches to a libev loop that the host owns and runs.
  ///
  /// The library adds its watchers to `hostLoop` and never runs, breaks or destroys it. The
  /// wake-up watcher is unreferenced (`ev_unref`), so it alone does not keep `ev_run` going.
  ///
  /// - Parameter hostLoop: the host's `struct ev_loop *`.
  /// - Important: Call on the thread that runs `hostLoop`; it becomes the loop thread.
  public convenience init(embeddingIn hostLoop: OpaquePointer) {
    self.init(mode: .embedded, rawLoop: hostLoop, loopThread: pthread_self())
  }

  deinit {
    // `shutdown()` normally ran; if the host dropped the loop without it, stop our watcher
    // so libev never calls into freed memory.
    if !shutdownPerformed && !loopDestroyed {
      if mode == .embedded { ev_ref(rawLoop) }
      ev_async_stop(rawLoop, wakeWatcher)
    }
    if !loopDestroyed && mode != .embedded {
      ev_loop_destroy(rawLoop)
    }
    wakeWatcher.deallocate()
    beforePollWatcher.deallocate()
    readBufferStorage?.deallocate()
    if case .dedicatedThread = mode, !queue.withLock({ $0.joinClaimed }) {
      // Shut down from its own thread and never joined: let the system reclaim the thread.
      pthread_detach(loopThread)
    }
  }

  // MARK: - Time

  /// The loop's clock: what every timer and deadline of this loop is measured against.
  /// `ContinuousClock.now` on a loop on real time; the manual instant of a loop with virtual
  /// time (MilvexTesting), which moves only when a test advances it.
  ///
  /// Compute the deadlines handed to the loop-thread forms from it
  /// (``Connection/LoopView/waitForChannel(deadline:_:)``), so that they mean the same on both.
  ///
  /// - Important: Callable from any thread.
  public var now: ContinuousClock.Instant {
    if let virtualClock { return virtualClock.now }
    return .now
  }

  // MARK: - Thread identity

  /// Whether the calling thread is the loop thread. A fast path only, never a guard.
  ///
  /// - Important: Callable from any thread.
  public var inLoopThread: Bool {
    pthread_equal(pthread_self(), loopThread) != 0
  }

  /// Traps in debug builds when called off the loop thread; free in release builds.
  func assertInLoopThread(file: StaticString = #fileID, line: UInt = #line) {
    assert(inLoopThread, "must be called on the event loop thread", file: file, line: line)
  }

  /// Traps when called off the loop thread, in every build.
  func preconditionInLoopThread(file: StaticString = #fileID, line: UInt = #line) {
    precondition(inLoopThread, "must be called on the event loop thread", file: file, line: line)
  }

  // MARK: - Submission queue

  /// Hands `work` to the loop thread, which runs it exactly once in a later batch.
  ///
  /// Closures submitted from one thread run in submission order. A closure submitted from
  /// the loop thread itself is queued too: it runs in a later batch, never re-entrantly.
  /// Work accepted before ``shutdown()`` still runs during the shutdown.
  ///
  /// - Important: Callable from any thread; `work` runs on the loop thread.
  /// - Throws: ``MilvexError/eventLoopShutDown(operation:)`` once shutdown has begun; the
  ///   work is then not retained and never runs.
  public func execute(_ work: @escaping Work) throws(MilvexError) {
    let accepted = queue.withLock { state -> Bool in
      guard state.accepting else { return false }
      state.pending.append(work)
      if !state.wakeRequested {
        state.wakeRequested = true
        // Sent with the lock held: the loop cannot be destroyed between the check and the
        // send. This happens once per batch, not once per closure.
        ev_async_send(rawLoop, wakeWatcher)
      }
      return true
    }
    if !accepted { throw .eventLoopShutDown(operation: "execute") }
  }

  /// Runs `body` on the loop thread and returns its result.
  ///
  /// - Important: Callable from any task or thread except the loop thread itself in
  ///   host-driven mode while the host is blocked awaiting this. `body` runs on the loop thread.
  /// - Throws: ``MilvexError/eventLoopShutDown(operation:)`` if the loop no longer accepts
  ///   work.
  public func submit<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws(MilvexError)
    -> T
  {
    let result = await withCheckedContinuation {
      (continuation: CheckedContinuation<Result<T, MilvexError>, Never>) in
      do throws(MilvexError) {
        try execute { continuation.resume(returning: .success(body())) }
      } catch {
        continuation.resume(returning: .failure(error))
      }
    }
    return try result.get()
  }

  /// Called by the wake-up watcher on the loop thread: run everything queued, in one batch.
  private func wakeUp() {
    drainQueue()
    if !shutdownPerformed && !queue.withLock({ $0.accepting }) {
      performShutdown()
    }
  }

  func drainQueue() {
    var batch = spareBatch
    spareBatch = []
    queue.withLock { state in
      swap(&state.pending, &batch)
      state.wakeRequested = false
    }
    for index in batch.indices {
      batch[index]()
    }
    // Keep the buffer for the next batch unless a burst made it large.
    if batch.capacity <= 65_536 {
      batch.removeAll(keepingCapacity: true)
      spareBatch = batch
    }
  }

  // MARK: - Before the loop blocks

  /// Runs `body` once, on the loop thread, just before the loop next waits for events
  /// (an `ev_prepare` watcher), after everything ready in this iteration was handled.
  ///
  /// Protocol layers use it to coalesce output: many calls started in one iteration are
  /// written with one system call.
  ///
  /// - Important: Loop thread only; `body` runs on the loop thread. Dropped at shutdown.
  func runBeforeNextPoll(_ body: @escaping () -> Void) {
    runBeforeNextPoll(ClosureBeforePollTask(body))
  }

  /// ``runBeforeNextPoll(_:)`` for an object that does the work: registering it allocates
  /// nothing (a connection's per-call flush, issue 11). `task` is retained until it ran.
  ///
  /// - Important: Loop thread only; the task runs on the loop thread. Dropped at shutdown.
  func runBeforeNextPoll(_ task: any BeforePollTask) {
    assertInLoopThread()
    guard !shutdownPerformed else { return }
    if beforePollWork.isEmpty { ev_prepare_start(rawLoop, beforePollWatcher) }
    beforePollWork.append(task)
  }

  /// Runs the before-poll tasks, and those they register in turn (a resolver's answer that
  /// starts a connect that answers from the queue): libev calls a prepare watcher started
  /// during its own prepare phase only after the next poll, which may block for seconds.
  /// A chain longer than ``beforePollRounds`` is cut: the rest runs in the next iteration,
  /// which the wake-up watcher makes come at once.
  func runBeforePollWork() {
    var batch = beforePollSpare
    for _ in 0..<Self.beforePollRounds where !beforePollWork.isEmpty {
      swap(&batch, &beforePollWork)
      for task in batch { task.runBeforePoll() }
      batch.removeAll(keepingCapacity: true)
    }
    beforePollSpare = batch
    if beforePollWork.isEmpty {
      ev_prepare_stop(rawLoop, beforePollWatcher)
    } else {
      ev_async_send(rawLoop, wakeWatcher)
    }
  }

  /// How many rounds of before-poll tasks registering more run before the loop polls.
  static let beforePollRounds = 64

  // MARK: - Shutdown handlers

  /// Registers `handler` to run on the loop thread when the loop shuts down, after the
  /// queued work ran and before watchers are stopped: owners of connections use it to fail
  /// their calls instead of leaving them without a completion. One handler per `owner`.
  ///
  /// - Important: Loop thread only.
  func onShutdown(of owner: AnyObject, _ handler: @escaping () -> Void) {
    assertInLoopThread()
    shutdownHandlers[ObjectIdentifier(owner)] = handler
  }

  /// Removes the handler registered for `owner`. Loop thread only.
  func removeShutdownHandler(of owner: AnyObject) {
    assertInLoopThread()
    shutdownHandlers[ObjectIdentifier(owner)] = nil
  }

  // MARK: - Watcher registry

  /// Keeps an active watcher alive while libev holds a pointer to it.
  func register(_ watcher: any LoopWatcher) {
    activeWatchers[ObjectIdentifier(watcher)] = watcher
  }

  /// Drops the loop's reference once libev no longer holds a pointer to the watcher.
  func unregister(_ watcher: any LoopWatcher) {
    activeWatchers[ObjectIdentifier(watcher)] = nil
  }

  /// The one 64 KiB buffer every byte stream of this loop reads into: reads happen one at a
  /// time on the loop thread and each is consumed before the next, so an idle connection needs
  /// no read buffer of its own. Loop thread only.
  var sharedReadBuffer: UnsafeMutableRawBufferPointer {
    if let readBufferStorage { return readBufferStorage }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    readBufferStorage = buffer
    return buffer
  }

  /// Whether closures wait in the submission queue or tasks before the next poll.
  /// Loop thread only.
  var hasQueuedWork: Bool {
    !beforePollWork.isEmpty || queue.withLock { !$0.pending.isEmpty }
  }

  /// Whether the loop accepts new watchers (false once shutdown has run). Loop thread only.
  var acceptsWatchers: Bool { !shutdownPerformed }

  /// Number of active timers and I/O watchers. Loop thread only; for tests and diagnostics.
  var activeWatcherCount: Int {
    assertInLoopThread()
    return activeWatchers.count
  }

  // MARK: - Running (host-driven mode)

  /// Runs the loop until ``shutdown()`` completes.
  ///
  /// - Important: Host-driven mode only, on the thread that created the loop.
  public func run() {
    precondition(mode == .hostDriven, "run() is for host-driven loops")
    preconditionInLoopThread()
    while !shutdownPerformed {
      ev_run(rawLoop, 0)
    }
  }

  /// Runs one loop iteration: handles what is ready, waiting for an event first if
  /// `blocking` is true. Returns whether the loop can still run (false after shutdown).
  ///
  /// - Important: Host-driven mode only, on the thread that created the loop.
  @discardableResult
  public func runOnce(blocking: Bool = false) -> Bool {
    precondition(mode == .hostDriven, "runOnce(blocking:) is for host-driven loops")
    preconditionInLoopThread()
    guard !shutdownPerformed else { return false }
    ev_run(rawLoop, Int32(blocking ? EVRUN_ONCE : EVRUN_NOWAIT))
    return !shutdownPerformed
  }

  private func runDedicatedThread(name: String) {
    var bytes = Array(name.utf8.prefix(15))
    bytes.append(0)
    bytes.withUnsafeBufferPointer { buffer in
      buffer.withMemoryRebound(to: CChar.self) {
        _ = setThreadName(pthread_self(), $0.baseAddress!)
      }
    }
    ev_run(rawLoop, 0)
    ev_loop_destroy(rawLoop)
    loopDestroyed = true
    terminated.open()
  }

  // MARK: - Shutdown

  /// Stops the loop: stops accepting work, runs the work already accepted, stops every timer
  /// (without firing it) and I/O watcher, and frees the loop's resources.
  ///
  /// In dedicated-thread mode this joins the loop thread: when it returns, nothing of this
  /// loop runs any more and the libev loop is destroyed. Safe to call more than once and from
  /// several threads; every call returns after the shutdown finished.
  ///
  /// - Important: Callable from any thread. Called on the loop thread it performs the shutdown
  ///   at once (dedicated mode: the thread then exits after the current callback) and does not
  ///   wait. Called from another thread in host-driven or embedded mode, it waits until the
  ///   host's loop thread next runs the loop.
  public func shutdown() {
    let onLoopThread = inLoopThread
    queue.withLock { state in
      state.accepting = false
      if !onLoopThread && !state.wakeWatcherStopped {
        ev_async_send(rawLoop, wakeWatcher)
      }
    }
    if onLoopThread {
      if !shutdownPerformed { performShutdown() }
      return
    }
    terminated.wait()
    guard case .dedicatedThread = mode else { return }
    // Exactly one caller joins the thread; the others wait until it has.
    let mustJoin = queue.withLock { state in
      defer { state.joinClaimed = true }
      return !state.joinClaimed
    }
    if mustJoin {
      pthread_join(loopThread, nil)
      joined.open()
    } else {
      joined.wait()
    }
  }

  /// Loop thread: runs the accepted work, stops every watcher and the wake-up watcher.
  private func performShutdown() {
    assertInLoopThread()
    shutdownPerformed = true
    drainQueue()
    while let (key, handler) = shutdownHandlers.first {
      shutdownHandlers[key] = nil
      handler()
    }
    shutdownHandlers = [:]  // frees the table's storage, not only its entries
    // Work run by the final drain may have started watchers; stop them all now.
    let watchers = activeWatchers.values
    activeWatchers.removeAll()
    for watcher in watchers {
      watcher.stopForShutdown()
    }
    virtualClock?.shutDown()
    ev_prepare_stop(rawLoop, beforePollWatcher)
    beforePollWork = []
    beforePollSpare = []
    // `pending` is empty since the final drain, but it may hold the spare buffer a burst grew;
    // it is released here, outside the lock.
    var spentBuffer: [Work] = []
    queue.withLock { state in
      state.wakeWatcherStopped = true
      swap(&state.pending, &spentBuffer)
    }
    if mode == .embedded { ev_ref(rawLoop) }
    ev_async_stop(rawLoop, wakeWatcher)
    spareBatch = []
    switch mode {
    case .dedicatedThread:
      ev_break(rawLoop, Int32(EVBREAK_ALL))  // the thread destroys the loop and opens `terminated`
    case .hostDriven:
      ev_break(rawLoop, Int32(EVBREAK_ALL))
      terminated.open()
    case .embedded:
      terminated.open()
    }
  }
}

/// What the loop needs from a timer or I/O watcher to stop it at shutdown.
protocol LoopWatcher: AnyObject {
  /// Stops the libev watcher and releases the callback. Loop thread only.
  func stopForShutdown()
}

private final class ThreadContext: @unchecked Sendable {
  // @unchecked Sendable: handed once to the new thread, immutable.
  let loop: EventLoop
  let started: Latch
  let name: String
  init(loop: EventLoop, started: Latch, name: String) {
    self.loop = loop
    self.started = started
    self.name = name
  }
}

/// Converts a `Duration` to libev's seconds, never negative.
func evSeconds(_ duration: Duration) -> Double {
  let (seconds, attoseconds) = duration.components
  return max(0, Double(seconds) + Double(attoseconds) * 1e-18)
}

/// glibc's `pthread_setname_np` is declared only under `_GNU_SOURCE`, which the Swift Glibc
/// module does not define; the symbol itself is always there (glibc 2.12+).
@_silgen_name("pthread_setname_np")
private func setThreadName(_ thread: pthread_t, _ name: UnsafePointer<CChar>) -> Int32

/// Work an object does once, just before the loop next polls (see
/// ``EventLoop/runBeforeNextPoll(_:)-(any BeforePollTask)``).
protocol BeforePollTask: AnyObject {
  /// Runs on the loop thread.
  func runBeforePoll()
}

/// A closure given to ``EventLoop/runBeforeNextPoll(_:)``.
private final class ClosureBeforePollTask: BeforePollTask {
  private let body: () -> Void
  init(_ body: @escaping () -> Void) { self.body = body }
  func runBeforePoll() { body() }
}
