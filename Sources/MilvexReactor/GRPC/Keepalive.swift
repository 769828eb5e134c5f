/// Client keepalive (grpc `doc/keepalive.md`) as a pure state machine: after `time` without
/// reading anything, send a PING; if its ACK does not arrive within `timeout`, the connection
/// is dead. With `permitWithoutCalls` false, no PING is sent while no call is open.
///
/// ```
///   idle ──(time passed without reads, calls open or permitted)──▶ awaitingAck
///   awaitingAck ──PING ACK──▶ idle          awaitingAck ──timeout──▶ dead
/// ```
///
/// One timer drives it: the owner schedules a check after the returned delay, and reports
/// reads by updating ``readObserved(at:)`` (cheap: no timer is touched per read).
struct Keepalive {
  enum Action: Equatable {
    /// Check again after this delay.
    case checkAgain(after: Duration)
    /// Send a PING now, then check again after the delay (the ACK timeout).
    case sendPing(thenCheckAfter: Duration)
    /// No ACK within the timeout: the connection is dead.
    case connectionDead
  }

  let time: Duration
  let timeout: Duration
  let permitWithoutCalls: Bool
  private var lastRead: ContinuousClock.Instant
  private var pingSentAt: ContinuousClock.Instant?

  init(time: Duration, timeout: Duration, permitWithoutCalls: Bool, now: ContinuousClock.Instant) {
    self.time = time
    self.timeout = timeout
    self.permitWithoutCalls = permitWithoutCalls
    self.lastRead = now
  }

  /// The first check, right after the connection became ready.
  var firstCheckDelay: Duration { time }

  var isAwaitingAck: Bool { pingSentAt != nil }

  mutating func readObserved(at now: ContinuousClock.Instant) {
    lastRead = now
  }

  mutating func pingAcknowledged(at now: ContinuousClock.Instant) -> Action {
    pingSentAt = nil
    lastRead = now
    return .checkAgain(after: time)
  }

  mutating func timerFired(at now: ContinuousClock.Instant, openCalls: Int) -> Action {
    if let sentAt = pingSentAt {
      let waited = now - sentAt
      return waited >= timeout ? .connectionDead : .checkAgain(after: timeout - waited)
    }
    let quiet = now - lastRead
    guard quiet >= time else { return .checkAgain(after: time - quiet) }
    guard openCalls > 0 || permitWithoutCalls else { return .checkAgain(after: time) }
    pingSentAt = now
    return .sendPing(thenCheckAfter: timeout)
  }
}
