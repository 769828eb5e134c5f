/// A value that lives on one ``EventLoop``'s thread, held by a `Sendable` type.
///
/// `@unchecked Sendable` is sound because every access to ``value`` checks (in debug builds)
/// that it happens on the loop thread, so the value is never touched from two threads; public
/// handles only reach it from closures they hand to ``EventLoop/execute(_:)``.
final class LoopBound<Value>: @unchecked Sendable {
  private let loop: EventLoop
  @exclusivity(unchecked) private var storage: Value

  /// - Important: Callable from any thread: the value is handed over to the loop thread here
  ///   (the caller must not keep using it elsewhere).
  init(_ value: Value, loop: EventLoop) {
    self.loop = loop
    self.storage = value
  }

  /// - Important: Loop thread only.
  var value: Value {
    get {
      loop.assertInLoopThread()
      return storage
    }
    set {
      loop.assertInLoopThread()
      storage = newValue
    }
  }
}
