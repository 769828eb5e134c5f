import Dispatch
import MilvexReactor
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The running part of a ``MilvusTestServer``: its loop, listening socket and connections
/// (loop-confined), and the script and record (behind a lock, read and changed from any
/// thread).
///
/// - Important: `@unchecked Sendable`: `shared` is a `Mutex`, `name`, `loop` and the TLS
///   context are immutable, and every other stored property is touched only on `loop`'s
///   thread (the public handle reaches it through `onLoop(_:)`).
final class TestServerCore: @unchecked Sendable {
  let name: String
  let loop: EventLoop

  struct Shared {
    var script = TestServerScript()
    var calls: [TestServerCall] = []
    var pings: [TestServerPing] = []
    var port = 0
    var running = false
    var openConnections = 0
    var tlsEnabled = false
  }

  let shared = Mutex(Shared())

  // Loop-confined.
  private var tlsContext: TestServerTLSContext?
  private var listener: Int32 = -1
  private var listenWatcher: IOWatcher?
  private var connections: [Int: TestServerConnection] = [:]
  var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)

  init(name: String, loop: EventLoop) {
    self.name = name
    self.loop = loop
  }

  /// Runs `body` on the loop thread and returns its result; at once when called there (a
  /// handler). Nil when the loop has shut down.
  func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T? {
    if loop.inLoopThread { return body() }
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<T?>(nil)
    do {
      try loop.execute {
        let value = body()
        result.withLock { $0 = value }
        done.signal()
      }
    } catch {
      return nil
    }
    done.wait()
    return result.withLock { $0 }
  }

  // MARK: - Listening

  /// Binds 127.0.0.1:`port` (`SO_REUSEADDR`, so a restart can take the same port while old
  /// connections linger in TIME_WAIT) and starts accepting. Loop thread only.
  func listen(port: Int, tls: TestServerTLSContext?) -> Result<Int, TestServerError> {
    tlsContext = tls
    guard let port16 = UInt16(exactly: port) else {
      return .failure(TestServerError("\(name) cannot listen on port \(port): not in 0...65535"))
    }
    let fd = socket(
      AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(TestServerError("socket() failed: errno \(errno)")) }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(port16.bigEndian)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard bound == 0, Glibc.listen(fd, 128) == 0 else {
      let code = errno
      Glibc.close(fd)
      return .failure(
        TestServerError(
          "\(name) could not listen on 127.0.0.1:\(port): \(String(cString: strerror(code)))"))
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    let actualPort = Int(UInt16(bigEndian: address.sin_port))
    do {
      listenWatcher = try loop.watch(fileDescriptor: fd, interest: .read) { [weak self] _ in
        self?.acceptAll()
      }
    } catch {
      Glibc.close(fd)
      return .failure(TestServerError("\(name) could not watch its socket: \(error)"))
    }
    listener = fd
    shared.withLock {
      $0.port = actualPort
      $0.running = true
    }
    return .success(actualPort)
  }

  /// Closes the listening socket: new connections are refused. Loop thread only.
  func stopListening() {
    listenWatcher?.close()
    listenWatcher = nil
    if listener >= 0 { Glibc.close(listener) }
    listener = -1
  }

  var isListening: Bool { listener >= 0 }

  /// The TLS context of the last `listen(port:tls:)`. Loop thread only.
  var currentTLSContext: TestServerTLSContext? { tlsContext }

  private func acceptAll() {
    while listener >= 0 {
      // accept4 is a GNU extension the Glibc module does not declare: accept, then fcntl.
      let fd = accept(listener, nil, nil)
      if fd < 0 { return }
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
      _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
      var one: Int32 = 1
      setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
      let decision = shared.withLock { shared in
        shared.openConnections += 1
        return shared.script.accepted()
      }
      let connection: TestServerConnection
      switch decision {
      case .blackhole(let number):
        connection = TestServerConnection(
          number: number, fd: fd, loop: loop, core: self, tls: nil, phase: .blackhole)
      case .serve(let number, _):
        let tls = tlsContext.flatMap { try? TestServerTLSSession(context: $0) }
        connection = TestServerConnection(
          number: number, fd: fd, loop: loop, core: self, tls: tls, phase: .holding([]))
      }
      connections[connection.number] = connection
      do {
        try connection.start()
      } catch {
        connection.close(.eof)
        continue
      }
      if case .serve(_, let delay) = decision {
        if delay > .zero {
          connection.after(delay) { [weak connection] in connection?.releasePreface() }
        } else {
          connection.releasePreface()
        }
      }
    }
  }

  /// Called by a connection once it closed. Loop thread only.
  func connectionClosed(_ connection: TestServerConnection) {
    connections[connection.number] = nil
    shared.withLock { $0.openConnections -= 1 }
  }

  // MARK: - Faults (loop thread only)

  func closeAll(_ how: TestServerClose) {
    for connection in Array(connections.values) { connection.close(how) }
  }

  func goAwayAll(_ kind: TestServerGoAway) {
    for connection in Array(connections.values) { connection.goAway(kind) }
  }

  /// Stops listening and closes every connection. Loop thread only.
  func stopAll() {
    stopListening()
    closeAll(.eof)
  }

  /// `stopAll()` from any thread, then marks the server stopped.
  func stopServing() {
    _ = onLoop { [self] in stopAll() }
    shared.withLock { $0.running = false }
  }

  // MARK: - Calls (loop thread only)

  func handle(_ request: TestServerRequest, on connection: TestServerConnection) {
    let path = request.header(":path") ?? ""
    var metadata: [String: String] = [:]
    for (name, value) in request.headers where !name.hasPrefix(":") { metadata[name] = value }
    // The gRPC message: a 5-byte prefix (compressed flag, length), then the bytes.
    let message = request.body.count >= 5 ? Array(request.body[5...]) : []
    let call = TestServerCall(
      path: path, metadata: metadata, requestBytes: message,
      request: TestServerScript.decodeRequest(path: path, bytes: message), answer: nil,
      unimplemented: false, connection: connection.number, arrival: .now)
    let (index, decision) = shared.withLock { shared -> (Int, TestServerScript.Decision) in
      let decision = shared.script.decide(call)
      var recorded = call
      switch decision {
      case .answer(let answer): recorded.answer = answer
      case .unimplemented: recorded.unimplemented = true
      case .handler: break
      }
      shared.calls.append(recorded)
      return (shared.calls.count - 1, decision)
    }
    let answer: TestServerAnswer?
    switch decision {
    case .answer(let given):
      answer = given
    case .unimplemented:
      answer = nil
    case .handler(let handler):
      let given = handler(call)
      shared.withLock { $0.calls[index].answer = given }
      answer = given
    }
    let parts = path.split(separator: "/")
    connection.answer(
      streamID: request.streamID, method: String(parts.last ?? ""),
      service: String(parts.first ?? ""), answer)
  }

  func recordPing(on connection: TestServerConnection) {
    shared.withLock {
      $0.pings.append(TestServerPing(connection: connection.number, arrival: .now))
    }
  }
}
