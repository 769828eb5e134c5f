import HeapModule

extension ConnectionStateMachine {
  /// The wait-for-ready callers of a (re)connecting phase, each with its deadline.
  ///
  /// A connection whose server is down may hold thousands of waiters (every call waits here
  /// within its deadline), so every operation a call or a deadline makes is O(log n): a
  /// min-heap by deadline answers "which is due next", a dictionary answers "is it still
  /// waiting". A withdrawn waiter leaves a stale heap entry behind, skipped when it surfaces.
  struct Waiters {
    private struct Entry: Comparable {
      var deadline: Instant
      /// Registration order, which also breaks ties between equal deadlines.
      var sequence: UInt64
      var id: WaiterID

      static func < (lhs: Entry, rhs: Entry) -> Bool {
        (lhs.deadline, lhs.sequence) < (rhs.deadline, rhs.sequence)
      }

      static func == (lhs: Entry, rhs: Entry) -> Bool {
        lhs.deadline == rhs.deadline && lhs.sequence == rhs.sequence
      }
    }

    /// The waiting ones, with their registration number.
    private var waiting: [WaiterID: UInt64] = [:]
    /// Every registration not yet popped, stale ones included.
    private var byDeadline = Heap<Entry>()
    private var nextSequence: UInt64 = 0

    /// In registration order (O(n log n): for resuming or failing them all).
    var ids: [WaiterID] { waiting.sorted { $0.value < $1.value }.map(\.key) }

    var count: Int { waiting.count }

    var earliestDeadline: Instant? { byDeadline.min?.deadline }

    /// - Precondition: `id` is not registered yet (the owner hands out unique ids).
    mutating func add(_ id: WaiterID, deadline: Instant) {
      assert(waiting[id] == nil, "waiter \(id.rawValue) registered twice")
      nextSequence += 1
      waiting[id] = nextSequence
      byDeadline.insert(Entry(deadline: deadline, sequence: nextSequence, id: id))
    }

    /// Returns whether `id` was registered.
    mutating func remove(_ id: WaiterID) -> Bool {
      guard waiting.removeValue(forKey: id) != nil else { return false }
      dropStaleEntries()
      // Withdrawn entries deep in the heap are skipped later; do not let them pile up.
      if byDeadline.count > 64 && byDeadline.count > 2 * waiting.count {
        let waiting = self.waiting
        byDeadline = Heap(byDeadline.unordered.filter { waiting[$0.id] == $0.sequence })
      }
      return true
    }

    /// Removes and returns, in registration order, the waiters whose deadline is `now` or
    /// earlier.
    mutating func removeExpired(now: Instant) -> [WaiterID] {
      var expired: [Entry] = []
      while let first = byDeadline.min, first.deadline <= now {
        byDeadline.removeMin()
        if waiting[first.id] == first.sequence {
          waiting[first.id] = nil
          expired.append(first)
        }
      }
      dropStaleEntries()
      return expired.sorted { $0.sequence < $1.sequence }.map(\.id)
    }

    /// Pops withdrawn entries off the top, so that ``earliestDeadline`` is a live one.
    private mutating func dropStaleEntries() {
      while let first = byDeadline.min, waiting[first.id] != first.sequence {
        byDeadline.removeMin()
      }
    }
  }
}
