import Foundation

/// One vector value checked against its field's type and turned into Milvus's wire bytes: the
/// same rules for inserted rows and for search queries.
enum VectorEncoding {
  /// Appends a float vector's components, checking the dimension and that each is finite.
  static func appendFloats(
    _ value: FieldValue, dimension: Int, path: @autoclosure () -> String, field: String,
    collection: String,
    to floats: inout [Float]
  ) throws(MilvexError) {
    guard let vector = value.floatVectorValue, !isHalfOrInt(value) else {
      throw mismatch(value, .floatVector(dimension: dimension), path())
    }
    try checkCount(vector.count, dimension, path: path(), field: field, collection: collection)
    try checkFinite(vector, path: path())
    floats.append(contentsOf: vector)
  }

  /// Appends a binary, float16, bfloat16 or int8 vector's bytes (little-endian for the 16-bit
  /// types, as Milvus and numpy store them).
  static func appendBytes(
    _ value: FieldValue, type: DataType, path: @autoclosure () -> String, field: String,
    collection: String,
    to bytes: inout [UInt8]
  ) throws(MilvexError) {
    switch type {
    case .binaryVector(let bits):
      let packed: [UInt8]
      switch value {
      case .binaryVector(let values): packed = values
      case .array(let elements): packed = try byteList(elements, type: type, path: path())
      default: throw mismatch(value, type, path())
      }
      guard packed.count * 8 == bits else {
        throw .invalidArgument(
          field: path(),
          message:
            "has \(packed.count) bytes (\(packed.count * 8) bits); field '\(field)' of "
            + "collection '\(collection)' has \(bits) bits (\(bits / 8) bytes)")
      }
      bytes.append(contentsOf: packed)
    case .float16Vector(let dimension), .bfloat16Vector(let dimension):
      let isFloat16: Bool
      if case .float16Vector = type { isFloat16 = true } else { isFloat16 = false }
      switch value {
      case .float16Vector(let bits) where isFloat16:
        try checkCount(bits.count, dimension, path: path(), field: field, collection: collection)
        try appendHalves(bits, isFloat16: true, path: path(), to: &bytes)
      case .bfloat16Vector(let bits) where !isFloat16:
        try checkCount(bits.count, dimension, path: path(), field: field, collection: collection)
        try appendHalves(bits, isFloat16: false, path: path(), to: &bytes)
      case .floatVector(let floats):
        try checkCount(floats.count, dimension, path: path(), field: field, collection: collection)
        try appendConverted(floats, isFloat16: isFloat16, path: path(), to: &bytes)
      case .array:
        guard let floats = value.floatVectorValue else { throw mismatch(value, type, path()) }
        try checkCount(floats.count, dimension, path: path(), field: field, collection: collection)
        try appendConverted(floats, isFloat16: isFloat16, path: path(), to: &bytes)
      default: throw mismatch(value, type, path())
      }
    case .int8Vector(let dimension):
      switch value {
      case .int8Vector(let components):
        try checkCount(
          components.count, dimension, path: path(), field: field, collection: collection)
        for component in components { bytes.append(UInt8(bitPattern: component)) }
      case .array(let elements):
        try checkCount(
          elements.count, dimension, path: path(), field: field, collection: collection)
        for (index, element) in elements.enumerated() {
          guard case .int(let number) = element, (-128...127).contains(number) else {
            throw .invalidArgument(
              field: "\(path())[\(index)]",
              message: "expected an integer in -128...127, got \(element)")
          }
          bytes.append(UInt8(bitPattern: Int8(number)))
        }
      default: throw mismatch(value, type, path())
      }
    default:
      throw mismatch(value, type, path())
    }
  }

