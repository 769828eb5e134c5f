import Logging

/// What a channel tells its owner about its life. Delivered on the loop thread.
public enum ChannelEvent: Sendable, Equatable {
  /// The HTTP/2 handshake completed (the server's SETTINGS arrived): calls can run.
  case ready
  /// The server is going away (GOAWAY): calls already started may finish, no new call starts
  /// here. The owner should open a replacement channel. `tooManyPings` is true when the
  /// server asked for fewer keepalive PINGs (GOAWAY ENHANCE_YOUR_CALM "too_many_pings"): the
  /// replacement must already use ``GRPCChannelConfiguration/afterTooManyPings()``.
  case closing(MilvexError, tooManyPings: Bool)
  /// The channel is closed for good. `tooManyPings` is true when the server asked for fewer
  /// keepalive PINGs (GOAWAY ENHANCE_YOUR_CALM "too_many_pings"): use
  /// ``GRPCChannelConfiguration/afterTooManyPings()`` for the next connection.
  case closed(MilvexError, tooManyPings: Bool)
}

/// One gRPC-over-HTTP/2 connection: connect attempt, HTTP/2 session, keepalive and unary
/// calls. It never reconnects: a closed connection stays closed (the Connection layer replaces
/// it). The protocol logic lives in pure types (``HTTP2Session`` over nghttp2,
/// ``UnaryResponse``, ``Keepalive``); this class performs their I/O on the loop.
///
/// - Important: Loop-confined. Every callback runs on the loop thread.
///
/// The per-call state below is marked `@exclusivity(unchecked)`: Swift's dynamic exclusivity
/// checks cost about 3,000 instructions per call here (issue 11), and they guard against an
/// overlapping access *on one thread*, which loop confinement does not rule out by itself. It
/// is ruled out by construction: completions run only after the access that found the call
/// has ended (the HTTP/2 session returns events, handled after nghttp2 has returned), and
/// `UnaryResponse` is pure.
final class GRPCConnection {
  typealias Completion = (Result<[UInt8], MilvexError>) -> Void

  let loop: EventLoop
  let configuration: GRPCChannelConfiguration
  private let onEvent: (ChannelEvent) -> Void
  private var logger: Logger { configuration.logger }

  /// Where the connection is in its life; every decision about it is the machine's.
  @exclusivity(unchecked) private var lifecycle = GRPCConnectionLifecycle()
  /// Sent with every call; starts as the configuration's, the owner may replace it.
  var defaultMetadata: GRPCMetadata {
    get { defaultHeaders.metadata }
    set {
      defaultHeaders = (newValue, newValue.checked())
      (requestTemplate, defaultMetadataError) = Self.requestTemplate(
        configuration, defaults: defaultHeaders.checked)
    }
  }
  /// The defaults and their entries checked once (not per call).
  @exclusivity(unchecked) private var defaultHeaders:
    (metadata: GRPCMetadata, checked: GRPCMetadata.Checked)
  private var attempt: ConnectAttempt?
  /// The bytes to and from the server (Transport owns the socket).
  @exclusivity(unchecked) private var stream: (any ByteStream)?
  @exclusivity(unchecked) private var session: HTTP2Session?
  private var connectTimer: LoopTimer?
  private var keepaliveTimer: LoopTimer?
  /// The calls' deadlines, and the one timer that serves them.
  @exclusivity(unchecked) private var deadlines = CallDeadlines()
  @exclusivity(unchecked) private var deadlineTimer: LoopTimer?
  @exclusivity(unchecked) private var keepalive: Keepalive?
  @exclusivity(unchecked) private var sawSettings = false

  /// The request header fields that are the same for every call, laid out once.
  @exclusivity(unchecked) private var requestTemplate: RequestHeaderTemplate
  /// Why every call without metadata of its own fails (an invalid default entry), if one does.
  @exclusivity(unchecked) private var defaultMetadataError: MilvexError?
  /// A call's own metadata merged with the defaults (reused: no allocation per call).
  @exclusivity(unchecked) private var metadataScratch = HeaderBlock()
  /// The last timeout sent and its header value: calls mostly share one timeout.
  @exclusivity(unchecked) private var lastTimeout: (Duration, GRPCWireFormat.TimeoutValue)?
  @exclusivity(unchecked) private var flushScheduled = false
  /// The last request path the channel validated (it skips validating a repeated one).
  @exclusivity(unchecked) var lastValidPath = ""

