// The host's own libev watchers: the service owns its `struct ev_loop *` and runs it, the way a
// C program embedding the library would. MilvexReactor adds its watchers to the same loop
// (`EventLoop(embeddingIn:)`), so everything below runs on the one thread that calls `ev_run`.
import CLibEV

/// An `ev_io` watcher on the host loop for one descriptor, which it never closes.
///
/// libev's `data` pointer refers to this object unretained; that is sound because the watcher
/// is stopped before the object goes away (``stop()``, or `deinit` at the latest), and a stopped
/// watcher is never called.
///
/// - Important: Loop thread only; `callback` runs on the loop thread.
final class HostIOWatcher {
  private let loop: OpaquePointer
  private let watcher = UnsafeMutablePointer<ev_io>.allocate(capacity: 1)
  private let callback: (_ events: Int32) -> Void
  /// The current interest (`EV_READ`, `EV_WRITE` or both); 0 while stopped.
  private(set) var events: Int32 = 0

  /// A stopped watcher on `fileDescriptor`; ``setEvents(_:)`` starts it.
  init(loop: OpaquePointer, fileDescriptor: Int32, callback: @escaping (Int32) -> Void) {
    self.loop = loop
    self.callback = callback
    clibev_io_init(
      watcher,
      { _, raw, revents in
        guard let data = raw?.pointee.data else { return }
        Unmanaged<HostIOWatcher>.fromOpaque(data).takeUnretainedValue().callback(revents)
      }, fileDescriptor, 0)
    watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
  }

  /// Watches for `events` from now on; 0 stops the watcher. An unchanged interest costs nothing.
  func setEvents(_ newEvents: Int32) {
    guard newEvents != events else { return }
    if events != 0 { ev_io_stop(loop, watcher) }
    events = newEvents
    if newEvents != 0 {
      clibev_io_set_events(watcher, newEvents)
      ev_io_start(loop, watcher)
    }
  }

  /// Stops the watcher for good (before its descriptor is closed).
  func stop() { setEvents(0) }

  deinit {
    ev_io_stop(loop, watcher)
    watcher.deallocate()
  }
}

/// An `ev_timer` on the host loop: once, or every `repeating` seconds.
///
/// - Important: Loop thread only; `callback` runs on the loop thread. Unretained `data` as in
///   ``HostIOWatcher``.
final class HostTimer {
  private let loop: OpaquePointer
  private let watcher = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
  private let callback: () -> Void

  /// Starts a timer that calls `callback` `seconds` from now, then every `repeating` seconds
  /// if that is not 0.
  init(
    loop: OpaquePointer, after seconds: Double, repeating: Double = 0,
    callback: @escaping () -> Void
  ) {
    self.loop = loop
    self.callback = callback
    clibev_timer_init(
      watcher,
      { _, raw, _ in
        guard let data = raw?.pointee.data else { return }
        Unmanaged<HostTimer>.fromOpaque(data).takeUnretainedValue().callback()
      }, seconds, repeating)
    watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    ev_now_update(loop)  // so that the delay counts from now, not from the last poll
    ev_timer_start(loop, watcher)
  }

  /// A repeating timer starts its period again from now (`ev_timer_again`: no allocation, the
  /// cheap way to run an inactivity timeout).
  func restart() { ev_timer_again(loop, watcher) }

  /// Stops the timer without calling it.
  func cancel() { ev_timer_stop(loop, watcher) }

  deinit {
    ev_timer_stop(loop, watcher)
    watcher.deallocate()
  }
}

/// An `ev_signal` watcher on the host loop: the signal is handled on the loop thread, as an
/// ordinary event, instead of in a signal handler.
///
/// - Important: Loop thread only; `callback` runs on the loop thread. Unretained `data` as in
///   ``HostIOWatcher``.
final class HostSignalWatcher {
  private let loop: OpaquePointer
  private let watcher = UnsafeMutablePointer<ev_signal>.allocate(capacity: 1)
  private let callback: (_ signal: Int32) -> Void

  /// Starts watching `signal`.
  init(loop: OpaquePointer, signal: Int32, callback: @escaping (Int32) -> Void) {
    self.loop = loop
    self.callback = callback
    clibev_signal_init(
      watcher,
      { _, raw, _ in
        guard let raw, let data = raw.pointee.data else { return }
        Unmanaged<HostSignalWatcher>.fromOpaque(data).takeUnretainedValue().callback(
          raw.pointee.signum)
      }, signal)
    watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    ev_signal_start(loop, watcher)
  }

  /// Stops watching (the signal's default action applies again).
  func stop() { ev_signal_stop(loop, watcher) }

  deinit {
    ev_signal_stop(loop, watcher)
    watcher.deallocate()
  }
}
