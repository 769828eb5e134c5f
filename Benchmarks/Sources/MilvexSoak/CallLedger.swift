import Synchronization

/// One entry per call, indexed by the call's id: when it was issued, how often and when it
/// completed, and how. Every array is allocated and written once at the start, so the ledger
/// itself does not grow the resident memory the soak samples.
///
/// - Important: Any thread; one lock, held for a few array writes per call.
final class CallLedger: Sendable {
  /// How the call was made.
  enum Form: UInt8, CaseIterable {
    case callback = 0
    case async = 1
  }

  /// Times are nanoseconds since the soak's start; `-1` means not (yet).
  struct Entries {
    var issuedAt: [Int64]
    var completedAt: [Int64]  // the first completion
    var completions: [UInt8]  // saturates at 255
    var outcome: [UInt8]  // index into `labels`, of the first completion
    var form: [UInt8]
    var issued = 0
    var completed = 0  // calls completed at least once
    var refused = 0  // calls not made because the ledger was full
    var labels: [String] = []
    var labelIndex: [String: UInt8] = [:]
  }

  /// Time zero of the run: the end of this initializer.
  let start: ContinuousClock.Instant
  private let entries: Mutex<Entries>

  init(capacity: Int) {
    var issuedAt = [Int64](repeating: -1, count: capacity)
    var completedAt = [Int64](repeating: -1, count: capacity)
    var completions = [UInt8](repeating: 0, count: capacity)
    var outcome = [UInt8](repeating: 0, count: capacity)
    var form = [UInt8](repeating: 0, count: capacity)
    // Touch every page now rather than when the calls reach it.
    for index in 0..<capacity {
      issuedAt[index] = -1
      completedAt[index] = -1
      completions[index] = 0
      outcome[index] = 0xFF
      form[index] = 0xFF
    }
    entries = Mutex(
      Entries(
        issuedAt: issuedAt, completedAt: completedAt, completions: completions, outcome: outcome,
        form: form))
    start = .now
  }

  /// Nanoseconds from the soak's start to `instant`.
  func offset(of instant: ContinuousClock.Instant) -> Int64 {
    let (seconds, attoseconds) = (instant - start).components
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
  }

  /// Registers a call issued at `instant`; returns its id, or nil when the ledger is full.
  func issue(_ form: Form, at instant: ContinuousClock.Instant) -> Int? {
    let at = offset(of: instant)
    return entries.withLock { entries -> Int? in
      guard entries.issued < entries.issuedAt.count else {
        entries.refused += 1
        return nil
      }
      let id = entries.issued
      entries.issued += 1
      entries.issuedAt[id] = at
      entries.form[id] = form.rawValue
      return id
    }
  }

  /// Counts a completion of call `id`: the first one sets its time and outcome.
  func complete(_ id: Int, outcome label: String, at instant: ContinuousClock.Instant) {
    let at = offset(of: instant)
    entries.withLock { entries in
      let count = entries.completions[id]
      if count < UInt8.max { entries.completions[id] = count + 1 }
      guard count == 0 else { return }
      entries.completed += 1
      entries.completedAt[id] = at
      if let index = entries.labelIndex[label] {
        entries.outcome[id] = index
      } else {
        // Labels are a stage and a status code: a handful, far below the 255 that fit.
        precondition(entries.labels.count < 255, "more than 255 distinct call outcomes")
        let index = UInt8(entries.labels.count)
        entries.labels.append(label)
        entries.labelIndex[label] = index
        entries.outcome[id] = index
      }
    }
  }

  /// Calls issued and not completed yet.
  var outstanding: Int { entries.withLock { $0.issued - $0.completed } }

  /// A copy of everything recorded so far.
  func snapshot() -> Entries { entries.withLock { $0 } }
}
