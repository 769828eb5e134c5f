import MilvexProtos
import MilvexReactor
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A scriptable Milvus server that a test starts in-process on loopback: real gRPC over
/// HTTP/2 (nghttp2's server side), plaintext or TLS, on a libev loop of its own (its timers run
/// on real time, independent of the client's loop).
///
/// ```swift
/// let server = MilvusTestServer(name: "search-test")
/// try server.start()
/// defer { server.stop() }
/// server.addCollection("docs", dimension: 4)
/// server.answer("Search", with: .message(results))
/// let client = try MilvusClient.connect(config: ConnectionConfig(uri: server.uri), on: loop)
/// _ = try await client.perform(.search("docs", vectors: [[0, 0, 0, 1]]))
/// XCTAssertEqual(server.calls(to: "Search").count, 1)
/// ```
///
/// - Answers: `answer(_:with:)` with one answer (every call) or with a list (the next calls,
///   in order), `handle(path:_:)` (a handler), and built-in answers for Connect, CheckHealth,
///   GetVersion, HasCollection, DescribeCollection (`addCollection(_:schema:)`),
///   Insert/Upsert/Delete, Search and Query. Anything else is answered `UNIMPLEMENTED` and
///   recorded with ``TestServerCall/unimplemented``.
/// - Faults: `stopAccepting()`, `closeAllConnections(_:)`, `goAway(_:)`,
///   `blackhole(_:)`, `settingsDelay(_:)`, `restart(downtime:)`.
/// - Record: `calls`, `pings`, `waitForCalls(count:to:timeout:)`.
///
/// Docs/testing-server.md is the guide: precedence of answers, what each fault does on the
/// wire and what a client notices.
///
/// A server left running by a test is stopped when the test finishes (XCTest), or when its
/// last reference goes, with a message naming it on standard error; `stopAll()` stops every
/// server still running and returns their names, for a test base class's `tearDown` to fail
/// on.
///
/// - Important: A `Sendable` handle: every method may be called from any thread or task
///   (including a handler, which runs on the server's loop thread). Methods that change
///   connections return after the server's loop has done it.
public final class MilvusTestServer: Sendable {
  /// The name that messages about this server use.
  public let name: String
  let core: TestServerCore

  /// A server that is not started yet; script it before or after `start(tls:on:)`.
  ///
  /// - Parameters:
  ///   - name: names the server in messages (a leak at teardown, a failure to start).
  ///   - builtInAnswers: whether the common Milvus methods answer without a script; false
  ///     makes every unscripted call `UNIMPLEMENTED`.
  /// - Throws: `MilvexError/invalidArgument(field:message:)` if its loop cannot start.
  /// - Important: Callable from any thread. The server's loop thread runs until the last
  ///   reference goes.
  public init(name: String = "MilvusTestServer", builtInAnswers: Bool = true) throws(MilvexError) {
    self.name = name
    let loop = try EventLoop(threadName: "milvex-test-srv")
    core = TestServerCore(name: name, loop: loop)
    core.shared.withLock { $0.script.builtInAnswers = builtInAnswers }
  }

  deinit {
    if isRunning {
      let message =
        "MilvusTestServer '\(name)' was still running when its last reference went away; "
        + "stopped it (call stop() at the end of the test)\n"
      _ = message.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }
    stopServer()
    core.loop.shutdown()
  }

  // MARK: - Starting and stopping

  /// Starts listening on 127.0.0.1:`port` (0: a free port, see `port`).
  ///
  /// - Parameters:
  ///   - tls: serve TLS with this certificate (ALPN h2); nil for plaintext HTTP/2.
  ///   - port: the port; 0 picks a free one.
  /// - Throws: `MilvexError/invalidArgument(field:message:)` naming the server when it is
  ///   already running, the port is taken or the certificate cannot be used.
  /// - Important: Callable from any thread.
  public func start(tls: TestServerTLS? = nil, on port: Int = 0) throws(MilvexError) {
    guard !isRunning else {
      throw .invalidArgument(field: name, message: "the test server is already running")
    }
    guard (0...65_535).contains(port) else {
      throw .invalidArgument(field: name, message: "port \(port) is not in 0...65535")
    }
    let context: TestServerTLSContext?
    do {
      context = try tls.map { (tls) throws(TestServerError) in try TestServerTLSContext(tls) }
    } catch {
      throw .invalidArgument(field: name, message: "\(error)")
    }
    core.shared.withLock { $0.tlsEnabled = tls != nil }
    try listen(port: port, context: context)
    TestServerLeakGuard.started(core)
  }

