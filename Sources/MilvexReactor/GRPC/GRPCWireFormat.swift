/// Encodings from gRPC's PROTOCOL-HTTP2 document: timeouts, percent-encoded messages,
/// base64 `-bin` metadata and the HTTP-status-to-gRPC-status fallback.
enum GRPCWireFormat {
  /// `grpc-timeout`: at most 8 digits and a unit (n, u, m, S, M, H), rounded up so that the
  /// server never sees a shorter deadline than the client's.
  static func timeoutHeader(_ duration: Duration) -> String {
    let value = TimeoutValue(duration)
    return value.withBytes { String(decoding: $0, as: UTF8.self) }
  }

  /// A `grpc-timeout` value (at most 8 digits and a unit) held inline: the per-call path
  /// encodes it without allocating, and a connection keeps the last one for the next call with
  /// the same timeout.
  struct TimeoutValue {
    /// The ASCII bytes, `count` of them, from the first.
    private var storage: (UInt64, UInt64) = (0, 0)
    private var count = 0

    init(_ duration: Duration) {
      self.init(nanoseconds: duration.saturatingNanoseconds)
    }

    init(nanoseconds: Int64) {
      let nanoseconds = max(0, nanoseconds)
      var value: Int64 = 99_999_999
      var unit = UInt8(ascii: "H")
      // Saturated (centuries): the longest timeout the header can say.
      if nanoseconds != .max {
        for (scale, symbol) in GRPCWireFormat.timeoutUnits {
          // Rounded up, without `nanoseconds + scale - 1` (which overflows near Int64.max).
          let scaled = nanoseconds / scale + (nanoseconds % scale == 0 ? 0 : 1)
          if scaled < 100_000_000 {
            (value, unit) = (scaled, symbol)
            break
          }
        }
      }
      var digits = 1
      var rest = value / 10
      while rest > 0 {
        digits += 1
        rest /= 10
      }
      count = digits + 1
      withUnsafeMutableBytes(of: &storage) { bytes in
        // Most significant digit first, then the unit.
        var index = digits - 1
        repeat {
          bytes[index] = UInt8(ascii: "0") + UInt8(value % 10)
          value /= 10
          index -= 1
        } while index >= 0
        bytes[digits] = unit
      }
    }

    /// Runs `body` with the value's bytes.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
      withUnsafeBytes(of: storage) { body(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
    }
  }

  fileprivate static let timeoutUnits: [(Int64, UInt8)] = [
    (1, UInt8(ascii: "n")), (1_000, UInt8(ascii: "u")), (1_000_000, UInt8(ascii: "m")),
    (1_000_000_000, UInt8(ascii: "S")), (60_000_000_000, UInt8(ascii: "M")),
    (3_600_000_000_000, UInt8(ascii: "H")),
  ]

  /// Percent-decodes `grpc-message`; invalid escapes are kept as they are (the spec asks
  /// clients not to fail on them).
  static func percentDecode(_ bytes: [UInt8]) -> String {
    var output: [UInt8] = []
    output.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
      if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
        let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
      {
        output.append(high << 4 | low)
        index += 3
      } else {
        output.append(bytes[index])
        index += 1
      }
    }
    return String(decoding: output, as: UTF8.self)
  }

  /// The value of one hexadecimal digit, or nil.
  static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
  }

  private static let base64Alphabet = Array(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  /// Standard base64 with padding (gRPC senders may pad; receivers accept both).
  static func base64Encode(_ bytes: some Collection<UInt8>) -> String {
    var output: [UInt8] = []
    output.reserveCapacity((bytes.count + 2) / 3 * 4)
    var iterator = bytes.makeIterator()
    while let first = iterator.next() {
      let second = iterator.next()
      let third = iterator.next()
      let value = UInt32(first) << 16 | UInt32(second ?? 0) << 8 | UInt32(third ?? 0)
      output.append(base64Alphabet[Int(value >> 18 & 63)])
      output.append(base64Alphabet[Int(value >> 12 & 63)])
      output.append(second == nil ? UInt8(ascii: "=") : base64Alphabet[Int(value >> 6 & 63)])
      output.append(third == nil ? UInt8(ascii: "=") : base64Alphabet[Int(value & 63)])
    }
    return String(decoding: output, as: UTF8.self)
  }

  /// Decodes base64, padded or not. Returns nil for a character outside the alphabet.
  static func base64Decode(_ bytes: some Collection<UInt8>) -> [UInt8]? {
    var output: [UInt8] = []
    var accumulator: UInt32 = 0
    var bits = 0
    for byte in bytes {
      let value: UInt32
      switch byte {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
      case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a") + 26)
      case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0") + 52)
      case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
      case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
      case UInt8(ascii: "="): continue
      default: return nil
      }
      accumulator = accumulator << 6 | value
      bits += 6
      if bits >= 8 {
        bits -= 8
        output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
      }
    }
    return output
  }

  /// The gRPC status for an HTTP response without `grpc-status`
  /// (grpc's `doc/http-grpc-status-mapping.md`).
  static func statusCode(forHTTPStatus status: Int) -> GRPCStatusCode {
    switch status {
    case 400: return .internalError
    case 401: return .unauthenticated
    case 403: return .permissionDenied
    case 404: return .unimplemented
    case 429, 502, 503, 504: return .unavailable
    default: return .unknown
    }
  }
}
