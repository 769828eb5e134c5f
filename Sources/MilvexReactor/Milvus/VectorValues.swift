internal import MilvexProtos

/// A sparse float vector: non-zero entries as index → value, kept sorted by index with each
/// index once. Build it from a dictionary or from pairs (a later pair for the same index
/// replaces an earlier one):
///
/// ```swift
/// let sparse = SparseVector([3: 0.5, 17: 1.25])
/// let same = SparseVector(pairs: [(17, 1.25), (3, 0.5)])
/// ```
public struct SparseVector: Sendable, Hashable, CustomStringConvertible {
  /// Strictly increasing indices.
  public private(set) var indices: [UInt32]
  /// The value at each of ``indices``.
  public private(set) var values: [Float]

  /// A vector from index → value entries, sorted by index.
  public init(_ entries: [UInt32: Float]) {
    let sorted = entries.sorted { $0.key < $1.key }
    indices = sorted.map(\.key)
    values = sorted.map(\.value)
  }

  /// A vector from `(index, value)` pairs in any order; a later pair for the same index replaces
  /// an earlier one.
  public init<Pairs: Sequence>(pairs: Pairs) where Pairs.Element == (UInt32, Float) {
    // A stable sort keeps input order among equal indices, so the last one wins below.
    let sorted = pairs.enumerated().sorted {
      ($0.element.0, $0.offset) < ($1.element.0, $1.offset)
    }
    indices = []
    values = []
    indices.reserveCapacity(sorted.count)
    values.reserveCapacity(sorted.count)
    for (_, (index, value)) in sorted {
      if indices.last == index {
        values[values.count - 1] = value
      } else {
        indices.append(index)
        values.append(value)
      }
    }
  }

  /// Entries already sorted and unique (what the server returns); checked by the caller.
  init(sortedIndices: [UInt32], values: [Float]) {
    self.indices = sortedIndices
    self.values = values
  }

  /// The number of entries stored.
  public var count: Int { indices.count }

  /// The value at `index`, or nil when the vector has no entry there.
  public subscript(index: UInt32) -> Float? {
    var low = 0
    var high = indices.count
    while low < high {
      let middle = (low + high) / 2
      if indices[middle] < index { low = middle + 1 } else { high = middle }
    }
    return low < indices.count && indices[low] == index ? values[low] : nil
  }

  /// The entries as index → value.
  public var dictionary: [UInt32: Float] {
    Dictionary(uniqueKeysWithValues: zip(indices, values))
  }

  /// The entries in index order as `{index: value, …}`, for example `{3: 0.5, 17: 1.25}`.
  public var description: String {
    "{" + zip(indices, values).map { "\($0): \($1)" }.joined(separator: ", ") + "}"
  }
}

