import Foundation
import Synchronization
import XCTest

@testable import MilvexReactor

/// The channel against a scripted HTTP/2 server written with python-hyper's h2
/// (Tests/Peers/misbehaving_server.py). Every case: the call completes exactly once with the
/// right error, and the process stays usable. ``MisbehavingServerOverTLSTests`` runs every case
/// again with the server behind TLS.
class MisbehavingServerTests: XCTestCase, @unchecked Sendable {
  private var peers: [PeerProcess] = []
  var loop: EventLoop!
  let eventLog = EventRecorder<ChannelEvent>()

  /// The server's TLS, and the channel's; nil: plaintext.
  var peerTLS: PeerTLS? { get throws { nil } }
  var channelTLS: TLSConfiguration? { get throws { nil } }

  override func setUpWithError() throws {
    loop = try EventLoop(threadName: "h2-test")
  }

  override func tearDown() {
    loop.shutdown()
    for peer in peers { peer.stop() }
  }

  func server(_ scenario: String, tls: PeerTLS?? = .none) throws -> PeerProcess {
    let peer = try PeerProcess.misbehavingServer(scenario, tls: tls ?? peerTLS)
    peers.append(peer)
    return peer
  }

  func channel(
    _ scenario: String, configure: (inout GRPCChannelConfiguration) -> Void = { _ in }
  ) throws -> GRPCChannel {
    let peer = try server(scenario)
    var configuration = GRPCChannelConfiguration(host: "127.0.0.1", port: peer.port)
    configuration.tls = try channelTLS
    configure(&configuration)
    let eventLog = self.eventLog
    return try GRPCChannel.connect(configuration: configuration, loop: loop) { event in
      eventLog.record(event)
    }
  }

  /// One call, counting completions: a second completion fails the test.
  nonisolated static func call(
    _ channel: GRPCChannel, _ path: String = "/test.Echo/Call",
    payload: [UInt8] = Array("hello".utf8),
    metadata: GRPCMetadata = GRPCMetadata(), timeout: Duration = .seconds(10)
  ) async -> Result<[UInt8], MilvexError> {
    let completions = Atomic<Int>(0)
    let result: Result<[UInt8], MilvexError> = await withCheckedContinuation { continuation in
      channel.unary(path: path, request: payload, metadata: metadata, timeout: timeout) { result in
        if completions.add(1, ordering: .relaxed).newValue == 1 {
          continuation.resume(returning: result)
        }
      }
    }
    // A duplicate completion would come from events the loop has already handled: one more
    // trip through the loop's queue lets it show up.
    _ = try? await channel.loop.submit {}
    XCTAssertEqual(completions.load(ordering: .relaxed), 1, "completed exactly once")
    return result
  }

  /// Starts a call now: its request is queued before anything this thread submits later, so
  /// on one connection it reaches the server first. The result arrives in the recorder.
  static func begin(
    _ channel: GRPCChannel, _ path: String, payload: [UInt8] = []
  ) -> EventRecorder<Result<[UInt8], MilvexError>> {
    let outcome = EventRecorder<Result<[UInt8], MilvexError>>()
    channel.unary(path: path, request: payload, timeout: .seconds(10)) { outcome.record($0) }
    return outcome
  }

  /// Waits for a call started by ``begin(_:_:payload:)`` (exactly once).
  static func finish(
    _ outcome: EventRecorder<Result<[UInt8], MilvexError>>
  ) async -> Result<[UInt8], MilvexError>? {
    let result = await outcome.first(within: .seconds(15)) { _ in true }
    XCTAssertLessThanOrEqual(outcome.all.count, 1, "completed exactly once")
    return result
  }

  /// An echo round trip on `channel`: every call begun before it has reached the server.
  private static func roundTrip(_ channel: GRPCChannel) async {
    let echoed = await call(channel)
    XCTAssertEqual(try? echoed.get(), Array("hello".utf8))
  }

