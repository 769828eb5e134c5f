/// Reads typed values from a fuzzer's bytes, front to back; once the bytes run out every read
/// gives zero (or the first choice), so any input, even an empty one, is a complete program.
///
/// Small choices take one byte, so a mutation of one byte changes one decision: that keeps
/// the fuzzer's coverage feedback useful.
///
/// - Important: A value type; used by one fuzz iteration on one thread.
struct FuzzInput {
  private let bytes: [UInt8]
  private var index = 0

  init(_ bytes: [UInt8]) {
    self.bytes = bytes
  }

  /// Whether every byte has been read.
  var isExhausted: Bool { index >= bytes.count }

  /// The bytes not read yet, consumed.
  mutating func rest() -> [UInt8] {
    defer { index = bytes.count }
    return index < bytes.count ? Array(bytes[index...]) : []
  }

  mutating func byte() -> UInt8 {
    guard index < bytes.count else { return 0 }
    defer { index += 1 }
    return bytes[index]
  }

  mutating func bool() -> Bool { byte() & 1 == 1 }

  /// A number in `0..<count` from one byte (`count` is at most 256); 0 when `count` is 0.
  mutating func choice(_ count: Int) -> Int {
    count > 0 ? Int(byte()) % count : 0
  }

  /// One of `options` (which must not be empty).
  mutating func pick<T>(_ options: [T]) -> T {
    options[choice(options.count)]
  }

  /// `count` bytes, or fewer when the input runs out.
  mutating func bytes(_ count: Int) -> [UInt8] {
    let end = min(bytes.count, index + max(count, 0))
    guard index < end else { return [] }
    defer { index = end }
    return Array(bytes[index..<end])
  }

  /// Bytes whose length is the next byte.
  mutating func lengthPrefixedBytes() -> [UInt8] {
    bytes(Int(byte()))
  }

  /// Text whose length in bytes is the next byte; invalid UTF-8 is repaired.
  mutating func string() -> String {
    String(decoding: lengthPrefixedBytes(), as: UTF8.self)
  }

  mutating func uint64() -> UInt64 {
    var value: UInt64 = 0
    for byte in bytes(8) { value = value << 8 | UInt64(byte) }
    return value
  }

  mutating func int64() -> Int64 { Int64(bitPattern: uint64()) }

  mutating func uint32() -> UInt32 { UInt32(truncatingIfNeeded: uint64() >> 32) }

  /// Any bit pattern: NaNs, infinities, subnormals and negative zero included.
  mutating func double() -> Double { Double(bitPattern: uint64()) }

  /// Any bit pattern, as ``double()``.
  mutating func float() -> Float { Float(bitPattern: uint32()) }

  /// Mostly an interesting edge value, sometimes any 64 bits.
  mutating func edgyInt64() -> Int64 {
    let edges: [Int64] = [
      0, 1, -1, 2, 3, 4, 10, 100, 127, 128, 255, 256, 1000, 65_535, 65_536, 32_768,
      Int64(Int32.max), Int64(Int32.min), Int64(UInt32.max), 1 << 53, 1 << 62, -(1 << 62),
      Int64.max, Int64.min, Int64.max / 1000, Int64.max / 100, 2_592_000_000,
    ]
    let selector = choice(edges.count + 2)
    if selector < edges.count { return edges[selector] }
    return selector == edges.count ? int64() : Int64(byte()) - 128
  }

  /// Mostly an interesting edge value, sometimes any bit pattern.
  mutating func edgyDouble() -> Double {
    let edges: [Double] = [
      0, -0.0, 0.5, 1, 1.5, 2, 10, 10.5, -1, 0.1, 1e15, -1e15, 1e308, .greatestFiniteMagnitude,
      .leastNonzeroMagnitude, .infinity, -.infinity, .nan, .signalingNaN, 9.2e18, -9.3e18,
    ]
    let selector = choice(edges.count + 1)
    return selector < edges.count ? edges[selector] : double()
  }
}