  /// Started calls by stream id.
  @exclusivity(unchecked) private var streams = StreamTable<UnaryCall>()
  /// Calls waiting for the connection to be ready or for a stream slot, in order.
  @exclusivity(unchecked) private var waiting = AdmissionQueue<UnaryCall>()

  init(
    loop: EventLoop, configuration: GRPCChannelConfiguration,
    onEvent: @escaping (ChannelEvent) -> Void
  ) {
    self.loop = loop
    self.configuration = configuration
    self.onEvent = onEvent
    defaultHeaders = (configuration.defaultMetadata, configuration.defaultMetadata.checked())
    (requestTemplate, defaultMetadataError) = Self.requestTemplate(
      configuration, defaults: defaultHeaders.checked)
  }

  deinit {
    // Normally closed before; the stream closes its descriptor either way.
    stream?.close()
  }

  /// The fixed request fields of `configuration`'s connections, with `defaults`, and the
  /// error of the first invalid default entry.
  private static func requestTemplate(
    _ configuration: GRPCChannelConfiguration, defaults checked: GRPCMetadata.Checked
  ) -> (RequestHeaderTemplate, MilvexError?) {
    var pseudo = HeaderBlock()
    pseudo.add(":method", "POST")
    pseudo.add(":scheme", configuration.tls == nil ? "http" : "https")
    pseudo.add(":authority", configuration.effectiveAuthority)
    var fixed = HeaderBlock()
    fixed.add("content-type", "application/grpc")
    fixed.add("te", "trailers")
    fixed.add("user-agent", configuration.userAgent)
    var defaults = HeaderBlock()
    let error = checked.encode(into: &defaults, except: GRPCMetadata())
    return (RequestHeaderTemplate(pseudo: pseudo, fixed: fixed, defaults: defaults), error)
  }

  // MARK: - Connecting

  func start() {
    loop.assertInLoopThread()
    logger.debug(
      "opening TCP + HTTP/2 connection",
      metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)"])
    connectTimer = try? loop.scheduleTimer(after: configuration.connectTimeout) { [weak self] in
      guard let self else { return }
      if let stream = self.stream, !stream.isEstablished {
        return self.close(
          .tls(
            .handshakeTimedOut(after: self.configuration.connectTimeout),
            host: self.configuration.host, port: self.configuration.port))
      }
      self.close(
        .connection(
          reason:
            "connect timeout after \(self.configuration.connectTimeout) "
            + "while \(self.lifecycle.connectPhase)",
          host: self.configuration.host, port: self.configuration.port, retriable: true))
    }
    attempt = ConnectAttempt(
      loop: loop, host: configuration.host, port: configuration.port,
      address: configuration.connectAddress, nameServers: configuration.nameServers
    ) { [weak self] result in
      guard let self else { return }
      self.attempt = nil
      switch result {
      case .success(let socket): self.socketConnected(socket)
      case .failure(let error): self.close(error)
      }
    }
  }

  private func socketConnected(_ socket: ConnectedSocket) {
    let tcp = TCPStream(loop: loop, fileDescriptor: socket.fileDescriptor)
    guard case .startSession = lifecycle.handle(.socketConnected) else { return tcp.close() }
    let stream: any ByteStream
    do {
      stream = try makeStream(over: tcp)
    } catch {
      tcp.close()
      return close(error)
    }
    self.stream = stream
    do {
      let settings = HTTP2Session.Settings(
        initialStreamWindow: Int32(configuration.initialStreamWindow),
        initialConnectionWindow: Int32(configuration.initialConnectionWindow))
      session = try HTTP2Session(settings: settings)
      try stream.start { [weak self] event in self?.streamEvent(event) }
    } catch {
      return close(error)
    }
    scheduleFlush()
  }

  /// The plain TCP stream, or TLS over it when the configuration asks for TLS.
  private func makeStream(over tcp: TCPStream) throws(MilvexError) -> any ByteStream {
    guard let tls = configuration.tls else { return tcp }
    if !tls.verifyCertificate {
      logger.warning(
        """
        TLS certificate verification is OFF: anyone who can intercept this connection \
        can read and change it
        """,
        metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)"])
    }
    do {
      return try TLSStream(inner: tcp, context: TLSContext.shared(tls), host: configuration.host)
    } catch {
      throw .tls(error, host: configuration.host, port: configuration.port)
    }
  }

