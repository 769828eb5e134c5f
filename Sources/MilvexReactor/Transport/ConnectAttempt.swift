#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// One attempt to open a TCP connection to `host:port`: resolve the name (afresh, never from
/// an earlier attempt), then try every resolved address in order with a non-blocking
/// `connect`, until one succeeds or all failed. Given an `address` (an IP literal: one address
/// of the name, resolved by the caller), it connects there without resolving.
///
/// On success the caller owns the returned descriptor (non-blocking, close-on-exec,
/// `TCP_NODELAY`). The time limit is the caller's: it calls ``cancel()`` when it runs out.
///
/// - Important: Loop-confined. The completion runs on the loop thread, exactly once unless
///   cancelled.
final class ConnectAttempt {
  typealias Completion = (Result<ConnectedSocket, MilvexError>) -> Void

  private let loop: EventLoop
  private let host: String
  private let port: Int
  private var completion: Completion?
  private var resolver: Resolver?
  private var remaining: [SocketAddress] = []
  private var failures: [String] = []
  private var pendingFD: Int32 = -1
  private var pendingAddress: SocketAddress?
  private var watcher: IOWatcher?

  init(
    loop: EventLoop, host: String, port: Int, address: String? = nil,
    nameServers: String? = nil, completion: @escaping Completion
  ) {
    self.loop = loop
    self.host = host
    self.port = port
    self.completion = completion
    // A given address goes through the resolver's literal path, which answers from the queue:
    // the caller never sees its completion re-entrantly.
    let target = address ?? host
    resolver = Resolver(loop: loop, host: target, port: port, nameServers: nameServers) {
      [weak self] result in
      guard let self else { return }
      self.resolver = nil
      switch result {
      case .success(let addresses):
        self.remaining = addresses
        self.tryNextAddress()
      case .failure(let error):
        self.finish(.failure(error))
      }
    }
  }

  deinit { cancel() }

  /// Abandons the attempt: closes a socket still connecting; the completion is not called.
  func cancel() {
    completion = nil
    resolver?.cancel()
    resolver = nil
    closePending()
  }

  private func finish(_ result: Result<ConnectedSocket, MilvexError>) {
    let completion = self.completion
    self.completion = nil
    completion?(result)
  }

  private func closePending() {
    watcher?.close()
    watcher = nil
    if pendingFD >= 0 {
      close(pendingFD)
      pendingFD = -1
    }
  }

  private func tryNextAddress() {
    while completion != nil, !remaining.isEmpty {
      let address = remaining.removeFirst()
      let fd = socket(
        address.family,
        Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
      guard fd >= 0 else {
        failures.append("\(address): \(errnoDescription(errno))")
        continue
      }
      var one: Int32 = 1
      setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
      let rc = address.withSockAddr { connect(fd, $0, $1) }
      if rc == 0 {
        return finish(.success(ConnectedSocket(fileDescriptor: fd, address: address)))
      }
      let code = errno
      guard code == EINPROGRESS else {
        close(fd)
        failures.append("\(address): \(errnoDescription(code))")
        continue
      }
      pendingFD = fd
      pendingAddress = address
      do {
        watcher = try loop.watch(fileDescriptor: fd, interest: .write) { [weak self] _ in
          self?.connectCompleted()
        }
      } catch {
        closePending()
        return finish(
          .failure(.connection(reason: "\(error)", host: host, port: port, retriable: false)))
      }
      return
    }
    guard completion != nil else { return }
    let reason = failures.isEmpty ? "no address to connect to" : failures.joined(separator: "; ")
    finish(.failure(.connection(reason: reason, host: host, port: port, retriable: true)))
  }

  /// The pending socket became writable: `SO_ERROR` says whether `connect` succeeded.
  private func connectCompleted() {
    guard let address = pendingAddress else { return }
    var code: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(pendingFD, SOL_SOCKET, SO_ERROR, &code, &length)
    watcher?.close()
    watcher = nil
    if code == 0 {
      let fd = pendingFD
      pendingFD = -1
      return finish(.success(ConnectedSocket(fileDescriptor: fd, address: address)))
    }
    closePending()
    failures.append("\(address): \(errnoDescription(code))")
    tryNextAddress()
  }
}

/// A connected, non-blocking TCP socket. Whoever holds it must close the descriptor.
struct ConnectedSocket {
  let fileDescriptor: Int32
  let address: SocketAddress
}
