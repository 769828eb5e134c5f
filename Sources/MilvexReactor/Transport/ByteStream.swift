/// What a byte stream tells its owner. Delivered on the loop thread.
enum ByteStreamEvent {
  /// Bytes arrived. The buffer is the loop's and valid only during the callback.
  case received(UnsafeRawBufferPointer)
  /// Output that had to wait for the socket has left; the owner may produce more.
  case drained
  /// The stream ended (not reported for the owner's own ``ByteStream/close()``).
  case closed(StreamCloseReason)
}

/// An ordered, reliable byte stream on the loop: plain TCP (``TCPStream``) or TLS over it
/// (``TLSStream``). It owns the
/// descriptor, reads into the loop's shared buffer, writes what its owner hands it (the owner
/// batches one loop iteration's output into one ``send(_:)``), watches for writability only
/// while output is pending, and reports its end as a typed ``StreamCloseReason``. The layers
/// above never see `read`, `write` or `errno`.
///
/// - Important: Loop-confined: every method on the loop thread; events arrive there.
protocol ByteStream: AnyObject {
  /// Starts reading; `onEvent` receives every later event.
  func start(_ onEvent: @escaping (ByteStreamEvent) -> Void) throws(MilvexError)

  /// Lets `produce` append bytes to the pending output (without an intermediate copy) and
  /// writes them now; what the socket does not take leaves when it becomes writable, and
  /// ``ByteStreamEvent/drained`` says when. A failed write reports `.closed`.
  func send(_ produce: (inout [UInt8]) -> Void)

  /// Whether bytes handed to ``send(_:)`` are still waiting for the socket.
  var hasPendingOutput: Bool { get }

  /// Whether the stream's own handshake (TLS) is done; bytes sent before wait for it.
  var isEstablished: Bool { get }

  /// Closes the stream now, dropping pending output. Idempotent; reports no event.
  func close()
}
