/// The started calls of one connection by HTTP/2 stream id, without hashing (issue 11: the
/// dictionary it replaces cost about 750 instructions per call in `Hasher`).
///
/// A client's streams are the odd ids 1, 3, 5, … in the order it opens them, and only a few are
/// open at once, so `id / 2` modulo a power-of-two capacity is a slot no other open stream
/// holds, unless a long-lived stream is lapped by `capacity` newer ones; then the table doubles.
///
/// - Important: Loop-confined (a value the connection owns). Pure.
struct StreamTable {
  private var slots: [UnaryCall?]
  private var mask: Int
  /// Open streams.
  private(set) var count = 0

  init(capacity: Int = 16) {
    var size = 1
    while size < max(capacity, 1) { size <<= 1 }
    slots = Array(repeating: nil, count: size)
    mask = size - 1
  }

  var isEmpty: Bool { count == 0 }

  /// Slots, for tests (grows only when a slot is taken by another open stream).
  var capacity: Int { slots.count }

  private func slot(_ id: Int32) -> Int { Int(truncatingIfNeeded: id >> 1) & mask }

  /// The call on stream `id`, if it is open.
  subscript(id: Int32) -> UnaryCall? {
    guard id > 0, let call = slots[slot(id)], call.streamID == id else { return nil }
    return call
  }

  /// Records `call` as open on stream `id` (which `call.streamID` must already say).
  mutating func insert(_ call: UnaryCall, id: Int32) {
    precondition(call.streamID == id, "StreamTable: the call's streamID must be \(id)")
    while let other = slots[slot(id)], other !== call {
      grow()
    }
    if slots[slot(id)] == nil { count += 1 }
    slots[slot(id)] = call
  }

  /// Removes and returns the call open on stream `id`.
  @discardableResult
  mutating func remove(_ id: Int32) -> UnaryCall? {
    guard let call = self[id] else { return nil }
    slots[slot(id)] = nil
    count -= 1
    return call
  }

  /// The open calls, lowest stream id first.
  var calls: [UnaryCall] {
    slots.compactMap { $0 }.sorted { ($0.streamID ?? 0) < ($1.streamID ?? 0) }
  }

  mutating func removeAll() {
    slots = Array(repeating: nil, count: slots.count)
    count = 0
  }

  /// Doubles the slots until the open streams land in distinct ones.
  private mutating func grow() {
    let open = slots.compactMap { $0 }
    var size = slots.count * 2
    while true {
      var placed = [UnaryCall?](repeating: nil, count: size)
      var clash = false
      for call in open {
        let index = Int(truncatingIfNeeded: (call.streamID ?? 0) >> 1) & (size - 1)
        if placed[index] != nil { clash = true; break }
        placed[index] = call
      }
      if !clash {
        slots = placed
        mask = size - 1
        return
      }
      size *= 2
    }
  }
}
