import HeapModule

/// The deadlines of one connection's calls, served by one timer (issue 11: a `LoopTimer` per
/// call cost an allocation, a libev timer, a closure and two weak references per call).
///
/// A min-heap by deadline. A call that completes before its deadline stays in the heap until
/// it surfaces or the heap is compacted; ``callCompleted()`` counts it out so that compaction
/// keeps the heap within twice the calls still waiting (plus a small constant), and completed
/// calls are not kept alive for the length of their timeouts.
///
/// - Important: Loop-confined (a value the connection owns). Pure: no clock, no timer.
struct CallDeadlines {
  /// Deadlines are kept as offsets from `base`: `ContinuousClock.Instant` is a resilient type,
  /// so a heap of them copies and compares through value witnesses (about 3,000 instructions
  /// per call at 16 calls in flight), while `Duration` is frozen and plain to move.
  private struct Entry: Comparable {
    let deadline: Duration
    /// Arrival order: equal deadlines expire in the order the calls started.
    let sequence: UInt64
    let call: UnaryCall

    static func < (lhs: Entry, rhs: Entry) -> Bool {
      (lhs.deadline, lhs.sequence) < (rhs.deadline, rhs.sequence)
    }

    static func == (lhs: Entry, rhs: Entry) -> Bool {
      lhs.deadline == rhs.deadline && lhs.sequence == rhs.sequence
    }
  }

  private var heap = Heap<Entry>()
  /// The instant offsets count from: the first deadline added.
  private var base: ContinuousClock.Instant?
  private var nextSequence: UInt64 = 0
  /// Entries whose call has not completed.
  private(set) var pendingCount = 0
  /// When the owner's timer is due (an offset from `base`), as last decided by
  /// ``timerChange(timerScheduled:)``.
  private var timerDue: Duration?

  /// What the owner does with its one deadline timer.
  enum TimerChange: Equatable {
    /// It is due no later than the earliest deadline: leave it (re-arming a timer costs about
    /// 1,000 instructions; one due early finds nothing and asks again).
    case keep
    /// No call is waiting: stop it.
    case stop
    /// Arm it for this instant.
    case arm(ContinuousClock.Instant)
  }

  /// Keeps the owner's timer due no later than the earliest deadline of a waiting call. Call it
  /// after adding calls whose deadline changed ``earliest``, and after the timer fired.
  mutating func timerChange(timerScheduled: Bool) -> TimerChange {
    guard let base, let first = heap.min else {
      timerDue = nil
      return .stop
    }
    if let timerDue, timerDue <= first.deadline, timerScheduled { return .keep }
    timerDue = first.deadline
    return .arm(base + first.deadline)
  }

  /// The earliest deadline of a call not yet completed, if any.
  var earliest: ContinuousClock.Instant? {
    guard let base, let first = heap.min else { return nil }
    return base + first.deadline
  }

  /// Number of entries, completed ones included (for tests).
  var storedCount: Int { heap.count }

  /// Adds `call`, which has a deadline and has not completed.
  ///
  /// - Returns: whether the earliest deadline changed (the owner re-arms its timer then).
  mutating func add(_ call: UnaryCall, deadline instant: ContinuousClock.Instant) -> Bool {
    let base = self.base ?? instant
    self.base = base
    let deadline = instant - base
    let before = heap.min?.deadline
    nextSequence += 1
    heap.insert(Entry(deadline: deadline, sequence: nextSequence, call: call))
    pendingCount += 1
    return before.map { deadline < $0 } ?? true
  }

  /// A call that was added completed (any way but by ``removeExpired(now:)``).
  mutating func callCompleted() {
    pendingCount = max(0, pendingCount - 1)
    dropCompletedOnTop()
    if heap.count > 64 && heap.count > 2 * pendingCount {
      heap = Heap(heap.unordered.filter { !$0.call.isCompleted })
    }
  }

  /// Removes and returns, earliest first, the calls not yet completed whose deadline is `now`
  /// or earlier. The owner fails each (and must not report them through ``callCompleted()``).
  mutating func removeExpired(now instant: ContinuousClock.Instant) -> [UnaryCall] {
    var expired: [UnaryCall] = []
    guard let base else { return expired }
    let now = instant - base
    while let first = heap.min, first.deadline <= now {
      heap.removeMin()
      if !first.call.isCompleted {
        expired.append(first.call)
        pendingCount = max(0, pendingCount - 1)
      }
    }
    dropCompletedOnTop()
    return expired
  }

  /// Forgets every call (the connection closed and completes them all itself).
  mutating func removeAll() {
    heap = Heap()
    pendingCount = 0
    timerDue = nil
  }

  /// Keeps ``earliest`` the deadline of a call that is still waiting.
  private mutating func dropCompletedOnTop() {
    while let first = heap.min, first.call.isCompleted { heap.removeMin() }
  }
}
