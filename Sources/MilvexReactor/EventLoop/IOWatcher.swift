import CLibEV

/// Readiness interest on a file descriptor, watched by an ``EventLoop``.
///
/// The watcher never opens or closes the descriptor: whoever created the fd owns it, and must
/// call ``close()`` (which stops the watcher) before closing the fd, so libev never polls a
/// number that may already belong to another file.
///
/// Interest changes are cheap and should follow the data: watch ``Interest/write`` only
/// while output is pending, or the loop spins on an always-writable socket.
///
/// - Important: Loop-confined: create, change and close it on the loop thread. The callback
///   runs on the loop thread.
public final class IOWatcher: LoopWatcher {
  /// What to be told about.
  public struct Interest: OptionSet, Sendable, Hashable {
    /// libev's event bits (`EV_READ`, `EV_WRITE`).
    public let rawValue: Int32
    /// Interest from libev's event bits.
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// Tell when the descriptor is readable (data, end of file or an error is pending).
    public static let read = Interest(rawValue: Int32(EV_READ))
    /// Tell when the descriptor is writable. Watch it only while output is pending.
    public static let write = Interest(rawValue: Int32(EV_WRITE))
  }

  private let loop: EventLoop
  private let watcher: UnsafeMutablePointer<ev_io>
  @exclusivity(unchecked) private var callback: ((Interest) -> Void)?
  /// The descriptor watched.
  public let fileDescriptor: Int32
  /// The current interest; empty means the watcher is stopped.
  @exclusivity(unchecked) public private(set) var interest: Interest = []

  init(loop: EventLoop, fileDescriptor: Int32, callback: @escaping (Interest) -> Void) {
    self.loop = loop
    self.fileDescriptor = fileDescriptor
    self.callback = callback
    watcher = UnsafeMutablePointer<ev_io>.allocate(capacity: 1)
    clibev_io_init(
      watcher,
      { _, raw, revents in
        guard let data = raw?.pointee.data else { return }
        let watcher = Unmanaged<IOWatcher>.fromOpaque(data).takeUnretainedValue()
        watcher.callback?(Interest(rawValue: revents).intersection([.read, .write]))
      }, fileDescriptor, 0)
    watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
  }

  deinit {
    // Only a stopped watcher can be deinitialised: the loop retains active ones.
    watcher.deallocate()
  }

  /// Sets what to watch for. Setting the current interest again costs nothing.
  /// Does nothing after ``close()`` or after the loop shut down.
  ///
  /// - Important: Loop thread only.
  public func setInterest(_ newInterest: Interest) {
    loop.assertInLoopThread()
    guard newInterest != interest, callback != nil, loop.acceptsWatchers else { return }
    if !interest.isEmpty {
      ev_io_stop(loop.rawLoop, watcher)
    }
    interest = newInterest
    if newInterest.isEmpty {
      loop.unregister(self)
    } else {
      clibev_io_set_events(watcher, newInterest.rawValue)
      ev_io_start(loop.rawLoop, watcher)
      loop.register(self)
    }
  }

  /// Adds `extra` to the interest (for example `.write` when output becomes pending).
  public func addInterest(_ extra: Interest) { setInterest(interest.union(extra)) }

  /// Removes `gone` from the interest (for example `.write` once output is flushed).
  public func removeInterest(_ gone: Interest) { setInterest(interest.subtracting(gone)) }

  /// Stops watching for good and releases the callback; the fd stays open. Idempotent.
  ///
  /// - Important: Loop thread only.
  public func close() {
    setInterest([])
    callback = nil
  }

  func stopForShutdown() {
    ev_io_stop(loop.rawLoop, watcher)
    interest = []
    callback = nil
  }
}

extension EventLoop {
  /// Creates a watcher for `fileDescriptor` with the given initial interest.
  ///
  /// - Parameters:
  ///   - fileDescriptor: an open descriptor, best non-blocking. It stays owned by the caller.
  ///   - interest: what to watch for at first (may be empty).
  ///   - callback: receives the readiness that occurred.
  /// - Important: Loop thread only; `callback` runs on the loop thread.
  /// - Throws: ``MilvexError/eventLoopShutDown(operation:)`` after the loop shut down, and
  ///   ``MilvexError/invalidArgument(field:message:)`` for a negative descriptor.
  public func watch(
    fileDescriptor: Int32, interest: IOWatcher.Interest,
    _ callback: @escaping (IOWatcher.Interest) -> Void
  ) throws(MilvexError) -> IOWatcher {
    assertInLoopThread()
    guard acceptsWatchers else { throw .eventLoopShutDown(operation: "watch") }
    guard fileDescriptor >= 0 else {
      throw .invalidArgument(
        field: "fileDescriptor", message: "must be an open descriptor (got \(fileDescriptor))")
    }
    let watcher = IOWatcher(loop: self, fileDescriptor: fileDescriptor, callback: callback)
    watcher.setInterest(interest)
    return watcher
  }
}
