import XCTest

@testable import MilvexReactor

private func address(_ text: String) -> SocketAddress {
  SocketAddress(ipLiteral: text, port: 19530)!
}

private let a = address("10.0.0.1")
private let b = address("10.0.0.2")
private let c = address("10.0.0.3")
private let v6 = address("fd00::1")

private func ms(_ value: Int) -> Duration { .milliseconds(value) }

/// Refresh every 30 s (failures: at most every 5 s); retries of a name that never resolved
/// after 100, 200, 400, 400 ms.
private func makeRefresh(refresh: Duration = .seconds(30)) -> AddressRefresh {
  AddressRefresh(refreshInterval: refresh, retryBase: ms(100), retryMax: ms(400), multiplier: 2)
}

/// Issue 16, item 1: the pure schedule of a host name expanded into one endpoint per address.
final class AddressRefreshTests: XCTestCase {
  func testTheNameIsResolvedAtTheStartThenEveryRefreshInterval() {
    var refresh = makeRefresh()
    XCTAssertEqual(refresh.start(now: .zero), .resolve)
    let first = refresh.resolved([a, b], now: ms(20))
    XCTAssertEqual(first, .init(added: [a, b], removed: [], next: .wakeUp(at: .seconds(30))))
    XCTAssertEqual(refresh.wokeUp(now: .seconds(10)), .wakeUp(at: .seconds(30)), "not yet due")
    XCTAssertEqual(refresh.wokeUp(now: .seconds(30)), .resolve)
    XCTAssertEqual(refresh.wokeUp(now: .seconds(30)), .none, "one resolution at a time")
    let same = refresh.resolved([a, b], now: .seconds(30) + ms(5))
    XCTAssertEqual(same, .init(added: [], removed: [], next: .wakeUp(at: .seconds(60))))
  }

  func testAResolutionAddsTheNewAddressesAndRemovesTheVanishedOnes() {
    var refresh = makeRefresh()
    _ = refresh.start(now: .zero)
    _ = refresh.resolved([a, b], now: .zero)
    _ = refresh.wokeUp(now: .seconds(30))
    let change = refresh.resolved([b, c, v6], now: .seconds(30))
    XCTAssertEqual(change.added, [c, v6])
    XCTAssertEqual(change.removed, [a])
    XCTAssertEqual(refresh.addresses, [b, c, v6])
  }

  func testAFailedEndpointBringsTheNextResolutionForwardAtMostOncePerSpacing() {
    var refresh = makeRefresh()
    _ = refresh.start(now: .zero)
    _ = refresh.resolved([a, b], now: ms(10))
    // 1 s after the resolution began: the earliest is 5 s after it.
    XCTAssertEqual(refresh.endpointFailed(now: .seconds(1)), .wakeUp(at: .seconds(5)))
    XCTAssertEqual(refresh.endpointFailed(now: .seconds(2)), .none, "already brought forward")
    XCTAssertEqual(refresh.wokeUp(now: .seconds(5)), .resolve)
    _ = refresh.resolved([a, b], now: .seconds(5))
    // Long after: at once.
    XCTAssertEqual(refresh.endpointFailed(now: .seconds(20)), .resolve)
  }

  func testAFailureDuringAResolutionAsksForTheNextOneAfterIt() {
    var refresh = makeRefresh()
    _ = refresh.start(now: .zero)
    _ = refresh.resolved([a], now: .zero)
    XCTAssertEqual(refresh.endpointFailed(now: .seconds(6)), .resolve)
    XCTAssertEqual(refresh.endpointFailed(now: .seconds(6) + ms(10)), .none, "resolving")
    let change = refresh.resolved([a], now: .seconds(6) + ms(20))
    XCTAssertEqual(change.next, .wakeUp(at: .seconds(11)), "the failure's, 5 s after the start")
  }

  func testAShortRefreshIntervalIsAlsoTheFailureSpacing() {
    var refresh = makeRefresh(refresh: ms(200))
    XCTAssertEqual(refresh.failureSpacing, ms(200))
    _ = refresh.start(now: .zero)
    _ = refresh.resolved([a], now: ms(5))
    XCTAssertEqual(refresh.endpointFailed(now: ms(50)), .none, "the refresh is due then anyway")
    XCTAssertEqual(refresh.wokeUp(now: ms(200)), .resolve)
  }

  func testAFailedResolutionKeepsTheAddresses() {
    var refresh = makeRefresh()
    _ = refresh.start(now: .zero)
    _ = refresh.resolved([a, b], now: .zero)
    _ = refresh.wokeUp(now: .seconds(30))
    XCTAssertEqual(refresh.resolutionFailed(now: .seconds(31)), .wakeUp(at: .seconds(60)))
    XCTAssertEqual(refresh.addresses, [a, b])
  }