  /// Does what the lifecycle machine decided.
  private func perform(_ action: GRPCConnectionLifecycle.Action) {
    switch action {
    case .none, .startSession:
      return
    case .becomeReady:
      connectTimer?.cancel()
      connectTimer = nil
      startKeepalive()
      logger.debug(
        "ready", metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)"])
      onEvent(.ready)
      startWaitingCalls()
    case .startDraining(let reason, let tooManyPings):
      // Calls not started yet will never start here.
      failWaitingCalls(
        .status(.unavailable, "the server is going away (GOAWAY) before the call started"))
      onEvent(.closing(reason, tooManyPings: tooManyPings))
    case .close(let error, let tooManyPings, let wasReady):
      tearDown(error, tooManyPings: tooManyPings, wasReady: wasReady)
    }
  }

  // MARK: - Calls

  /// Starts `call`, or queues it until the connection is ready or a stream slot is free.
  /// `startedNow`: the call was created in this turn of the loop (its deadline is its timeout
  /// from now, so no clock is read to send it).
  func startCall(_ call: UnaryCall, startedNow: Bool = false) {
    loop.assertInLoopThread()
    switch lifecycle.admission {
    case .reject(let error):
      return complete(call, .failure(error))
    case .wait:
      waiting.append(call)
    case .start:
      if !waiting.isEmpty || !hasFreeStreamSlot {
        waiting.append(call)
      } else {
        submit(call, startedNow: startedNow)
      }
    }
    if let deadline = call.deadline, !call.isCompleted {
      call.deadlineTracked = true
      if deadlines.add(call, deadline: deadline) { armDeadlineTimer() }
    }
  }

  /// Keeps the one deadline timer due no later than the earliest deadline of a waiting call
  /// (``CallDeadlines/timerChange(timerScheduled:)`` decides).
  private func armDeadlineTimer() {
    switch deadlines.timerChange(timerScheduled: deadlineTimer?.isScheduled == true) {
    case .keep:
      return
    case .stop:
      deadlineTimer?.stop()
    case .arm(let due):
      let delay = due - loop.now
      if let deadlineTimer {
        deadlineTimer.rearm(after: delay)
      } else {
        deadlineTimer = try? loop.scheduleTimer(after: max(.zero, delay)) { [weak self] in
          self?.deadlinesPassed()
        }
      }
    }
  }

  /// Fails the calls whose deadline has come (DEADLINE_EXCEEDED, stream reset).
  private func deadlinesPassed() {
    for call in deadlines.removeExpired(now: loop.now) {
      abort(
        call,
        .status(.deadlineExceeded, "deadline of \(call.timeout.map { "\($0)" } ?? "") exceeded"),
        deadlineAlreadyRemoved: true)
    }
    armDeadlineTimer()
  }

  /// Cancels `call` if it has not completed: it fails with CANCELLED and its stream is reset.
  func cancel(_ call: UnaryCall) {
    abort(call, .status(.cancelled, "the call was cancelled by the client"))
  }

  private var hasFreeStreamSlot: Bool {
    UInt32(clamping: streams.count) < (session?.remoteMaxConcurrentStreams ?? 0)
  }

  private func startWaitingCalls() {
    while lifecycle.state == .ready, let session,
      let call = waiting.next(
        openStreams: streams.count, limit: session.remoteMaxConcurrentStreams,
        isAbandoned: \.isCompleted)
    {
      submit(call)
    }
  }

  /// Sends `call`'s HEADERS (and lets the session read its body). `startedNow` says the call
  /// was created in this same turn of the loop, so its whole timeout is what remains.
  private func submit(_ call: UnaryCall, startedNow: Bool = false) {
    guard let session else { return }
    let timeout = call.timeout.map { timeoutValue(for: call, $0, startedNow: startedNow) }
    var ownMetadata: HeaderBlock?
    if !call.metadata.isEmpty {
      // The call's own entries, then the defaults it does not override.
      metadataScratch.removeAll()
      if let error = call.metadata.encode(into: &metadataScratch)
        ?? defaultHeaders.checked.encode(into: &metadataScratch, except: call.metadata)
      {
        return complete(call, .failure(error))
      }
      ownMetadata = metadataScratch
    } else if let defaultMetadataError {
      return complete(call, .failure(defaultMetadataError))
    }
    let submitted = requestTemplate.withRequestFields(
      path: call.path, timeout: timeout, metadata: ownMetadata
    ) { fields, count in
      session.submitRequest(fields: fields, count: count, body: call)
    }
    switch submitted {
    case .success(let streamID):
      call.streamID = streamID
      streams.insert(call, id: streamID)
      scheduleFlush()
    case .failure(let error):
      complete(call, .failure(error))
    }
  }

