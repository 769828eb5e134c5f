import CMilvexCARES

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// c-ares's process-wide initialisation, done once before the first resolver.
private let aresLibraryInitialised: Bool = ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS

/// Resolves one host name to socket addresses without blocking the loop thread.
///
/// c-ares runs on the loop's own watchers and timers (as in gRPC core and curl): its
/// `sock_state_cb` tells which sockets to watch, and `ares_timeout` when to call back for
/// retransmissions. A numeric address is returned at once without c-ares.
///
/// One `Resolver` serves one lookup; ``cancel()`` (or deinit) abandons it, and its callback
/// then never runs. `nameServers` (c-ares's `host:port,host:port` list) replaces the system's
/// servers from `/etc/resolv.conf`; `/etc/hosts` is read either way.
///
/// - Important: Loop-confined. The callback runs on the loop thread, exactly once unless
///   cancelled.
final class Resolver {
  typealias Completion = (Result<[SocketAddress], MilvexError>) -> Void

  private let loop: EventLoop
  private var channel: ares_channel?
  private var watchers: [Int32: IOWatcher] = [:]
  private var timeoutTimer: LoopTimer?
  private var completion: Completion?
  private let host: String
  private let port: Int
  private let nameServers: String?

  /// Starts resolving `host` for TCP `port`, asking `nameServers` if given.
  init(
    loop: EventLoop, host: String, port: Int, nameServers: String? = nil,
    completion: @escaping Completion
  ) {
    self.loop = loop
    self.host = host
    self.port = port
    self.nameServers = nameServers
    self.completion = completion
    if let literal = SocketAddress(ipLiteral: host, port: port) {
      // Delivered from the queue so the caller never sees its callback re-entrantly.
      deliverLater(.success([literal]))
      return
    }
    startLookup()
  }

  deinit { cancel() }

  /// Abandons the lookup: the completion will not be called.
  func cancel() {
    completion = nil
    teardown()
  }

  private func deliverLater(_ result: Result<[SocketAddress], MilvexError>) {
    loop.runBeforeNextPoll { [weak self] in self?.finish(result) }
  }

  private func finish(_ result: Result<[SocketAddress], MilvexError>) {
    let completion = self.completion
    self.completion = nil
    teardown()
    completion?(result)
  }

  private func failure(_ reason: String) -> MilvexError {
    .connection(
      reason: "could not resolve '\(host)': \(reason)", host: host, port: port, retriable: true)
  }

  private func startLookup() {
    guard aresLibraryInitialised else {
      return deliverLater(.failure(failure("c-ares failed to initialise")))
    }
    var options = ares_options()
    options.sock_state_cb = { data, fd, readable, writable in
      guard let data else { return }
      Unmanaged<Resolver>.fromOpaque(data).takeUnretainedValue()
        .socketStateChanged(fd: fd, readable: readable != 0, writable: writable != 0)
    }
    options.sock_state_cb_data = Unmanaged.passUnretained(self).toOpaque()
    let status = ares_init_options(&channel, &options, ARES_OPT_SOCK_STATE_CB)
    guard status == ARES_SUCCESS, let channel else {
      return deliverLater(.failure(failure(String(cString: ares_strerror(status)))))
    }
    if let nameServers {
      let status = ares_set_servers_ports_csv(channel, nameServers)
      guard status == ARES_SUCCESS else {
        return deliverLater(
          .failure(failure("name server \(nameServers): \(String(cString: ares_strerror(status)))"))
        )
      }
    }
    var hints = ares_addrinfo_hints()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = ARES_AI_NUMERICSERV
    let context = Unmanaged.passRetained(LookupContext(resolver: self)).toOpaque()
    ares_getaddrinfo(
      channel, host, String(port), &hints,
      { arg, status, _, result in
        let context = Unmanaged<LookupContext>.fromOpaque(arg!).takeRetainedValue()
        defer { if let result { ares_freeaddrinfo(result) } }
        // ARES_EDESTRUCTION: the channel is being torn down by cancel(); nobody waits.
        guard status != ARES_EDESTRUCTION, let resolver = context.resolver else { return }
        resolver.lookupFinished(status: status, result: result)
      }, context)
    rearmTimeout()
  }

  private func lookupFinished(status: Int32, result: UnsafeMutablePointer<ares_addrinfo>?) {
    guard status == ARES_SUCCESS, let result else {
      return deliverLater(.failure(failure(String(cString: ares_strerror(status)))))
    }
    var addresses: [SocketAddress] = []
    var node = result.pointee.nodes
    while let current = node {
      if let address = current.pointee.ai_addr,
        let parsed = SocketAddress(address, length: current.pointee.ai_addrlen),
        !addresses.contains(parsed)
      {
        addresses.append(parsed)
      }
      node = current.pointee.ai_next
    }
    deliverLater(
      addresses.isEmpty ? .failure(failure("no IPv4 or IPv6 address")) : .success(addresses))
  }

  private func socketStateChanged(fd: Int32, readable: Bool, writable: Bool) {
    var interest: IOWatcher.Interest = []
    if readable { interest.insert(.read) }
    if writable { interest.insert(.write) }
    if interest.isEmpty {
      watchers.removeValue(forKey: fd)?.close()
      return
    }
    if let watcher = watchers[fd] {
      watcher.setInterest(interest)
    } else if let watcher = try? loop.watch(
      fileDescriptor: fd, interest: interest,
      { [weak self] events in
        self?.process(fd: fd, events: events)
      })
    {
      watchers[fd] = watcher
    }
  }

  private func process(fd: Int32, events: IOWatcher.Interest) {
    guard let channel else { return }
    let bad = ARES_SOCKET_BAD
    ares_process_fd(channel, events.contains(.read) ? fd : bad, events.contains(.write) ? fd : bad)
    rearmTimeout()
  }

  /// Keeps one timer at c-ares's next retransmission deadline. A wall-clock timer even on a
  /// loop with virtual time: c-ares measures its retransmissions on real time.
  private func rearmTimeout() {
    guard let channel else { return }
    var next = timeval()
    guard let wait = ares_timeout(channel, nil, &next) else {
      timeoutTimer?.stop()
      return
    }
    let delay = Duration.seconds(wait.pointee.tv_sec) + .microseconds(wait.pointee.tv_usec)
    if let timer = timeoutTimer {
      timer.rearm(after: max(delay, .milliseconds(1)))
    } else {
      timeoutTimer = try? loop.scheduleTimer(after: max(delay, .milliseconds(1)), clock: .wall) {
        [weak self] in
        guard let self, let channel = self.channel else { return }
        ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD)
        self.rearmTimeout()
      }
    }
  }

  private func teardown() {
    timeoutTimer?.cancel()
    timeoutTimer = nil
    if let channel {
      self.channel = nil
      ares_destroy(channel)  // closes its sockets after telling sock_state_cb
    }
    for watcher in watchers.values { watcher.close() }
    watchers.removeAll()
  }
}

/// Carries a weak reference through c-ares's `void *arg`, so a cancelled resolver is never
/// called back.
private final class LookupContext {
  weak var resolver: Resolver?
  init(resolver: Resolver) { self.resolver = resolver }
}
