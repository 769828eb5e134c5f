#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// An IPv4 or IPv6 socket address (a `sockaddr_storage` with its length).
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
  fileprivate var storage: sockaddr_storage
  /// How many bytes of the storage the address uses: the size of `sockaddr_in` or
  /// `sockaddr_in6`.
  public let length: socklen_t

  /// Copies a `sockaddr` of `length` bytes. Returns nil for families other than IPv4/IPv6.
  init?(_ address: UnsafePointer<sockaddr>, length: socklen_t) {
    let family = Int32(address.pointee.sa_family)
    guard family == AF_INET || family == AF_INET6,
      Int(length) <= MemoryLayout<sockaddr_storage>.size
    else { return nil }
    var storage = sockaddr_storage()
    withUnsafeMutableBytes(of: &storage) { target in
      target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(length)))
    }
    self.storage = storage
    self.length = length
  }

  /// Parses a numeric IPv4 or IPv6 address (no name resolution). Brackets around IPv6 are
  /// accepted. Returns nil when `host` is not an IP literal.
  init?(ipLiteral host: String, port: Int) {
    var literal = host
    if literal.hasPrefix("["), literal.hasSuffix("]") {
      literal = String(literal.dropFirst().dropLast())
    }
    var storage = sockaddr_storage()
    let networkPort = in_port_t(UInt16(truncatingIfNeeded: port)).bigEndian
    var v4 = in_addr()
    var v6 = in6_addr()
    if inet_pton(AF_INET, literal, &v4) == 1 {
      withUnsafeMutableBytes(of: &storage) { raw in
        let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
        address.pointee.sin_family = sa_family_t(AF_INET)
        address.pointee.sin_port = networkPort
        address.pointee.sin_addr = v4
      }
      self.storage = storage
      self.length = socklen_t(MemoryLayout<sockaddr_in>.size)
    } else if inet_pton(AF_INET6, literal, &v6) == 1 {
      withUnsafeMutableBytes(of: &storage) { raw in
        let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
        address.pointee.sin6_family = sa_family_t(AF_INET6)
        address.pointee.sin6_port = networkPort
        address.pointee.sin6_addr = v6
      }
      self.storage = storage
      self.length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    } else {
      return nil
    }
  }

  /// The address family: `AF_INET` or `AF_INET6`.
  public var family: Int32 { Int32(storage.ss_family) }

  /// Calls `body` with the address as a `sockaddr` pointer.
  func withSockAddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Result) rethrows
    -> Result
  {
    try withUnsafeBytes(of: storage) { raw in
      try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
    }
  }

  /// The address without its port: `127.0.0.1` or `::1`.
  var ipText: String {
    let text = description
    let withoutPort = text[..<(text.lastIndex(of: ":") ?? text.endIndex)]
    return String(withoutPort.hasPrefix("[") ? withoutPort.dropFirst().dropLast() : withoutPort)
  }

  /// `127.0.0.1:19530` or `[::1]:19530`.
  public var description: String {
    withUnsafeBytes(of: storage) { raw -> String in
      var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
      if family == AF_INET {
        let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
        var inAddr = address.pointee.sin_addr
        inet_ntop(AF_INET, &inAddr, &text, socklen_t(text.count))
        return "\(cText(text)):\(UInt16(bigEndian: address.pointee.sin_port))"
      }
      let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
      var inAddr = address.pointee.sin6_addr
      inet_ntop(AF_INET6, &inAddr, &text, socklen_t(text.count))
      return "[\(cText(text))]:\(UInt16(bigEndian: address.pointee.sin6_port))"
    }
  }

  /// Whether both addresses are the same byte for byte (family, port and address).
  public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
    lhs.length == rhs.length
      && withUnsafeBytes(of: lhs.storage) { l in
        withUnsafeBytes(of: rhs.storage) { r in
          l.prefix(Int(lhs.length)).elementsEqual(r.prefix(Int(rhs.length)))
        }
      }
  }

  /// Hashes the address's `length` bytes, consistent with `==`.
  public func hash(into hasher: inout Hasher) {
    withUnsafeBytes(of: storage) {
      hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: $0.prefix(Int(length))))
    }
  }
}

/// A NUL-terminated C buffer as a Swift string.
private func cText(_ buffer: [CChar]) -> String {
  String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// `strerror` as a Swift string.
func errnoDescription(_ code: Int32) -> String {
  String(cString: strerror(code))
}