  private func listen(port: Int, context: TestServerTLSContext?) throws(MilvexError) {
    let core = self.core
    let result = core.onLoop { core.listen(port: port, tls: context) }
    switch result {
    case .success?: return
    case .failure(let error)?: throw .invalidArgument(field: name, message: error.description)
    case nil: throw .invalidArgument(field: name, message: "the test server's loop has stopped")
    }
  }

  /// Stops the server: closes the listening socket and every connection. Idempotent; the
  /// script and the record stay (a later `start(tls:on:)` serves with them again).
  ///
  /// - Important: Callable from any thread.
  public func stop() {
    stopServer()
  }

  private func stopServer() {
    core.stopServing()
    TestServerLeakGuard.stopped(core)
  }

  /// Whether the server is started (it may have stopped accepting; see `stopAccepting()`).
  public var isRunning: Bool { core.shared.withLock { $0.running } }

  /// The port it listens on (after `start(tls:on:)`; kept across a restart).
  public var port: Int { core.shared.withLock { $0.port } }

  /// The host it listens on: `127.0.0.1`.
  public var host: String { "127.0.0.1" }

  /// The URI a client connects with: `milvus://127.0.0.1:<port>`, or `https://…` with TLS (the
  /// client then needs the CA and, for make_test_certs.sh's certificate, the server name
  /// `localhost`).
  public var uri: String {
    let tls = core.shared.withLock { $0.tlsEnabled }
    return "\(tls ? "https" : "milvus")://\(host):\(port)"
  }

  // MARK: - Scripting

  /// Every later call of `method` (a Milvus method name such as `Search`, or a full gRPC path)
  /// gets `answer`, replacing the built-in answer or an earlier standing one.
  ///
  /// - Important: Callable from any thread.
  public func answer(_ method: String, with answer: TestServerAnswer) {
    core.shared.withLock { $0.script.standing[method] = answer }
  }

  /// The next calls of `method` get `answers`, one each, in order (after any queued before);
  /// later calls get what the method had before (a standing answer, a handler, the built-in
  /// answer, or `UNIMPLEMENTED`).
  ///
  /// - Important: Callable from any thread.
  public func answer(_ method: String, with answers: [TestServerAnswer]) {
    core.shared.withLock { $0.script.queued[method, default: []] += answers }
  }

  /// Calls of `path` (a full gRPC path, `/package.Service/Method`) are answered by `handler`,
  /// unless a queued answer comes first. It runs on the server's loop thread and must not
  /// block; it may call this server's methods (capture the server `weak`: the server keeps
  /// its handlers).
  ///
  /// - Important: Callable from any thread; `handler` runs on the server's loop thread.
  public func handle(path: String, _ handler: @escaping TestServerHandler) {
    core.shared.withLock { $0.script.handlers[path] = handler }
  }

  /// Forgets every scripted answer and handler (the built-in answers stay).
  ///
  /// - Important: Callable from any thread.
  public func removeAllAnswers() {
    core.shared.withLock {
      $0.script.queued = [:]
      $0.script.standing = [:]
      $0.script.handlers = [:]
    }
  }

  /// Declares a collection: `DescribeCollection` answers `schema`, `HasCollection` true, and
  /// inserts answer with the primary keys of the schema's primary field.
  ///
  /// - Important: Callable from any thread.
  public func addCollection(_ name: String, schema: Milvus_Proto_Schema_CollectionSchema) {
    var schema = schema
    if schema.name.isEmpty { schema.name = name }
    core.shared.withLock { $0.script.collections[name] = schema }
  }

