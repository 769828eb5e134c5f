extension ConnectionStateMachine {
  /// The wait-for-ready callers of a (re)connecting phase, in registration order, each with
  /// its deadline.
  struct Waiters {
    private var entries: [(id: WaiterID, deadline: Instant)] = []

    /// In registration order.
    var ids: [WaiterID] { entries.map(\.id) }

    var earliestDeadline: Instant? { entries.map(\.deadline).min() }

    /// - Precondition: `id` is not registered yet (the owner hands out unique ids).
    mutating func add(_ id: WaiterID, deadline: Instant) {
      assert(!entries.contains { $0.id == id }, "waiter \(id.rawValue) registered twice")
      entries.append((id, deadline))
    }

    /// Returns whether `id` was registered.
    mutating func remove(_ id: WaiterID) -> Bool {
      guard let index = entries.firstIndex(where: { $0.id == id }) else { return false }
      entries.remove(at: index)
      return true
    }

    /// Removes and returns, in registration order, the waiters whose deadline is `now` or
    /// earlier.
    mutating func removeExpired(now: Instant) -> [WaiterID] {
      let expired = entries.filter { $0.deadline <= now }.map(\.id)
      entries.removeAll { $0.deadline <= now }
      return expired
    }
  }
}