  func testANameThatNeverResolvedIsRetriedWithTheBackoffDelays() {
    var refresh = makeRefresh()
    _ = refresh.start(now: .zero)
    XCTAssertEqual(refresh.resolutionFailed(now: ms(10)), .wakeUp(at: ms(110)))
    XCTAssertEqual(refresh.wokeUp(now: ms(110)), .resolve)
    XCTAssertEqual(refresh.resolutionFailed(now: ms(120)), .wakeUp(at: ms(320)))
    XCTAssertEqual(refresh.wokeUp(now: ms(320)), .resolve)
    XCTAssertEqual(refresh.resolutionFailed(now: ms(330)), .wakeUp(at: ms(730)))
    XCTAssertEqual(refresh.wokeUp(now: ms(730)), .resolve)
    XCTAssertEqual(refresh.resolutionFailed(now: ms(740)), .wakeUp(at: ms(1140)), "capped")
    XCTAssertEqual(refresh.wokeUp(now: ms(1140)), .resolve)
    let change = refresh.resolved([c], now: ms(1150))
    XCTAssertEqual(change.added, [c])
    XCTAssertEqual(change.next, .wakeUp(at: ms(1140) + .seconds(30)))
  }

  func testAfterTheFirstSuccessAFailedResolutionWaitsForTheRefresh() {
    var refresh = makeRefresh()
    _ = refresh.start(now: .zero)
    _ = refresh.resolutionFailed(now: .zero)
    _ = refresh.wokeUp(now: ms(100))
    _ = refresh.resolutionFailed(now: ms(100))
    _ = refresh.wokeUp(now: ms(300))
    // A failure never empties `addresses`, so the backoff only matters before the first
    // success; after one, the refresh interval rules.
    _ = refresh.resolved([a], now: ms(300))
    XCTAssertEqual(refresh.endpointFailed(now: .seconds(10)), .resolve)
    XCTAssertEqual(refresh.resolutionFailed(now: .seconds(10)), .wakeUp(at: .seconds(40)))
  }

  func testNoEventEverLeavesTheScheduleWithoutAWayForward() {
    // From every state reachable in three events, the schedule either resolves, is
    // resolving, or has a wake-up time: it never goes quiet for good.
    enum Event: CaseIterable { case resolved, failed, endpointFailed, wokeUp }
    func run(_ events: [Event]) {
      var refresh = makeRefresh(refresh: .seconds(1))
      var now = Duration.zero
      var resolving = refresh.start(now: now) == .resolve
      var armed: Duration?
      for event in events {
        now += ms(400)
        let action: AddressRefresh.Action
        switch event {
        case .resolved:
          guard resolving else { continue }
          action = refresh.resolved([a], now: now).next
          resolving = false
        case .failed:
          guard resolving else { continue }
          action = refresh.resolutionFailed(now: now)
          resolving = false
        case .endpointFailed:
          action = refresh.endpointFailed(now: now)
        case .wokeUp:
          guard let due = armed, now >= due else { continue }
          armed = nil
          action = refresh.wokeUp(now: now)
        }
        switch action {
        case .resolve: resolving = true
        case .wakeUp(let time): armed = time
        case .none: break
        }
        XCTAssertTrue(resolving || armed != nil, "stuck after \(events)")
      }
    }
    for first in Event.allCases {
      for second in Event.allCases {
        for third in Event.allCases { run([first, second, third]) }
      }
    }
  }
}

/// Issue 16, item 1: endpoints that come and go in the balancer.
final class EndpointBalancerMembershipTests: XCTestCase {
  func testEndpointsAreInsertedAndRemovedWithoutLosingTheTurn() {
    var balancer = EndpointBalancer(endpoints: 0, policy: .roundRobin)
    XCTAssertEqual(balancer.aggregate, .connecting, "no endpoint yet: connecting")
    XCTAssertNil(balancer.pick())
    balancer.insert(at: 0)
    balancer.insert(at: 1)
    _ = balancer.endpoint(0, changedTo: .connected)
    _ = balancer.endpoint(1, changedTo: .connected)
    XCTAssertEqual(balancer.pick(), 0)
    balancer.insert(at: 1)  // between the two; its turn comes once it is connected
    XCTAssertEqual(balancer.states, [.connected, .connecting, .connected])
    XCTAssertEqual(balancer.pick(), 2)
    _ = balancer.endpoint(1, changedTo: .connected)
    XCTAssertEqual((0..<3).map { _ in balancer.pick() }, [0, 1, 2])
    XCTAssertNil(balancer.remove(0), "two are left connected")
    XCTAssertEqual((0..<4).map { _ in balancer.pick() }, [0, 1, 0, 1])
    XCTAssertNil(balancer.remove(1))
    XCTAssertEqual(balancer.remove(0), .reconnecting, "the last connected one left")
    XCTAssertEqual(balancer.aggregate, .reconnecting)
  }
}