  func expectStatus(
    _ result: Result<[UInt8], MilvexError>, _ code: GRPCStatusCode, containing text: String? = nil,
    file: StaticString = #filePath, line: UInt = #line
  ) {
    guard case .failure(.grpcStatus(let status)) = result else {
      return XCTFail("expected \(code), got \(result)", file: file, line: line)
    }
    XCTAssertEqual(status.code, code, "\(status)", file: file, line: line)
    if let text {
      XCTAssertTrue(
        status.message.contains(text), "'\(status.message)' lacks '\(text)'", file: file, line: line
      )
    }
  }

  /// A violation fails the call with the status code of grpc's `doc/statuscodes.md`, its words
  /// in the message and the typed cause.
  private func expectViolation(
    _ result: Result<[UInt8], MilvexError>, _ code: GRPCStatusCode, containing text: String,
    where matches: (GRPCProtocolViolation) -> Bool, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    expectStatus(result, code, containing: text, file: file, line: line)
    guard case .failure(.grpcStatus(let status)) = result,
      case .protocolViolation(let cause)? = status.cause,
      matches(cause)
    else {
      return XCTFail(
        "expected a typed protocol-violation cause, got \(result)", file: file, line: line)
    }
  }

  func waitForEvent(
    timeout: Duration = .seconds(5), _ matches: @escaping @Sendable (ChannelEvent) -> Bool
  ) async -> ChannelEvent? {
    await eventLog.first(within: timeout, where: matches)
  }

  // MARK: - Cases

  func testEchoAndTheRequestHeadersOnTheWire() async throws {
    let channel = try channel("echo")
    let echoed = try await channel.unary(
      path: "/test.Echo/Call", request: Array("ping".utf8), timeout: .seconds(5))
    XCTAssertEqual(String(decoding: echoed, as: UTF8.self), "ping")

    var metadata = GRPCMetadata([("x-echo-metadata", "1"), ("x-custom", "value")])
    metadata.add("x-trace-bin", binary: [0, 1, 2, 255])
    let headers = String(
      decoding: try await channel.unary(
        path: "/test.Echo/Call", request: [], metadata: metadata, timeout: .seconds(5)),
      as: UTF8.self)
    for expected in [
      ":method: POST", ":path: /test.Echo/Call",
      try channelTLS == nil ? ":scheme: http" : ":scheme: https", "content-type: application/grpc",
      "te: trailers", "user-agent: milvex-reactor-swift/", "x-custom: value", "x-trace-bin: AAEC/w",
      "grpc-timeout: ",
    ] {
      XCTAssertTrue(headers.contains(expected), "missing '\(expected)' in:\n\(headers)")
    }
  }

