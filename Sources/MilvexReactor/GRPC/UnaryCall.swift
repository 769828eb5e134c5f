/// One unary call on a ``GRPCConnection``: the request to send, the response being parsed,
/// its deadline, and the completion that must run exactly once.
///
/// - Important: Loop-confined. The completion runs on the loop thread. Its mutable state is
///   `@exclusivity(unchecked)` for the reason given on ``GRPCConnection``: touched per call on
///   the loop thread only, never while another access to it is open.
final class UnaryCall: HTTP2RequestBody {
  let path: String
  let metadata: GRPCMetadata
  let timeout: Duration?
  let deadline: ContinuousClock.Instant?
  @exclusivity(unchecked) var response: UnaryResponse
  @exclusivity(unchecked) var streamID: Int32?

  @exclusivity(unchecked) private var message: [UInt8]
  private let prefix: (UInt8, UInt8, UInt8, UInt8, UInt8)
  /// Bytes of prefix + message already handed to nghttp2.
  @exclusivity(unchecked) private var bodyOffset = 0
  @exclusivity(unchecked) private var completion: GRPCConnection.Completion?
  @exclusivity(unchecked) private(set) var isCompleted = false
  /// Whether the connection's ``CallDeadlines`` counts this call as waiting.
  @exclusivity(unchecked) var deadlineTracked = false

  init(
    path: String, message: [UInt8], metadata: GRPCMetadata, timeout: Duration?,
    startedAt: ContinuousClock.Instant, maxReceiveMessageSize: Int,
    completion: @escaping GRPCConnection.Completion
  ) {
    self.path = path
    self.message = message
    self.metadata = metadata
    self.timeout = timeout
    self.deadline = timeout.map { startedAt + $0 }
    self.response = UnaryResponse(maxMessageSize: maxReceiveMessageSize)
    self.completion = completion
    let length = UInt32(truncatingIfNeeded: message.count)
    prefix = (
      0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF),
      UInt8(length & 0xFF)
    )
  }

  /// Time left before the deadline at `now` (never negative), or nil without a deadline.
  func remainingTime(now: ContinuousClock.Instant) -> Duration? {
    deadline.map { max(.zero, $0 - now) }
  }

  /// Writes the next request bytes (5-byte gRPC prefix, then the message) into `buffer`: the
  /// HTTP/2 session holds the call as its stream's body and reads it as flow control allows.
  func read(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, ended: Bool) {
    // Completed (deadline, cancel): its stream is being reset, and its bytes are gone.
    if isCompleted { return (0, true) }
    var written = 0
    while bodyOffset < 5, written < buffer.count {
      let byte: UInt8
      switch bodyOffset {
      case 0: byte = prefix.0
      case 1: byte = prefix.1
      case 2: byte = prefix.2
      case 3: byte = prefix.3
      default: byte = prefix.4
      }
      buffer[written] = byte
      written += 1
      bodyOffset += 1
    }
    let messageOffset = bodyOffset - 5
    let take = min(buffer.count - written, message.count - max(0, messageOffset))
    if take > 0 {
      message.withUnsafeBytes { source in
        UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + take)])
          .copyMemory(
            from: UnsafeRawBufferPointer(rebasing: source[messageOffset..<(messageOffset + take)]))
      }
      written += take
      bodyOffset += take
    }
    return (written, bodyOffset == 5 + message.count)
  }

  /// Marks the call completed; returns false if it already was (the caller must not deliver).
  func markCompleted() -> Bool {
    guard !isCompleted else { return false }
    isCompleted = true
    // The connection's deadline heap may hold the call a while longer: keep nothing big.
    message = []
    return true
  }

  /// Runs the completion (once) and releases it.
  func deliver(_ result: Result<[UInt8], MilvexError>) {
    let completion = self.completion
    self.completion = nil
    completion?(result)
  }
}
