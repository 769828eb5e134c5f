import HeapModule

/// The schedule of a virtual-time loop's timers: which timer falls due next, in deadline order,
/// ties in the order they were scheduled. A pure value: it never reads a clock; the instants
/// it compares are handed in.
///
/// Rescheduling or cancelling a timer leaves its old entry in the heap, marked stale by the
/// sequence number `live` holds for the timer; stale entries are skipped when they surface and
/// swept out once they outnumber the live ones, so a timer rearmed on every call costs a heap
/// push, never a search.
package struct VirtualTimerQueue<ID: Hashable> {
  package typealias Instant = ContinuousClock.Instant

  private struct Entry: Comparable {
    let deadline: Instant
    /// Scheduling order: breaks deadline ties and tells a live entry from a stale one.
    let sequence: UInt64
    let id: ID

    static func < (lhs: Entry, rhs: Entry) -> Bool {
      (lhs.deadline, lhs.sequence) < (rhs.deadline, rhs.sequence)
    }
    static func == (lhs: Entry, rhs: Entry) -> Bool {
      lhs.deadline == rhs.deadline && lhs.sequence == rhs.sequence
    }
  }

  private var heap = Heap<Entry>()
  /// The sequence number of each scheduled timer's live entry.
  private var live: [ID: UInt64] = [:]
  /// The sequence number the next scheduled entry gets.
  private var nextSequence: UInt64 = 0

  package init() {}

  /// How many timers are scheduled.
  package var count: Int { live.count }

  /// Whether `id` is scheduled.
  package func isScheduled(_ id: ID) -> Bool { live[id] != nil }

  /// Schedules `id` at `deadline`, replacing its previous deadline if it had one.
  package mutating func schedule(_ id: ID, at deadline: Instant) {
    live[id] = nextSequence
    heap.insert(Entry(deadline: deadline, sequence: nextSequence, id: id))
    nextSequence &+= 1
    sweepIfMostlyStale()
  }

  /// Unschedules `id`; nothing happens if it was not scheduled.
  package mutating func cancel(_ id: ID) {
    live[id] = nil
    sweepIfMostlyStale()
  }

  /// The earliest deadline of a scheduled timer.
  package mutating func earliestDeadline() -> Instant? {
    dropStaleTop()
    return heap.min?.deadline
  }

  /// Removes and returns the timer that falls due first if its deadline is at or before
  /// `instant`.
  package mutating func popDue(atOrBefore instant: Instant) -> (id: ID, deadline: Instant)? {
    dropStaleTop()
    guard let top = heap.min, top.deadline <= instant else { return nil }
    heap.removeMin()
    live[top.id] = nil
    return (top.id, top.deadline)
  }

  /// The deadlines of every scheduled timer, earliest first (ties in scheduling order).
  package var deadlines: [Instant] {
    heap.unordered.filter { live[$0.id] == $0.sequence }.sorted().map(\.deadline)
  }

  /// Unschedules every timer.
  package mutating func removeAll() {
    heap = Heap()
    live = [:]
  }

  private mutating func dropStaleTop() {
    while let top = heap.min, live[top.id] != top.sequence {
      heap.removeMin()
    }
  }

  private mutating func sweepIfMostlyStale() {
    guard heap.count > 64, heap.count > 2 * live.count else { return }
    heap = Heap(heap.unordered.filter { live[$0.id] == $0.sequence })
  }
}