  /// The `grpc-timeout` value of `call`: its remaining time, rounded up.
  private func timeoutValue(
    for call: UnaryCall, _ timeout: Duration, startedNow: Bool
  ) -> GRPCWireFormat.TimeoutValue {
    guard startedNow else {
      return GRPCWireFormat.TimeoutValue(call.remainingTime(now: loop.now) ?? timeout)
    }
    if let (last, value) = lastTimeout, last == timeout { return value }
    let value = GRPCWireFormat.TimeoutValue(timeout)
    lastTimeout = (timeout, value)
    return value
  }

  /// Fails `call` with `error` (deadline, cancel), resetting its stream if it has one.
  private func abort(_ call: UnaryCall, _ error: MilvexError, deadlineAlreadyRemoved: Bool = false)
  {
    guard !call.isCompleted else { return }
    if deadlineAlreadyRemoved { call.deadlineTracked = false }
    if let streamID = call.streamID, streams[streamID] === call {
      streams.remove(streamID)
      session?.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
      scheduleFlush()
    }
    complete(call, .failure(error))
    startWaitingCalls()
    closeIfDrained()
  }

  /// Completes `call` exactly once. Never called from inside nghttp2 (the session returns
  /// events), so the completion may start, cancel or close anything.
  private func complete(_ call: UnaryCall, _ result: Result<[UInt8], MilvexError>) {
    guard call.markCompleted() else { return }
    if call.deadlineTracked {
      call.deadlineTracked = false
      deadlines.callCompleted()
    }
    call.deliver(result)
  }

  // MARK: - HTTP/2 events

  /// Acts on what the session reported, in order; stops if a completion closed the connection.
  private func handle(_ events: [HTTP2Event], from session: HTTP2Session) {
    for event in events {
      guard lifecycle.state != .closed else { return }
      switch event {
      case .headers(let streamID, let fields, let endStream):
        guard let call = streams[streamID] else { continue }
        for index in fields {
          session.withHeaderField(index) { name, value in
            call.response.header(name: name, value: value)
          }
        }
        handle(call, call.response.headersComplete(endStream: endStream))
      case .data(let streamID, let bytes):
        guard let call = streams[streamID] else { continue }
        handle(call, call.response.data(bytes))
      case .streamClosed(let streamID, let errorCode):
        guard let call = streams.remove(streamID) else { continue }
        if let outcome = call.response.streamClosed(errorCode: errorCode) {
          handle(call, outcome, streamStillOpen: false)
        }
      case .settings:
        sawSettings = true
        perform(lifecycle.handle(.settingsReceived))
      case .pingAcknowledged:
        pingAcknowledged()
      case .goAway(let lastStreamID, let errorCode):
        goAway(lastStreamID: lastStreamID, errorCode: errorCode, debugData: session.goAwayDebugData)
      }
    }
  }

  private func handle(
    _ call: UnaryCall, _ outcome: UnaryResponse.Outcome?, streamStillOpen: Bool = true
  ) {
    switch outcome {
    case .none:
      return
    case .success(let message):
      complete(call, .success(message))
    case .failure(let error, let resetStream):
      if resetStream, streamStillOpen, let streamID = call.streamID {
        session?.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        streams.remove(streamID)
      }
      complete(call, .failure(error))
    }
  }

