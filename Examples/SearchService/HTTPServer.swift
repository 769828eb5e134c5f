import CLibEV
import Foundation

/// An HTTP/1.1 server on the host's libev loop: a non-blocking listening socket whose `ev_io`
/// accepts clients, one ``HTTPConnection`` per client, and a graceful drain.
///
/// - Important: Loop thread only; the handler and `onDrained` run on the loop thread.
final class HTTPServer {
  /// The address actually bound, such as `127.0.0.1:8080` (the port 0 asked for is resolved).
  let address: String
  private let listener: Int32
  private let context: HTTPConnectionContext
  private var acceptWatcher: HostIOWatcher!
  private var connections: [ObjectIdentifier: HTTPConnection] = [:]
  private var onDrained: (() -> Void)?
  private var draining = false

  /// Listens on `host:port` (IPv4) and serves requests with `handler`.
  ///
  /// - Throws: ``ServerError`` naming the address and the system's reason.
  init(
    loop: OpaquePointer, host: String, port: Int, maxBodyBytes: Int,
    handler: @escaping RequestHandler
  ) throws(ServerError) {
    let listener = socket(
      AF_INET,
      Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard listener >= 0 else { throw ServerError("cannot create a socket", errno) }
    var yes: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
      Glibc.close(listener)
      throw ServerError("'\(host)' is not an IPv4 address", 0)
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
        bind(listener, pointer, length) == 0 && listen(listener, 128) == 0
          && getsockname(listener, pointer, &length) == 0
      }
    }
    guard bound else {
      let reason = errno
      Glibc.close(listener)
      throw ServerError("cannot listen on \(host):\(port)", reason)
    }
    self.listener = listener
    self.address = "\(host):\(UInt16(bigEndian: address.sin_port))"
    self.context = HTTPConnectionContext(loop: loop, maxBodyBytes: maxBodyBytes, handler: handler)
    acceptWatcher = HostIOWatcher(loop: loop, fileDescriptor: listener) { [unowned self] _ in
      acceptClients()
    }
    acceptWatcher.setEvents(Int32(EV_READ))
  }

  /// How many client connections are open.
  var connectionCount: Int { connections.count }

  /// Accepts every client waiting (the listener is level-triggered; a burst is taken at once).
  private func acceptClients() {
    while true {
      var address = sockaddr_in()
      var length = socklen_t(MemoryLayout<sockaddr_in>.size)
      let client = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          accept(listener, $0, &length)
        }
      }
      guard client >= 0 else {
        // EAGAIN: no one is left waiting. EMFILE and the like: try again on the next event
        // rather than spin (the client stays queued in the kernel).
        if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED {
          log("accept failed: \(String(cString: strerror(errno)))")
        }
        if errno == EINTR || errno == ECONNABORTED { continue }
        return
      }
      // (accept4 would do this in one call, but Glibc's module map hides it behind _GNU_SOURCE.)
      _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
      _ = fcntl(client, F_SETFD, FD_CLOEXEC)
      var yes: Int32 = 1
      setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
      var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
      inet_ntop(AF_INET, &address.sin_addr, &text, socklen_t(text.count))
      let host = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
      let peer = "\(host):\(UInt16(bigEndian: address.sin_port))"
      let connection = HTTPConnection(
        fileDescriptor: client, peer: peer, context: context
      ) { [unowned self] closed in
        connections[ObjectIdentifier(closed)] = nil
        if connections.isEmpty, let onDrained {
          self.onDrained = nil
          onDrained()
        }
      }
      connections[ObjectIdentifier(connection)] = connection
    }
  }

  /// Stops accepting (the listening socket closes, so later clients are refused), closes idle
  /// connections and lets busy ones answer what they received (``HTTPConnection/drain()``).
  /// `onDrained` runs once every connection has closed (at once if none is open).
  func drain(onDrained: @escaping () -> Void) {
    guard !draining else { return }
    draining = true
    // Clients whose connection the kernel completed already are taken, not reset: each then
    // reads what it was sent, and a request that has begun is finished.
    acceptClients()
    acceptWatcher.stop()
    Glibc.close(listener)
    self.onDrained = onDrained
    for connection in Array(connections.values) { connection.drain() }
    if connections.isEmpty, let drained = self.onDrained {
      self.onDrained = nil
      drained()
    }
  }

  /// Closes every connection now, whatever is pending (the drain's deadline).
  func closeAll() {
    for connection in Array(connections.values) { connection.close() }
  }
}

/// The server could not listen.
struct ServerError: Error, CustomStringConvertible {
  /// What failed, with the address.
  var message: String
  /// The `errno` of the failure (0 for none).
  var code: Int32

  init(_ message: String, _ code: Int32) {
    self.message = message
    self.code = code
  }

  var description: String {
    code == 0 ? message : "\(message): \(String(cString: strerror(code)))"
  }
}

/// Writes a line to standard error (the service's log).
func log(_ line: String) {
  FileHandle.standardError.write(Data("milvex-search-service: \(line)\n".utf8))
}