  /// A sparse vector from any of its input shapes: `.sparseVector`, an object of index → value
  /// (`["3": 0.5]`), or an array of `[index, value]` pairs. Indices must be in 0 ..< 2³² − 1
  /// and values finite.
  static func sparse(_ value: FieldValue, path: @autoclosure () -> String) throws(MilvexError)
    -> SparseVector
  {
    let vector: SparseVector
    switch value {
    case .sparseVector(let given): vector = given
    case .object(let members):
      var pairs: [(UInt32, Float)] = []
      pairs.reserveCapacity(members.count)
      for (key, member) in members {
        guard let index = Int64(key) else {
          throw .invalidArgument(
            field: "\(path()).\(key)", message: "a sparse index must be an integer")
        }
        pairs.append(
          (try sparseIndex(index, path: path()), try sparseValue(member, path: "\(path()).\(key)")))
      }
      vector = SparseVector(pairs: pairs)
    case .array(let elements):
      var pairs: [(UInt32, Float)] = []
      pairs.reserveCapacity(elements.count)
      for (position, element) in elements.enumerated() {
        guard case .array(let pair) = element, pair.count == 2, case .int(let index) = pair[0]
        else {
          throw .invalidArgument(
            field: "\(path())[\(position)]",
            message: "expected an [index, value] pair, got \(element)")
        }
        pairs.append(
          (
            try sparseIndex(index, path: "\(path())[\(position)]"),
            try sparseValue(pair[1], path: "\(path())[\(position)]")
          ))
      }
      vector = SparseVector(pairs: pairs)
    default:
      throw mismatch(value, .sparseFloatVector, path())
    }
    if vector.indices.last == UInt32.max {
      throw .invalidArgument(
        field: path(), message: "sparse index 4294967295 is out of range 0...4294967294")
    }
    try checkFinite(vector.values, path: path())
    return vector
  }

  /// A sparse row on the wire: (index as uint32, value as float32) pairs, little-endian,
  /// sorted by index.
  static func sparseBytes(_ vector: SparseVector) -> Data {
    var data = Data(count: vector.count * 8)
    data.withUnsafeMutableBytes { raw in
      for position in 0..<vector.count {
        raw.storeBytes(
          of: vector.indices[position].littleEndian, toByteOffset: position * 8, as: UInt32.self)
        raw.storeBytes(
          of: vector.values[position].bitPattern.littleEndian, toByteOffset: position * 8 + 4,
          as: UInt32.self)
      }
    }
    return data
  }

  /// A sparse row read from the wire (sorted and unique in what servers send; re-sorted if not).
  static func sparse(from bytes: Data, field: String) throws(MilvexError) -> SparseVector {
    guard bytes.count % 8 == 0 else {
      throw .protocolViolation(
        "field '\(field)': a sparse vector of \(bytes.count) bytes is not a list of 8-byte pairs")
    }
    var indices: [UInt32] = []
    var values: [Float] = []
    indices.reserveCapacity(bytes.count / 8)
    values.reserveCapacity(bytes.count / 8)
    bytes.withUnsafeBytes { raw in
      for offset in stride(from: 0, to: raw.count, by: 8) {
        indices.append(
          UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        values.append(
          Float(
            bitPattern: UInt32(
              littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))))
      }
    }
    if zip(indices, indices.dropFirst()).allSatisfy({ $0 < $1 }) {
      return SparseVector(sortedIndices: indices, values: values)
    }
    return SparseVector(pairs: zip(indices, values).map { ($0, $1) })
  }

  /// Floats converted to 16-bit floats (round to nearest even) in one pass, little-endian.
  private static func appendConverted(
    _ floats: [Float], isFloat16: Bool, path: @autoclosure () -> String, to bytes: inout [UInt8]
  ) throws(MilvexError) {
    let exponentMask: UInt16 = isFloat16 ? 0x7C00 : 0x7F80
    let start = bytes.count
    bytes.append(contentsOf: repeatElement(0, count: floats.count * 2))
    // The index of the first value that is not finite or does not fit, if any. One loop per
    // format, over raw buffers: this runs for every component of every row.
    let bad: Int? = floats.withUnsafeBufferPointer { input in
      bytes.withUnsafeMutableBufferPointer { output in
        guard let source = input.baseAddress, let base = output.baseAddress else { return nil }
        let target = base + start
        if isFloat16 {
          for index in 0..<input.count {
            let half = HalfFloat.float16Bits(source[index])
            if half & exponentMask == exponentMask { return index }
            target[2 &* index] = UInt8(truncatingIfNeeded: half)
            target[2 &* index &+ 1] = UInt8(truncatingIfNeeded: half &>> 8)
          }
        } else {
          for index in 0..<input.count {
            let half = HalfFloat.bfloat16Bits(source[index])
            if half & exponentMask == exponentMask { return index }
            target[2 &* index] = UInt8(truncatingIfNeeded: half)
            target[2 &* index &+ 1] = UInt8(truncatingIfNeeded: half &>> 8)
          }
        }
        return nil
      }
    }
    guard let bad else { return }
    bytes.removeLast(floats.count * 2)
    let float = floats[bad]
    throw .invalidArgument(
      field: "\(path())[\(bad)]",
      message: float.isFinite
        ? "is \(float), too large for \(isFloat16 ? "float16" : "bfloat16") (infinite); "
          + "Milvus accepts only finite values"
        : "is \(float); Milvus accepts only finite values")
  }