  /// Declares a collection with an int64 primary key `id` and a float vector field `vector`
  /// of `dimension` (L2), optionally with auto ID; see `addCollection(_:schema:)`.
  ///
  /// - Important: Callable from any thread.
  public func addCollection(_ name: String, dimension: Int, autoID: Bool = false) {
    var key = Milvus_Proto_Schema_FieldSchema()
    key.fieldID = 100
    key.name = "id"
    key.isPrimaryKey = true
    key.dataType = .int64
    key.autoID = autoID
    var vector = Milvus_Proto_Schema_FieldSchema()
    vector.fieldID = 101
    vector.name = "vector"
    vector.dataType = .floatVector
    var dim = Milvus_Proto_Common_KeyValuePair()
    dim.key = "dim"
    dim.value = "\(dimension)"
    vector.typeParams = [dim]
    var schema = Milvus_Proto_Schema_CollectionSchema()
    schema.name = name
    schema.fields = [key, vector]
    addCollection(name, schema: schema)
  }

  /// The session identifier `Connect` answers (4242 by default); clients send it back as
  /// `identifier` metadata.
  public var identifier: Int64 {
    get { core.shared.withLock { $0.script.identifier } }
    set { core.shared.withLock { $0.script.identifier = newValue } }
  }

  /// The version `GetVersion` answers.
  public var version: String {
    get { core.shared.withLock { $0.script.version } }
    set { core.shared.withLock { $0.script.version = newValue } }
  }

  // MARK: - Faults

  /// Closes the listening socket: new connections are refused (`ECONNREFUSED`); open ones
  /// go on. `resumeAccepting()` or `restart(downtime:)` listens again on the same port.
  ///
  /// - Important: Callable from any thread; returns once the socket is closed.
  public func stopAccepting() {
    let core = self.core
    _ = core.onLoop { core.stopListening() }
  }

  /// Listens again on the same port after `stopAccepting()`.
  ///
  /// - Throws: `MilvexError/invalidArgument(field:message:)` when the port cannot be bound
  ///   again or the server is not running.
  /// - Important: Callable from any thread.
  public func resumeAccepting() throws(MilvexError) {
    guard isRunning else {
      throw .invalidArgument(field: name, message: "the test server is not running")
    }
    let core = self.core
    if core.onLoop({ core.isListening }) == true { return }
    let context = core.onLoop { core.currentTLSContext }
    try listen(port: port, context: context ?? nil)
  }

  /// Closes every open connection: with FIN (`.eof`, the client reads end of file) or with
  /// RST (`.reset`). Calls in flight get no answer.
  ///
  /// - Important: Callable from any thread; returns once they are closed.
  public func closeAllConnections(_ how: TestServerClose = .eof) {
    let core = self.core
    _ = core.onLoop { core.closeAll(how) }
  }

  /// Sends GOAWAY on every open connection. `.noError`: calls in flight are still answered
  /// and each connection closes once its calls are done. `.tooManyPings`: ENHANCE_YOUR_CALM
  /// with `too_many_pings`, then the connection closes.
  ///
  /// - Important: Callable from any thread; returns once the frames are queued.
  public func goAway(_ kind: TestServerGoAway = .noError) {
    let core = self.core
    _ = core.onLoop { core.goAwayAll(kind) }
  }

  /// While on, connections accepted are read and discarded and never answered: no TLS
  /// handshake, no SETTINGS, no response. Connections accepted before keep being served.
  ///
  /// - Important: Callable from any thread.
  public func blackhole(_ on: Bool = true) {
    core.shared.withLock { $0.script.blackhole = on }
  }

  /// Connections accepted from now on get the server's SETTINGS (the HTTP/2 connection
  /// preface) `delay` late; until then nothing of HTTP/2 is sent or read (with TLS, the
  /// handshake itself is not delayed). `.zero` turns it off.
  ///
  /// - Important: Callable from any thread.
  public func settingsDelay(_ delay: Duration) {
    core.shared.withLock { $0.script.settingsDelay = max(.zero, delay) }
  }

