import Foundation
import Logging
import MilvexProtos
import MilvexReactor
import MilvexTesting
import Synchronization
import XCTest

/// A test case with a client loop and a test server, both stopped at teardown; a server left
/// running by a test fails it (``MilvusTestServer/stopAll()``).
class TestServerTestCase: XCTestCase {
  var loop: EventLoop!
  var server: MilvusTestServer!

  override func setUp() async throws {
    loop = try EventLoop(threadName: "client-loop")
    server = try MilvusTestServer(name: name)
  }

  override func tearDown() async throws {
    server?.stop()
    server = nil
    loop?.shutdown()
    loop = nil
    let leaked = MilvusTestServer.stopAll()
    XCTAssertEqual(leaked, [], "test servers left running")
  }

  /// A quiet logger: the faults make the client log warnings on purpose.
  static var quiet: Logger {
    var logger = Logger(label: "test-server-tests")
    logger.logLevel = .critical
    return logger
  }

  /// A config for the server, with short test timings unless changed.
  func config(
    _ change: (inout ConnectionConfig) -> Void = { _ in }
  ) throws -> ConnectionConfig {
    var config = try ConnectionConfig(
      host: server.host, port: server.port, timeout: .seconds(5), connectTimeout: .seconds(2),
      reconnectBaseDelay: .milliseconds(50), reconnectMaxDelay: .milliseconds(200),
      reconnectJitter: 0, allowTestingTimings: true)
    change(&config)
    try config.validate()
    return config
  }

  func client(_ config: ConnectionConfig) throws -> MilvusClient {
    try MilvusClient.connect(config: config, on: loop, logger: Self.quiet)
  }

  /// Runs `body` with a connected client, closed afterwards.
  func withClient<T>(
    _ config: ConnectionConfig? = nil, _ body: (MilvusClient) async throws -> T
  ) async throws -> T {
    let client = try client(config ?? self.config())
    do {
      let result = try await body(client)
      await client.close()
      return result
    } catch {
      await client.close()
      throw error
    }
  }

  /// Search results: one list of (id, distance) per query.
  static func searchResults(_ queries: [[(Int64, Float)]]) -> Milvus_Proto_Milvus_SearchResults {
    var data = Milvus_Proto_Schema_SearchResultData()
    data.numQueries = Int64(queries.count)
    data.topK = Int64(queries.map(\.count).max() ?? 0)
    data.topks = queries.map { Int64($0.count) }
    var ids = Milvus_Proto_Schema_LongArray()
    ids.data = queries.flatMap { $0.map(\.0) }
    data.ids.intID = ids
    data.scores = queries.flatMap { $0.map(\.1) }
    var results = Milvus_Proto_Milvus_SearchResults()
    results.results = data
    return results
  }

  /// How long `body` took.
  static func measure(_ body: () async throws -> Void) async rethrows -> Duration {
    let start = ContinuousClock.now
    try await body()
    return ContinuousClock.now - start
  }
}

/// The error of a failed call, or a test failure if it succeeded.
func failure<T>(
  _ body: () async throws(MilvexError) -> T, file: StaticString = #filePath, line: UInt = #line
) async -> MilvexError? {
  do {
    let value = try await body()
    XCTFail("expected a failure, got \(value)", file: file, line: line)
    return nil
  } catch {
    return error
  }
}

/// The state transitions a connection made, recorded from its callback.
final class TransitionRecorder: Sendable {
  private let transitions = Mutex<[StateTransition]>([])

  init(_ connection: Connection) {
    connection.onStateChange { [self] transition in
      transitions.withLock { $0.append(transition) }
    }
  }

  var all: [StateTransition] { transitions.withLock { $0 } }

  /// Waits (polling) until a transition matches; returns it, or nil after `timeout`.
  func wait(
    timeout: Duration = .seconds(10), _ matches: (StateTransition) -> Bool
  ) async -> StateTransition? {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
      if let found = all.first(where: matches) { return found }
      try? await Task.sleep(for: .milliseconds(5))
    }
    return nil
  }
}