  /// The request fields come from a per-connection template (issue 11): the defaults are
  /// sent without a call's own metadata, a call's own entries replace them by key, replaced
  /// defaults take effect, and `grpc-timeout` is never indexed (it changes with every call).
  func testDefaultMetadataOverridesAndTheTimeoutOnTheWire() async throws {
    let channel = try channel("echo") {
      $0.defaultMetadata = GRPCMetadata([
        ("x-echo-metadata", "1"), ("x-default", "d"), ("x-custom", "default"),
      ])
    }
    let loop = self.loop!
    /// The echoed header lines of one call started on the loop thread.
    func echoedOnLoop(_ metadata: GRPCMetadata = GRPCMetadata()) async throws -> [String] {
      let reply = await withCheckedContinuation { continuation in
        try? loop.execute {
          channel.onLoop.unary(
            path: "/test.Echo/Call", request: [], metadata: metadata, timeout: .seconds(5)
          ) { continuation.resume(returning: $0) }
        }
      }
      return String(decoding: try reply.get(), as: UTF8.self).split(separator: "\n").map(
        String.init)
    }

    // The first call waits for the connection: it sends what remains of its timeout.
    let first = try await echoedOnLoop()
    XCTAssertTrue(
      first.contains { $0.hasPrefix("grpc-timeout: 4") && $0.hasSuffix("u (never indexed)") },
      "\(first)")
    let defaults = try await echoedOnLoop()
    XCTAssertEqual(
      defaults.filter { $0.hasPrefix("x-") },
      [
        "x-custom: default", "x-default: d", "x-echo-metadata: 1",
      ])
    // Started on the ready connection's loop and sent at once: the whole timeout, 5 s in µs.
    XCTAssertTrue(defaults.contains("grpc-timeout: 5000000u (never indexed)"), "\(defaults)")
    XCTAssertEqual(defaults.first { $0.hasPrefix(":path") }, ":path: /test.Echo/Call")

    let own = try await echoedOnLoop(GRPCMetadata([("x-custom", "value"), ("x-own", "o")]))
    XCTAssertEqual(
      own.filter { $0.hasPrefix("x-") },
      [
        "x-custom: value", "x-default: d", "x-echo-metadata: 1", "x-own: o",
      ])

    // From another thread: what remains of the timeout when the call is sent, rounded up.
    let remote = String(
      decoding: try await channel.unary(path: "/test.Echo/Call", request: [], timeout: .seconds(5)),
      as: UTF8.self)
    let timeoutLine = try XCTUnwrap(
      remote.split(separator: "\n").first { $0.hasPrefix("grpc-timeout: ") })
    XCTAssertTrue(timeoutLine.hasSuffix("u (never indexed)"), String(timeoutLine))
    let micros = try XCTUnwrap(Int(timeoutLine.dropFirst(14).prefix { $0.isNumber }))
    XCTAssertTrue((4_000_000...5_000_000).contains(micros), "\(micros)")

    try loop.execute {
      channel.onLoop.setDefaultMetadata(GRPCMetadata([("x-echo-metadata", "1"), ("x-new", "n")]))
    }
    let replaced = try await echoedOnLoop()
    XCTAssertEqual(replaced.filter { $0.hasPrefix("x-") }, ["x-echo-metadata: 1", "x-new: n"])

    // An invalid default fails every call that does not bring its own entries, by name.
    try loop.execute {
      channel.onLoop.setDefaultMetadata(GRPCMetadata([("x-echo-metadata", "1"), ("Bad Key", "x")]))
    }
    let refused = await Self.call(channel)
    guard case .failure(.invalidArgument(let field, _)) = refused else {
      return XCTFail("\(refused)")
    }
    XCTAssertEqual(field, "metadata[Bad Key]")
  }

  func testInvalidMetadataIsRejectedBeforeAnythingIsSent() async throws {
    let channel = try channel("echo")
    let result = await Self.call(channel, metadata: GRPCMetadata([("Bad Key", "x")]))
    guard case .failure(.invalidArgument(let field, _)) = result else {
      return XCTFail("\(result)")
    }
    XCTAssertEqual(field, "metadata[Bad Key]")
    let reserved = await Self.call(channel, metadata: GRPCMetadata([("grpc-timeout", "1S")]))
    guard case .failure(.invalidArgument) = reserved else { return XCTFail("\(reserved)") }
  }

  func testSendSizeLimitAndBadArgumentsFailBeforeTheNetwork() async throws {
    let channel = try channel("echo") { $0.maxSendMessageSize = 16 }
    expectStatus(
      await Self.call(channel, payload: [UInt8](repeating: 1, count: 17)), .resourceExhausted,
      containing: "maxSendMessageSize (16 bytes)")
    guard case .failure(.invalidArgument(let field, _)) = await Self.call(channel, "no-slash")
    else { return XCTFail() }
    XCTAssertEqual(field, "path")
    guard
      case .failure(.invalidArgument(let timeoutField, _)) = await Self.call(
        channel, timeout: .zero)
    else {
      return XCTFail()
    }
    XCTAssertEqual(timeoutField, "timeout")
    let fits = await Self.call(channel, payload: [UInt8](repeating: 1, count: 16))
    XCTAssertEqual(try fits.get(), [UInt8](repeating: 1, count: 16))
    // A path that passed is remembered; a different one is still checked in full.
    for path in ["/test.Echo/Call ", "test.Echo/Call", "/test.Echo/Cäll"] {
      guard case .failure(.invalidArgument("path", _)) = await Self.call(channel, path) else {
        return XCTFail(path)
      }
    }
  }

