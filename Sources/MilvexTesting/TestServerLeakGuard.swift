import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif
#if canImport(XCTest)
  import XCTest
#endif

/// Keeps track of the running test servers, so that none outlives its test: the registry of
/// ``MilvusTestServer/stopAll()``, and (where XCTest runs the tests) an observer that stops the
/// servers a test started and left running when the test finishes, with a message naming them.
///
/// Which servers the observer stops: those started while a test case ran. Servers started
/// outside any test case (a class-level `setUp`, shared by the class's tests) are left to
/// their owner and to ``MilvusTestServer/stopAll()``. The message goes to standard error:
/// XCTest cannot record a failure once a test has finished; a test base class that must fail
/// calls ``MilvusTestServer/stopAll()`` in its `tearDown`.
enum TestServerLeakGuard {
  /// When a server was started: inside a known test case, before the observer knew which
  /// test was running (resolved by the next test event), or outside any test case.
  enum Owner: Equatable {
    case test(ObjectIdentifier, name: String)
    case unknown
    case outsideTests
  }

  struct Entry {
    var core: TestServerCore
    var owner: Owner
  }

  struct State {
    var running: [ObjectIdentifier: Entry] = [:]
    /// The test case running now, when the observer saw it start.
    var currentTest: (id: ObjectIdentifier, name: String)?
    /// What the observer said, newest last (for tests of the guard).
    var messages: [String] = []
  }

  static let state = Mutex(State())

  /// Records a started server.
  static func started(_ core: TestServerCore) {
    installObserverOnce()
    state.withLock { state in
      let owner: Owner = state.currentTest.map { .test($0.id, name: $0.name) } ?? .unknown
      state.running[ObjectIdentifier(core)] = Entry(core: core, owner: owner)
    }
  }

  /// Forgets a stopped server.
  static func stopped(_ core: TestServerCore) {
    state.withLock { _ = $0.running.removeValue(forKey: ObjectIdentifier(core)) }
  }

  /// Removes and returns every running server.
  static func takeAll() -> [TestServerCore] {
    state.withLock { state in
      defer { state.running = [:] }
      return state.running.values.map(\.core)
    }
  }

  /// A test case started: servers of unknown owner were started before it (outside tests).
  static func testCaseWillStart(id: ObjectIdentifier, name: String) {
    state.withLock { state in
      for (key, entry) in state.running where entry.owner == .unknown {
        state.running[key]?.owner = .outsideTests
      }
      state.currentTest = (id, name)
    }
  }

  /// A test case finished: stops the servers it started and left running (and those of
  /// unknown owner, started during it before the observer knew it); returns the messages.
  @discardableResult
  static func testCaseDidFinish(id: ObjectIdentifier, name: String) -> [String] {
    let leaked = state.withLock { state -> [TestServerCore] in
      state.currentTest = nil
      let keys = state.running.filter { _, entry in
        entry.owner == .unknown || entry.owner == .test(id, name: name)
      }.map(\.key)
      return keys.compactMap { state.running.removeValue(forKey: $0)?.core }
    }
    let messages = leaked.map { core in
      "MilvusTestServer '\(core.name)' was still running when test \(name) finished; "
        + "stopped it (stop it in the test or in tearDown)"
    }
    for core in leaked { core.stopServing() }
    state.withLock { $0.messages += messages }
    for message in messages {
      let line = message + "\n"
      _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }
    return messages
  }

  private static let observerInstalled = Mutex(false)

  private static func installObserverOnce() {
    #if canImport(XCTest)
      let first = observerInstalled.withLock { installed in
        defer { installed = true }
        return !installed
      }
      if first { XCTestObservationCenter.shared.addTestObserver(LeakObserver()) }
    #endif
  }
}

#if canImport(XCTest)
  /// Forwards XCTest's test case events to `TestServerLeakGuard`.
  private final class LeakObserver: NSObject, XCTestObservation {
    func testCaseWillStart(_ testCase: XCTestCase) {
      TestServerLeakGuard.testCaseWillStart(id: ObjectIdentifier(testCase), name: testCase.name)
    }

    func testCaseDidFinish(_ testCase: XCTestCase) {
      TestServerLeakGuard.testCaseDidFinish(id: ObjectIdentifier(testCase), name: testCase.name)
    }
  }
#endif