  /// Stops and starts again on the same port: every connection is closed (FIN), the port
  /// refuses connections for `downtime`, then the server listens again with the same script
  /// and record.
  ///
  /// - Throws: `MilvexError/invalidArgument(field:message:)` when the port cannot be bound
  ///   again or the server is not running.
  /// - Important: Callable from any thread; blocks the caller for `downtime`.
  public func restart(downtime: Duration = .zero) throws(MilvexError) {
    guard isRunning else {
      throw .invalidArgument(field: name, message: "the test server is not running")
    }
    let core = self.core
    let context = core.onLoop { () -> TestServerTLSContext? in
      core.stopAll()
      return core.currentTLSContext
    }
    if downtime > .zero {
      let (seconds, attoseconds) = downtime.components
      var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
      var remaining = timespec()
      while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
    try listen(port: port, context: context ?? nil)
  }

  // MARK: - The record

  /// Every call received so far, in arrival order.
  ///
  /// - Important: Callable from any thread.
  public var calls: [TestServerCall] { core.shared.withLock { $0.calls } }

  /// The calls of `method` (a method name such as `Search`, or a full path).
  ///
  /// - Important: Callable from any thread.
  public func calls(to method: String) -> [TestServerCall] {
    calls.filter { $0.method == method || $0.path == method }
  }

  /// Every PING received (keepalive), in arrival order.
  ///
  /// - Important: Callable from any thread.
  public var pings: [TestServerPing] { core.shared.withLock { $0.pings } }

  /// How many connections were accepted since the server was made (across restarts).
  public var acceptedConnections: Int { core.shared.withLock { $0.script.connectionsAccepted } }

  /// How many connections are open now.
  public var openConnections: Int { core.shared.withLock { $0.openConnections } }

  /// Forgets the calls and pings recorded so far.
  ///
  /// - Important: Callable from any thread.
  public func clearRecord() {
    core.shared.withLock {
      $0.calls = []
      $0.pings = []
    }
  }

  /// Waits until at least `count` calls (of `method`, when given) have arrived; returns them.
  ///
  /// - Throws: ``TestServerError`` after `timeout`, naming the server, the count and what
  ///   arrived instead.
  /// - Important: Callable from any task; polls every 5 ms.
  public func waitForCalls(
    count: Int, to method: String? = nil, timeout: Duration = .seconds(10)
  ) async throws(TestServerError) -> [TestServerCall] {
    let deadline = ContinuousClock.now + timeout
    while true {
      let matching = method.map { calls(to: $0) } ?? calls
      if matching.count >= count { return matching }
      if ContinuousClock.now >= deadline {
        throw TestServerError(
          "\(name): waited \(timeout) for \(count) call(s)\(method.map { " to \($0)" } ?? ""); "
            + "got \(matching.count); all calls: \(calls.map(\.description))")
      }
      try? await Task.sleep(for: .milliseconds(5))
    }
  }

  /// Waits until `condition` holds for the server (polled every 5 ms).
  ///
  /// - Throws: ``TestServerError`` after `timeout`, with `what` in its words.
  /// - Important: Callable from any task.
  public func wait(
    until what: String, timeout: Duration = .seconds(10),
    _ condition: @Sendable (MilvusTestServer) -> Bool
  ) async throws(TestServerError) {
    let deadline = ContinuousClock.now + timeout
    while !condition(self) {
      if ContinuousClock.now >= deadline {
        throw TestServerError("\(name): waited \(timeout) until \(what), in vain")
      }
      try? await Task.sleep(for: .milliseconds(5))
    }
  }

  // MARK: - Leak guard

  /// Stops every test server still running in this process and returns their names (empty
  /// when every test stopped its servers). Call it from a test base class's `tearDown` and
  /// fail when it returns names:
  ///
  /// ```swift
  /// override func tearDown() {
  ///   let leaked = MilvusTestServer.stopAll()
  ///   XCTAssertEqual(leaked, [], "test servers left running")
  /// }
  /// ```
  ///
  /// - Important: Callable from any thread.
  @discardableResult
  public static func stopAll() -> [String] {
    let running = TestServerLeakGuard.takeAll()
    for core in running { core.stopServing() }
    return running.map(\.name).sorted()
  }
}