  func testServerThatNeverSendsSettingsHitsTheConnectTimeout() async throws {
    let channel = try channel("no-settings") { $0.connectTimeout = .milliseconds(300) }
    let start = ContinuousClock.now
    let result = await Self.call(channel)
    XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(300))
    expectStatus(result, .unavailable, containing: "connect timeout")
    guard case .failure(let error) = result else { return }
    XCTAssertTrue(error.isRetriable)
    XCTAssertTrue("\(error)".contains("SETTINGS"), "\(error)")
  }

  func testGoAwayMidCallFailsOnlyTheUnprocessedStream() async throws {
    let channel = try channel("goaway-mid-call")
    // Begun in this order from one thread, the calls get streams 1, 3 and 5.
    let first = Self.begin(channel, "/test.Echo/Call", payload: Array("one".utf8))
    let second = Self.begin(channel, "/test.Echo/Call", payload: Array("two".utf8))
    let third = Self.begin(channel, "/test.Echo/Call", payload: Array("three".utf8))
    let results = [await Self.finish(first), await Self.finish(second), await Self.finish(third)]
    XCTAssertEqual(try results[0]?.get(), Array("one".utf8))
    XCTAssertEqual(try results[1]?.get(), Array("two".utf8))
    expectStatus(results[2] ?? .success([]), .unavailable)
    let closing = await waitForEvent { if case .closing = $0 { return true } else { return false } }
    XCTAssertNotNil(closing, "the channel reported GOAWAY")
    // No new call starts on a going-away connection.
    expectStatus(await Self.call(channel), .unavailable)
  }

  func testGoAwayTooManyPingsDoublesKeepaliveForTheNextConnection() async throws {
    let channel = try channel("goaway-calm")
    defer { withExtendedLifetime(channel) {} }
    let closed = await waitForEvent { if case .closed = $0 { return true } else { return false } }
    guard case .closed(_, let tooManyPings)? = closed else { return XCTFail("no closed event") }
    XCTAssertTrue(tooManyPings)
    XCTAssertEqual(channel.configuration.afterTooManyPings().keepaliveTime, .seconds(20))
  }

  func testResetStream() async throws {
    expectStatus(
      await Self.call(try channel("reset-stream")), .internalError, containing: "error code 2")
  }

  func testTrailersOnlyErrorWithMessageAndDetails() async throws {
    let result = await Self.call(try channel("trailers-only-error"))
    guard case .failure(.grpcStatus(let status)) = result else { return XCTFail("\(result)") }
    XCTAssertEqual(status.code, .notFound)
    XCTAssertEqual(status.message, "no such thing: 100%")
    XCTAssertEqual(status.details, [0x08, 0x05, 0x12, 0x03] + Array("abc".utf8))
  }

  func testHTTP503WithoutGRPCStatusIsRetriableUnavailable() async throws {
    let result = await Self.call(try channel("http-503"))
    expectStatus(result, .unavailable, containing: "503")
    XCTAssertTrue(
      (try? result.get()) == nil
        && {
          if case .failure(let e) = result { return e.isRetriable }; return false
        }())
  }

  func testProtocolErrorsInResponses() async throws {
    expectViolation(
      await Self.call(try channel("wrong-content-type")), .unknown, containing: "text/html"
    ) {
      $0 == .contentType("text/html")
    }
    expectViolation(
      await Self.call(try channel("compressed-flag")), .internalError, containing: "compressed"
    ) {
      $0 == .unexpectedCompression(encoding: nil)
    }
    expectViolation(
      await Self.call(try channel("two-messages")), .unimplemented,
      containing: "more than one message"
    ) {
      $0 == .moreThanOneMessage
    }
    expectViolation(
      await Self.call(try channel("truncated-message")), .internalError, containing: "truncated"
    ) {
      if case .truncatedMessage(announced: 100, _) = $0 { return true } else { return false }
    }
  }

  func testHugeMessageIsRejectedAtTheLimitWithBoundedMemory() async throws {
    let channel = try channel("huge-message")
    let before = residentBytes()
    expectStatus(await Self.call(channel), .resourceExhausted, containing: "maxReceiveMessageSize")
    let growth = residentBytes() - before
    XCTAssertLessThan(
      growth, 48 << 20, "memory grew by \(growth >> 20) MiB for a rejected 100 MiB message")
  }

  func testGarbageInsteadOfHTTP2() async throws {
    let result = await Self.call(try channel("garbage"))
    guard case .failure(let error) = result else { return XCTFail("\(result)") }
    XCTAssertTrue("\(error)".contains("HTTP/1"), "\(error)")
  }

  func testServerThatStopsAnsweringPingsIsDeclaredDead() async throws {
    let start = ContinuousClock.now
    let channel = try channel("no-ping-ack") {
      $0.allowTestingTimings = true
      $0.keepaliveTime = .milliseconds(200)
      $0.keepaliveTimeout = .milliseconds(200)
      $0.keepaliveWithoutCalls = true
    }
    let closed = await waitForEvent { if case .closed = $0 { return true } else { return false } }
    let elapsed = ContinuousClock.now - start
    withExtendedLifetime(channel) {}
    guard case .closed(let error, _)? = closed else {
      return XCTFail("the connection was not declared dead")
    }
    XCTAssertTrue("\(error)".contains("keepalive"), "\(error)")
    XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(400))
    XCTAssertLessThan(
      elapsed, .milliseconds(400) + .seconds(1),
      "within keepaliveTime + keepaliveTimeout (+1 s slack)")
  }

  func testSocketClosedMidResponse() async throws {
    let result = await Self.call(try channel("close-mid-response"))
    expectStatus(result, .unavailable, containing: "closed the connection")
  }

  func testDeadlineExceededResetsTheStreamAndTheChannelStaysUsable() async throws {
    let channel = try channel("echo")
    let start = ContinuousClock.now
    expectStatus(
      await Self.call(channel, "/test.Echo/Never", timeout: .milliseconds(100)), .deadlineExceeded)
    XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(100))
    let after = await Self.call(channel)
    XCTAssertEqual(try after.get(), Array("hello".utf8))
  }

  func testCancellation() async throws {
    let channel = try channel("echo")
    let outcome = EventRecorder<Result<[UInt8], MilvexError>>()
    let handle = channel.unary(path: "/test.Echo/Never", request: [], timeout: .seconds(10)) {
      outcome.record($0)
    }
    await Self.roundTrip(channel)  // the call is now open on the server
    handle.cancel()
    handle.cancel()
    expectStatus(await Self.finish(outcome) ?? .success([]), .cancelled)

    // The async form: cancelling the task cancels the call.
    let task = Task.detached { () -> Result<[UInt8], MilvexError> in
      do {
        return .success(
          try await channel.unary(path: "/test.Echo/Never", request: [], timeout: .seconds(10)))
      } catch {
        return .failure(error as! MilvexError)
      }
    }
    // Cancelled whether the call has started yet or not: either way it ends CANCELLED.
    task.cancel()
    expectStatus(await task.value, .cancelled)
  }

  func testTenThousandCallsQueuedBehindTenStreamsCompleteInOrder() async throws {
    let channel = try channel("max-streams-10")
    let total = 10_000
    let order = Locked<[Int]>([])
    let failures = Atomic<Int>(0)
    let done = Latch()
    for index in 0..<total {
      channel.unary(
        path: "/test.Echo/Call", request: Array("\(index)".utf8), timeout: .seconds(120)
      ) { result in
        if case .failure = result { failures.add(1, ordering: .relaxed) }
        let count = order.withLock {
          $0.append(index); return $0.count
        }
        if count == total { done.open() }
      }
    }
    XCTAssertTrue(done.wait(timeout: .seconds(120)), "all calls completed")
    XCTAssertEqual(failures.load(ordering: .relaxed), 0)
    let completed = order.withLock { $0 }
    XCTAssertEqual(Set(completed).count, total, "each call completed exactly once")
    // With at most 10 streams open, a call can only overtake calls started less than 10 before it.
    let maxDisplacement = completed.enumerated().map { abs($0.offset - $0.element) }.max() ?? 0
    XCTAssertLessThan(maxDisplacement, 10, "calls were admitted in order")
  }

  func testClosingTheChannelFailsCallsWithDisconnected() async throws {
    let channel = try channel("echo")
    let pending = Self.begin(channel, "/test.Echo/Never")
    await Self.roundTrip(channel)  // the call is now open on the server
    channel.close()
    guard case .failure(let error)? = await Self.finish(pending), case .disconnected = error else {
      return XCTFail()
    }
    XCTAssertFalse(error.isRetriable)
    guard case .failure(.disconnected) = await Self.call(channel) else {
      return XCTFail("calls after close")
    }
  }

  func testLoopShutdownCompletesOpenCalls() async throws {
    let channel = try channel("echo")
    let pending = Self.begin(channel, "/test.Echo/Never")
    await Self.roundTrip(channel)  // the call is now open on the server
    await Task.detached { [loop] in loop!.shutdown() }.value
    guard case .failure(.eventLoopShutDown)? = await Self.finish(pending) else {
      return XCTFail("the open call must complete")
    }
    guard case .failure(.eventLoopShutDown) = await Self.call(channel) else {
      return XCTFail("calls after shutdown")
    }
  }

  func testConnectionRefusedNamesTheAddress() async throws {
    let port = freeLocalPort()
    let channel = try GRPCChannel.connect(
      configuration: GRPCChannelConfiguration(host: "localhost", port: port), loop: loop)
    let result = await Self.call(channel)
    expectStatus(result, .unavailable, containing: "refused")
    guard case .failure(.grpcStatus(let status)) = result else { return }
    XCTAssertTrue(status.message.contains("127.0.0.1:\(port)"), status.message)
  }

  func testHostNameIsResolvedWithCAres() async throws {
    let peer = try server("echo")
    var configuration = GRPCChannelConfiguration(host: "localhost", port: peer.port)
    configuration.tls = try channelTLS
    let channel = try GRPCChannel.connect(configuration: configuration, loop: loop)
    let result = await Self.call(channel)
    XCTAssertEqual(try result.get(), Array("hello".utf8))
  }

  func testInvalidConfigurationNamesTheField() {
    var configuration = GRPCChannelConfiguration(host: "127.0.0.1", port: 0)
    XCTAssertThrowsError(try GRPCChannel.connect(configuration: configuration, loop: loop)) {
      error in
      guard case .invalidArgument(let field, let message) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "port")
      XCTAssertTrue(message.contains("1...65535"))
    }
    configuration.port = 1
    configuration.keepaliveTime = .seconds(1)
    XCTAssertThrowsError(try GRPCChannel.connect(configuration: configuration, loop: loop)) {
      error in
      guard case .invalidArgument(let field, _) = error as? MilvexError else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(field, "keepaliveTime")
    }
  }
}

/// The process's resident set size in bytes (Linux /proc).
func residentBytes() -> Int {
  guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else {
    return 0
  }
  let fields = text.split(separator: " ")
  return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}