  private func goAway(lastStreamID: Int32, errorCode: UInt32, debugData: [UInt8]) {
    let debug = String(decoding: debugData, as: UTF8.self)
    let tooManyPings = errorCode == HTTP2ErrorCode.enhanceYourCalm && debug == "too_many_pings"
    if tooManyPings {
      logger.warning(
        """
        server sent GOAWAY too_many_pings; the next connection will use keepaliveTime \
        \(configuration.afterTooManyPings().keepaliveTime)
        """,
        metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)"])
    }
    let reason = MilvexError.connection(
      reason:
        "the server sent GOAWAY (error code \(errorCode)"
        + "\(debug.isEmpty ? "" : ", \"\(debug)\""), last stream \(lastStreamID))",
      host: configuration.host, port: configuration.port, retriable: true)
    perform(lifecycle.handle(.goAway(reason: reason, tooManyPings: tooManyPings)))
  }

  private func pingAcknowledged() {
    guard var keepalive else { return }
    let action = keepalive.pingAcknowledged(at: loop.now)
    self.keepalive = keepalive
    perform(action)
  }

  // MARK: - Keepalive

  private func startKeepalive() {
    let machine = Keepalive(
      time: configuration.keepaliveTime, timeout: configuration.keepaliveTimeout,
      permitWithoutCalls: configuration.keepaliveWithoutCalls, now: loop.now)
    keepalive = machine
    keepaliveTimer = try? loop.scheduleTimer(after: machine.firstCheckDelay) { [weak self] in
      guard let self, var keepalive = self.keepalive else { return }
      let action = keepalive.timerFired(at: self.loop.now, openCalls: self.streams.count)
      self.keepalive = keepalive
      self.perform(action)
    }
  }

  private func perform(_ action: Keepalive.Action) {
    switch action {
    case .checkAgain(let delay):
      keepaliveTimer?.rearm(after: delay)
    case .sendPing(let delay):
      session?.ping()
      scheduleFlush()
      keepaliveTimer?.rearm(after: delay)
    case .connectionDead:
      logger.warning(
        "keepalive timeout",
        metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)"])
      close(
        .connection(
          reason:
            "keepalive timeout: no PING acknowledgement within \(configuration.keepaliveTimeout)",
          host: configuration.host, port: configuration.port, retriable: true))
    }
  }

  // MARK: - Bytes from and to the server

  private func streamEvent(_ event: ByteStreamEvent) {
    switch event {
    case .received(let bytes):
      received(bytes)
    case .drained:
      flush()
    case .closed(.tls(let failure)):
      close(.tls(failure, host: configuration.host, port: configuration.port))
    case .closed(.endOfFile) where configuration.tls == nil && !sawSettings:
      close(
        .connection(
          reason:
            "the server closed the connection before its HTTP/2 SETTINGS "
            + "(if this is a TLS port, use https://)",
          host: configuration.host, port: configuration.port, retriable: true))
    case .closed(let reason):
      close(
        .connection(
          reason: reason.description, host: configuration.host, port: configuration.port,
          retriable: true))
    }
  }

  private func received(_ bytes: UnsafeRawBufferPointer) {
    guard lifecycle.state != .closed else { return }
    keepalive?.readObserved(at: loop.now)
    if !sawSettings, let error = nonHTTP2Answer(bytes) { return close(error) }
    guard let session else { return }
    let outcome = session.receive(bytes)
    handle(outcome.events, from: session)
    if let error = outcome.error { return close(error) }
    guard lifecycle.state != .closed else { return }
    startWaitingCalls()
    scheduleFlush()
    closeIfDrained()
  }

  /// A server that answers in HTTP/1 (or anything else) instead of HTTP/2 gets a clear error.
  private func nonHTTP2Answer(_ bytes: UnsafeRawBufferPointer) -> MilvexError? {
    // A TLS record (alert or handshake, version 3.x): a TLS port spoken to in plaintext.
    if configuration.tls == nil, bytes.count >= 2, bytes[0] == 0x15 || bytes[0] == 0x16,
      bytes[1] == 0x03
    {
      return .protocolViolation(
        "\(configuration.host):\(configuration.port) answered with TLS, not plaintext HTTP/2; "
          + "use https:// (TLS) for this port")
    }
    guard bytes.count >= 5, bytes[0..<5].elementsEqual("HTTP/".utf8) else { return nil }
    let line = bytes[0..<min(bytes.count, 64)].prefix { $0 != 13 && $0 != 10 }
    return .protocolViolation(
      "\(configuration.host):\(configuration.port) answered in HTTP/1 "
        + "(\"\(String(decoding: line, as: UTF8.self))\"), "
        + "not HTTP/2; is this a gRPC port?")
  }

  private func scheduleFlush() {
    guard !flushScheduled, lifecycle.state != .closed, session != nil else { return }
    flushScheduled = true
    loop.runBeforeNextPoll(self)
  }

  /// Moves nghttp2's pending frames to the stream in one `send` (one `write`); what the socket
  /// does not take yet leaves when it can (the stream reports `.drained`, which flushes again).
  fileprivate func flush() {
    guard lifecycle.state != .closed, let session, let stream else { return }
    var outcome = HTTP2Session.Outcome(events: [])
    stream.send { output in outcome = session.drainOutput(into: &output) }
    handle(outcome.events, from: session)
    if let error = outcome.error { return close(error) }
    guard lifecycle.state != .closed else { return }
    // A final GOAWAY must leave before the socket closes.
    if !stream.hasPendingOutput { closeIfDrained() }
  }

  /// Closes once the session is over (GOAWAY with every stream done, or a protocol error), or
  /// once a retired connection has no call left.
  private func closeIfDrained() {
    guard lifecycle.state != .closed, let session else { return }
    // Runs twice per call: skip the event when the machine's table says it changes nothing
    // (a session that is not finished matters only while draining).
    guard lifecycle.state == .draining || session.isFinished || retiring else { return }
    if retiring, retirementGraceOver, lifecycle.state == .ready, streams.count == 0,
      waiting.isEmpty
    {
      // Retriable: a call that still reaches this channel belongs on the connection's new one.
      return close(
        .status(
          .unavailable,
          "the channel was recycled (replaced by a newer one); use the connection's current channel"
        ))
    }
    perform(
      lifecycle.handle(
        .quiet(
          sessionFinished: session.isFinished, openStreams: streams.count,
          sessionError: session.lastError)))
  }

  // MARK: - Closing

  /// Whether the owner retired this connection (channel recycling): it takes no new call from
  /// its owner any more, finishes the ones it has, and closes once none is left.
  @exclusivity(unchecked) private var retiring = false
  /// Whether the retired connection's grace period is over: calls sent by holders of the old
  /// channel just before it was replaced (from another thread, still in the submission queue)
  /// are served, not failed.
  @exclusivity(unchecked) private var retirementGraceOver = false
  private var retirementTimer: LoopTimer?

  /// How long a retired connection stays open at least.
  static let retirementGrace: Duration = .seconds(1)

  /// Retires the connection: after ``retirementGrace``, it closes as soon as no call is open or
  /// waiting. Calls still reaching it meanwhile are served. Idempotent.
  func retire() {
    loop.assertInLoopThread()
    guard !retiring else { return }
    retiring = true
    retirementTimer = try? loop.scheduleTimer(after: Self.retirementGrace) { [weak self] in
      guard let self else { return }
      self.retirementTimer = nil
      self.retirementGraceOver = true
      if self.lifecycle.state == .ready { self.closeIfDrained() }
    }
    if retirementTimer == nil { retirementGraceOver = true }
  }

  /// Closes the connection for good: stops timers and the watcher, closes the socket, and
  /// fails every started and waiting call with `error` (retriable `UNAVAILABLE` for a
  /// connection failure). Idempotent.
  func close(_ error: MilvexError) {
    perform(lifecycle.handle(.failed(error)))
  }

  private func tearDown(_ error: MilvexError, tooManyPings: Bool, wasReady: Bool) {
    retirementTimer?.cancel()
    retirementTimer = nil
    attempt?.cancel()
    attempt = nil
    connectTimer?.cancel()
    connectTimer = nil
    keepaliveTimer?.cancel()
    keepaliveTimer = nil
    deadlineTimer?.cancel()
    deadlineTimer = nil
    deadlines.removeAll()
    keepalive = nil
    stream?.close()
    stream = nil
    session = nil
    let callError = GRPCConnectionLifecycle.callError(closedBy: error, "the connection closed")
    let started = streams.elements
    streams.removeAll()
    for call in started { complete(call, .failure(callError)) }
    failWaitingCalls(callError)
    if wasReady {
      logger.debug("closed", metadata: ["reason": "\(error)"])
    }
    onEvent(.closed(error, tooManyPings: tooManyPings))
  }

  private func failWaitingCalls(_ error: MilvexError) {
    for call in waiting.removeAll() { complete(call, .failure(error)) }
  }

  /// Whether the connection can run calls now.
  var isReady: Bool { lifecycle.state == .ready }
  var isClosed: Bool { lifecycle.state == .closed }
  var openStreamCount: Int { streams.count }
}

extension GRPCConnection: BeforePollTask {
  /// The flush ``scheduleFlush()`` asked for.
  func runBeforePoll() {
    flushScheduled = false
    flush()
  }
}
