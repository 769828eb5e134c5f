/// A gRPC channel over one HTTP/2 connection, usable from any thread.
///
/// `GRPCChannel` is the `Sendable` handle; the connection itself lives on its ``EventLoop``
/// and every method hands work to it through the submission queue. A channel does not
/// reconnect: once ``ChannelEvent/closed(_:tooManyPings:)`` was reported, calls fail with
/// retriable `UNAVAILABLE` (the Connection layer replaces the channel).
///
/// Keep a reference while you use the channel: releasing the last one closes it.
///
/// Calls made before the channel is ready wait for it (bounded by their deadline); calls beyond
/// the server's `MAX_CONCURRENT_STREAMS` wait in order for a free stream.
public final class GRPCChannel: Sendable {
  /// The event loop the channel's connection lives on; `onEvent` and completions run on its
  /// thread.
  public let loop: EventLoop
  /// The configuration the channel was connected with (already validated).
  public let configuration: GRPCChannelConfiguration
  private let connection: LoopBound<GRPCConnection?>

  private init(loop: EventLoop, configuration: GRPCChannelConfiguration) {
    self.loop = loop
    self.configuration = configuration
    self.connection = LoopBound(nil, loop: loop)
  }

  /// Releasing the last reference closes the channel, so that no socket outlives its handle:
  /// keep the channel while you use it.
  deinit {
    let connection = self.connection
    let loop = self.loop
    try? loop.execute {
      guard let live = connection.value else { return }
      loop.removeShutdownHandler(of: live)
      live.close(.disconnected(reason: "the GRPCChannel was released by its owner"))
      connection.value = nil
    }
  }

  /// Starts connecting to `configuration.host:port` and returns at once.
  ///
  /// - Parameters:
  ///   - configuration: where and how to connect (``GRPCChannelConfiguration``); validated
  ///     here.
  ///   - loop: the event loop the channel's connection lives on; `onEvent` and completions run
  ///     on its thread.
  ///   - onEvent: told when the channel is ready, going away and closed.
  /// - Important: Callable from any thread; `onEvent` runs on the loop thread. On the loop
  ///   thread the connection starts before this returns.
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for a bad configuration,
  ///   ``MilvexError/eventLoopShutDown(operation:)`` if the loop has shut down.
  public static func connect(
    configuration: GRPCChannelConfiguration, loop: EventLoop,
    onEvent: (@Sendable (ChannelEvent) -> Void)? = nil
  ) throws(MilvexError) -> GRPCChannel {
    try configuration.validate()
    let channel = GRPCChannel(loop: loop, configuration: configuration)
    if loop.inLoopThread {
      channel.startOnLoop(onEvent: onEvent ?? { _ in })
    } else {
      try loop.execute { channel.startOnLoop(onEvent: onEvent ?? { _ in }) }
    }
    return channel
  }

  /// Loop-thread form of ``connect(configuration:loop:onEvent:)`` for the Connection layer:
  /// the connection starts before this returns, and `onEvent` need not be `Sendable`.
  ///
  /// - Important: Loop thread only; `onEvent` runs on the loop thread.
  static func connectOnLoop(
    configuration: GRPCChannelConfiguration, loop: EventLoop,
    onEvent: @escaping (ChannelEvent) -> Void
  ) throws(MilvexError) -> GRPCChannel {
    loop.preconditionInLoopThread()
    try configuration.validate()
    let channel = GRPCChannel(loop: loop, configuration: configuration)
    channel.startOnLoop(onEvent: onEvent)
    return channel
  }

  private func startOnLoop(onEvent: @escaping (ChannelEvent) -> Void) {
    let connection = GRPCConnection(loop: loop, configuration: configuration) { event in
      onEvent(event)
    }
    self.connection.value = connection
    loop.onShutdown(of: connection) { [weak connection] in
      connection?.close(.eventLoopShutDown(operation: "gRPC call"))
    }
    connection.start()
  }

  // MARK: - Unary calls