  /// Raw 16-bit floats, checked finite, little-endian.
  private static func appendHalves(
    _ halves: [UInt16], isFloat16: Bool, path: @autoclosure () -> String, to bytes: inout [UInt8]
  ) throws(MilvexError) {
    bytes.reserveCapacity(bytes.count + halves.count * 2)
    let exponentMask: UInt16 = isFloat16 ? 0x7C00 : 0x7F80
    for (index, half) in halves.enumerated() {
      guard half & exponentMask != exponentMask else {
        throw .invalidArgument(
          field: "\(path())[\(index)]",
          message: "is infinite or NaN (bits 0x\(String(half, radix: 16))); Milvus accepts "
            + "only finite values")
      }
      bytes.append(UInt8(truncatingIfNeeded: half))
      bytes.append(UInt8(truncatingIfNeeded: half >> 8))
    }
  }

  static func mismatch(_ value: FieldValue, _ type: DataType, _ path: String) -> MilvexError {
    .invalidArgument(field: path, message: "expected \(type), got \(value.kindName)")
  }

  private static func isHalfOrInt(_ value: FieldValue) -> Bool {
    switch value {
    case .float16Vector, .bfloat16Vector, .int8Vector: return true
    default: return false
    }
  }

  private static func checkCount(
    _ count: Int, _ dimension: Int, path: @autoclosure () -> String, field: String,
    collection: String
  ) throws(MilvexError) {
    guard count == dimension else {
      throw .invalidArgument(
        field: path(),
        message:
          "has \(count) dimensions; field '\(field)' of collection '\(collection)' has \(dimension)"
      )
    }
  }

  private static func checkFinite(_ values: [Float], path: @autoclosure () -> String)
    throws(MilvexError)
  {
    guard let index = values.firstIndex(where: { !$0.isFinite }) else { return }
    throw .invalidArgument(
      field: "\(path())[\(index)]",
      message: "is \(values[index]); Milvus accepts only finite values")
  }

  private static func byteList(
    _ elements: [FieldValue], type: DataType, path: @autoclosure () -> String
  ) throws(MilvexError)
    -> [UInt8]
  {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(elements.count)
    for (index, element) in elements.enumerated() {
      guard case .int(let number) = element, (0...255).contains(number) else {
        throw .invalidArgument(
          field: "\(path())[\(index)]", message: "expected a byte (0...255), got \(element)")
      }
      bytes.append(UInt8(number))
    }
    return bytes
  }

  private static func sparseIndex(_ index: Int64, path: @autoclosure () -> String)
    throws(MilvexError) -> UInt32
  {
    guard (0..<Int64(UInt32.max)).contains(index) else {
      throw .invalidArgument(
        field: path(), message: "sparse index \(index) is out of range 0...4294967294")
    }
    return UInt32(index)
  }

  private static func sparseValue(_ value: FieldValue, path: @autoclosure () -> String)
    throws(MilvexError) -> Float
  {
    guard let number = value.doubleValue else {
      throw .invalidArgument(
        field: path(), message: "a sparse value must be a number, got \(value.kindName)")
    }
    return Float(number)
  }
}