/// Conversions between `Float` and the two 16-bit float formats Milvus stores, with
/// round-to-nearest-even as IEEE 754 (and numpy, and ml_dtypes) round.
enum HalfFloat {
  /// The IEEE 754 binary16 bits nearest to `value` (ties to even; overflow to infinity; NaN
  /// stays NaN).
  @inline(__always)
  static func float16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let magnitude = bits & 0x7FFF_FFFF
    // The common case, a result that is a normal binary16 (2^-14 up to what rounds to 65504):
    // round the 13 dropped bits to nearest even, then rebias the exponent (127 - 15 = 112).
    if magnitude >= 0x3880_0000 && magnitude < 0x477F_F000 {
      let rounded = magnitude &+ 0x0FFF &+ ((magnitude >> 13) & 1)
      return UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        | UInt16(truncatingIfNeeded: (rounded &- 0x3800_0000) >> 13)
    }
    return float16BitsSlowly(value)
  }

  /// Zero, subnormal results, overflow to infinity, infinities and NaN.
  private static func float16BitsSlowly(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    var mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF {
      let payload = UInt16(truncatingIfNeeded: mantissa >> 13)
      return sign | 0x7C00 | (mantissa == 0 ? 0 : 0x200 | payload)
    }
    let halfExponent = exponent - 127 + 15
    if halfExponent >= 0x1F { return sign | 0x7C00 }
    if halfExponent <= 0 {
      // A binary16 subnormal (or zero): the 24-bit significand shifted into 10 bits.
      if halfExponent < -10 { return sign }
      mantissa |= 0x80_0000
      let shift = UInt32(14 - halfExponent)
      return sign | UInt16(truncatingIfNeeded: roundedShift(mantissa, by: shift))
    }
    // Rounding may carry into the exponent, up to infinity: both are right.
    let shifted = UInt32(halfExponent) << 23 | mantissa
    return sign | UInt16(truncatingIfNeeded: roundedShift(shifted, by: 13))
  }

  /// The exact `Float` value of binary16 `bits`.
  static func float(float16Bits bits: UInt16) -> Float {
    let sign: UInt32 = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0 {
      let magnitude = Float(mantissa) * 0x1p-24
      return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
    return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
  }

  /// The bfloat16 bits nearest to `value` (the top half of its float32 bits, ties to even;
  /// NaN stays a quiet NaN).
  @inline(__always)
  static func bfloat16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
    return UInt16(truncatingIfNeeded: roundedShift(bits, by: 16))
  }

  /// The exact `Float` value of bfloat16 `bits`.
  static func float(bfloat16Bits bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
  }

  /// `value >> shift`, rounded to nearest with ties to even (`shift` in 1 … 31).
  private static func roundedShift(_ value: UInt32, by shift: UInt32) -> UInt32 {
    let half: UInt32 = 1 << (shift - 1)
    let rest = value & ((1 << shift) - 1)
    var result = value >> shift
    if rest > half || (rest == half && result & 1 == 1) { result += 1 }
    return result
  }
}

/// A field's default value on the wire (`ValueField`), both ways.
enum ValueFieldCoding {
  static func proto(_ value: FieldValue, type: DataType, path: String) throws(MilvexError)
    -> Milvus_Proto_Schema_ValueField
  {
    var proto = Milvus_Proto_Schema_ValueField()
    func mismatch() -> MilvexError {
      .invalidArgument(field: path, message: "expected \(type), got \(value.kindName)")
    }
    switch (type, value) {
    case (.bool, .bool(let flag)): proto.boolData = flag
    case (.int8, .int(let number)), (.int16, .int(let number)), (.int32, .int(let number)):
      let range = type.integerRange
      guard range.contains(number) else {
        throw .invalidArgument(field: path, message: "\(number) is out of range for \(type)")
      }
      proto.intData = Int32(number)
    case (.int64, .int(let number)): proto.longData = number
    case (.float, _):
      guard let number = value.doubleValue, number.isFinite else { throw mismatch() }
      proto.floatData = Float(number)
    case (.double, _):
      guard let number = value.doubleValue, number.isFinite else { throw mismatch() }
      proto.doubleData = number
    case (.varChar(let maxLength), .string(let string)):
      guard string.utf8.count <= maxLength else {
        throw .invalidArgument(
          field: path, message: "is \(string.utf8.count) bytes long; the maximum is \(maxLength)")
      }
      proto.stringData = string
    case (.bool, _), (.int8, _), (.int16, _), (.int32, _), (.int64, _), (.varChar, _):
      throw mismatch()
    default:
      throw .invalidArgument(
        field: path, message: "a \(type) field cannot have a default value in this client")
    }
    return proto
  }

  static func value(_ proto: Milvus_Proto_Schema_ValueField) -> FieldValue {
    switch proto.data {
    case .boolData(let flag): return .bool(flag)
    case .intData(let number): return .int(Int64(number))
    case .longData(let number): return .int(number)
    case .floatData(let number): return .float(number)
    case .doubleData(let number): return .double(number)
    case .stringData(let string): return .string(string)
    case .bytesData(let bytes): return .binaryVector(Array(bytes))
    case .timestamptzData(let number), .timeData(let number): return .int(number)
    case .dateData(let number): return .int(Int64(number))
    case nil: return .null
    }
  }
}