  /// Sends one request message to `path` (`/package.Service/Method`) and delivers the one
  /// response message, or the error, to `completion` exactly once.
  ///
  /// - Parameters:
  ///   - path: the method to call, `/package.Service/Method`.
  ///   - request: the serialized request message (not length-prefixed).
  ///   - metadata: custom headers; `-bin` keys are base64-encoded.
  ///   - timeout: the call's deadline, counted from now; sent as `grpc-timeout` and enforced by
  ///     a loop timer (`DEADLINE_EXCEEDED`, the stream is reset) even if the server never answers.
  ///   - completion: gets the serialized response message or the error, exactly once.
  /// - Returns: a handle to cancel the call.
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread if the loop has shut down (with
  ///   ``MilvexError/eventLoopShutDown(operation:)``).
  @discardableResult
  public func unary(
    path: String, request: [UInt8], metadata: GRPCMetadata = GRPCMetadata(),
    timeout: Duration? = nil,
    completion: @escaping @Sendable (Result<[UInt8], MilvexError>) -> Void
  ) -> CallHandle {
    let handle = CallHandle(loop: loop)
    start(
      path: path, request: request, metadata: metadata, timeout: timeout, handle: handle,
      completion: completion)
    return handle
  }

  /// `async` form of ``unary(path:request:metadata:timeout:completion:)``. Cancelling the task
  /// cancels the call (`CANCELLED`).
  ///
  /// - Important: Callable from any task.
  /// - Throws: ``MilvexError``.
  public func unary(
    path: String, request: [UInt8], metadata: GRPCMetadata = GRPCMetadata(),
    timeout: Duration? = nil
  ) async throws(MilvexError) -> [UInt8] {
    let handle = CallHandle(loop: loop)
    let result = await withTaskCancellationHandler {
      await withCheckedContinuation {
        (continuation: CheckedContinuation<Result<[UInt8], MilvexError>, Never>) in
        start(path: path, request: request, metadata: metadata, timeout: timeout, handle: handle) {
          continuation.resume(returning: $0)
        }
      }
    } onCancel: {
      handle.cancel()
    }
    return try result.get()
  }

  /// The loop-thread form of ``unary(path:request:metadata:timeout:completion:)``: no
  /// allocation beyond the call itself (the handle is a value).
  fileprivate func unaryOnLoop(
    path: String, request: [UInt8], metadata: GRPCMetadata, timeout: Duration?,
    completion: @escaping (Result<[UInt8], MilvexError>) -> Void
  ) -> LoopView.Call {
    loop.assertInLoopThread()
    let call = makeCall(
      path: path, request: request, metadata: metadata, timeout: timeout,
      startedAt: loop.now, completion: completion)
    guard let call else { return LoopView.Call(call: nil, channel: nil) }
    guard let connection = connection.value else {
      completion(.failure(.status(.unavailable, "the channel has not started")))
      return LoopView.Call(call: nil, channel: nil)
    }
    connection.startCall(call, startedNow: true)
    return LoopView.Call(call: call, channel: self)
  }

  private func start(
    path: String, request: [UInt8], metadata: GRPCMetadata, timeout: Duration?, handle: CallHandle,
    completion: @escaping @Sendable (Result<[UInt8], MilvexError>) -> Void
  ) {
    let startedAt = loop.now
    do {
      try loop.execute { [self] in
        guard !handle.token.value.cancelRequested else {
          return completion(.failure(.status(.cancelled, "the call was cancelled by the client")))
        }
        guard
          let call = makeCall(
            path: path, request: request, metadata: metadata, timeout: timeout,
            startedAt: startedAt, completion: completion)
        else { return }
        guard let connection = connection.value else {
          return completion(.failure(.status(.unavailable, "the channel has not started")))
        }
        handle.token.value.call = call
        handle.token.value.connection = connection
        connection.startCall(call)
      }
    } catch {
      completion(.failure(error))
    }
  }

  /// Validates the arguments; on error completes at once and returns nil.
  private func makeCall(
    path: String, request: [UInt8], metadata: GRPCMetadata, timeout: Duration?,
    startedAt: ContinuousClock.Instant, completion: @escaping (Result<[UInt8], MilvexError>) -> Void
  ) -> UnaryCall? {
    // Calls mostly repeat a few paths: one that passed is not walked again on this connection.
    let connection = self.connection.value
    if path != connection?.lastValidPath {
      guard path.hasPrefix("/"), GRPCMetadata.all(path.utf8, { $0 > 0x20 && $0 < 0x7F }) else {
        completion(
          .failure(
            .invalidArgument(
              field: "path", message: "must look like /package.Service/Method (got \"\(path)\")")))
        return nil
      }
      connection?.lastValidPath = path
    }
    if let timeout, timeout <= .zero {
      completion(
        .failure(.invalidArgument(field: "timeout", message: "must be positive (got \(timeout))")))
      return nil
    }
    guard request.count <= configuration.maxSendMessageSize else {
      completion(
        .failure(
          .status(
            .resourceExhausted,
            "request message of \(request.count) bytes exceeds maxSendMessageSize "
              + "(\(configuration.maxSendMessageSize) bytes)"
          )))
      return nil
    }
    return UnaryCall(
      path: path, message: request, metadata: metadata, timeout: timeout, startedAt: startedAt,
      maxReceiveMessageSize: configuration.maxReceiveMessageSize, completion: completion)
  }

  // MARK: - State and closing

  /// Closes the channel: every started and waiting call fails with the non-retriable
  /// ``MilvexError/disconnected(reason:)``; later calls fail the same way. Idempotent.
  ///
  /// - Important: Callable from any thread. Returns before the close happened (on the loop
  ///   thread, ``LoopView/close()`` closes at once).
  public func close() {
    try? loop.execute { [self] in onLoop.close() }
  }

  /// Whether the channel is ready for calls, answered on the loop thread.
  ///
  /// - Parameter completion: gets the answer, once.
  /// - Important: Callable from any thread. `completion` runs on the loop thread, or at once on
  ///   the calling thread with `false` if the loop has shut down.
  public func isReady(_ completion: @escaping @Sendable (Bool) -> Void) {
    do {
      try loop.execute { [self] in completion(onLoop.isReady) }
    } catch {
      completion(false)
    }
  }

  /// `async` form of ``isReady(_:)``.
  ///
  /// - Important: Callable from any task.
  public func isReady() async -> Bool {
    await withCheckedContinuation { continuation in
      isReady { continuation.resume(returning: $0) }
    }
  }

  // MARK: - On the loop thread

  /// The channel's loop-thread forms, for code that runs on the channel's loop (callbacks,
  /// timers, layers built on the loop): no hop through the submission queue, and completions
  /// need not be `Sendable`.
  ///
  /// - Important: Use it on the loop thread only (checked in debug builds).
  public var onLoop: LoopView { LoopView(channel: self) }

  /// A ``GRPCChannel`` as seen from its loop thread. Not `Sendable`: it must not leave the loop.
  public struct LoopView {
    fileprivate let channel: GRPCChannel

    /// Starts a unary call, as ``GRPCChannel/unary(path:request:metadata:timeout:completion:)``
    /// does from any thread.
    ///
    /// - Returns: the call, to cancel it on the loop thread.
    /// - Important: Loop thread only; `completion` runs on the loop thread. An argument error
    ///   (bad path, timeout or size) is delivered before this returns.
    @discardableResult
    public func unary(
      path: String, request: [UInt8], metadata: GRPCMetadata = GRPCMetadata(),
      timeout: Duration? = nil,
      completion: @escaping (Result<[UInt8], MilvexError>) -> Void
    ) -> Call {
      channel.unaryOnLoop(
        path: path, request: request, metadata: metadata, timeout: timeout,
        completion: completion)
    }

    /// A call started by ``unary(path:request:metadata:timeout:completion:)``, to cancel on the
    /// loop thread. A value: it keeps the call's state and the channel alive while you hold it.
    public struct Call {
      fileprivate let call: UnaryCall?
      fileprivate let channel: GRPCChannel?

      /// Cancels the call at once: it completes with `CANCELLED` (unless it completed before)
      /// and its HTTP/2 stream is reset. Idempotent.
      ///
      /// - Important: Loop thread only.
      public func cancel() {
        guard let call, let channel else { return }
        channel.loop.assertInLoopThread()
        channel.connection.value?.cancel(call)
      }
    }

    /// Closes the channel at once (see ``GRPCChannel/close()``). Idempotent.
    ///
    /// - Important: Loop thread only.
    public func close() {
      channel.loop.assertInLoopThread()
      guard let connection = channel.connection.value else { return }
      channel.loop.removeShutdownHandler(of: connection)
      connection.close(.disconnected(reason: "the channel was closed by its owner"))
    }

    /// Retires the channel (channel recycling): after a grace period of 1 s, it closes by itself
    /// as soon as it has no call left. Calls made on it meanwhile are still served; a call that
    /// reaches it after it closed fails with a retriable `UNAVAILABLE`. Idempotent.
    ///
    /// - Important: Loop thread only.
    public func retire() {
      channel.loop.assertInLoopThread()
      channel.connection.value?.retire()
    }

    /// Replaces the metadata sent with every later call (a call's own entries win).
    ///
    /// - Important: Loop thread only.
    public func setDefaultMetadata(_ metadata: GRPCMetadata) {
      channel.loop.assertInLoopThread()
      channel.connection.value?.defaultMetadata = metadata
    }

    /// Whether the channel is ready for calls (the HTTP/2 handshake completed, no GOAWAY).
    ///
    /// - Important: Loop thread only.
    public var isReady: Bool {
      channel.loop.assertInLoopThread()
      return channel.connection.value?.isReady ?? false
    }
  }
}

@available(*, unavailable, message: "a loop view must stay on its loop thread")
extension GRPCChannel.LoopView: Sendable {}

@available(*, unavailable, message: "a loop call must stay on its loop thread")
extension GRPCChannel.LoopView.Call: Sendable {}

/// Cancels one call. `Sendable`: ``cancel()`` may be called from any thread, any number of
/// times; a call that already completed is not affected.
public final class CallHandle: Sendable {
  struct Token {
    var call: UnaryCall?
    weak var connection: GRPCConnection?
    var cancelRequested = false
  }

  let loop: EventLoop
  let token: LoopBound<Token>

  init(loop: EventLoop) {
    self.loop = loop
    self.token = LoopBound(Token(), loop: loop)
  }

  /// Cancels the call: it completes with `CANCELLED` (unless it completed before) and its
  /// HTTP/2 stream is reset.
  ///
  /// - Important: Callable from any thread.
  public func cancel() {
    try? loop.execute { [self] in cancelOnLoop() }
  }

  private func cancelOnLoop() {
    token.value.cancelRequested = true
    if let call = token.value.call, let connection = token.value.connection {
      connection.cancel(call)
    }
    token.value.call = nil
  }
}
