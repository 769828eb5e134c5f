internal import MilvexProtos

/// A field's type, with the parameters the type needs (dimension, maximum length, capacity).
public indirect enum DataType: Sendable, Hashable, CustomStringConvertible {
  case bool
  case int8
  case int16
  case int32
  case int64
  case float
  case double
  /// A string of at most `maxLength` bytes (UTF-8), 1 … 65,535.
  case varChar(maxLength: Int)
  case json
  /// An array of up to `capacity` (1 … 4,096) scalars of type `element` (not JSON or array).
  case array(of: DataType, capacity: Int)
  /// A dense float vector of `dimension` (1 … 32,768) components.
  case floatVector(dimension: Int)
  /// A binary vector of `dimension` bits (a multiple of 8, 8 … 32,768), stored as
  /// `dimension / 8` bytes; compared with HAMMING or JACCARD.
  case binaryVector(dimension: Int)
  /// A vector of IEEE 754 half-precision (float16) components, 1 … 32,768 of them.
  case float16Vector(dimension: Int)
  /// A vector of bfloat16 components (the top 16 bits of a float32), 1 … 32,768 of them.
  case bfloat16Vector(dimension: Int)
  /// A vector of signed 8-bit integer components, 1 … 32,768 of them.
  case int8Vector(dimension: Int)
  /// A sparse vector: index → float value, any number of non-zero entries, indices below
  /// 2³² − 1. Needs no dimension.
  case sparseFloatVector
  /// A type a server described that this client does not model (Geometry, Text, Timestamptz,
  /// structs, arrays of vectors, …), named as Milvus names it. The collection stays usable: calls
  /// that do not touch the field work; writing or reading it fails with an error naming the
  /// field and the type. It cannot be used to create a collection.
  case unsupported(name: String, code: Int)

  /// The type in lower case with its parameters, such as `varchar(256)`, `array<int64>[16]` or
  /// `float_vector(768)`; a type this client does not model shows its Milvus name.
  public var description: String {
    switch self {
    case .bool: return "bool"
    case .int8: return "int8"
    case .int16: return "int16"
    case .int32: return "int32"
    case .int64: return "int64"
    case .float: return "float"
    case .double: return "double"
    case .varChar(let maxLength): return "varchar(\(maxLength))"
    case .json: return "json"
    case .array(let element, let capacity): return "array<\(element)>[\(capacity)]"
    case .floatVector(let dimension): return "float_vector(\(dimension))"
    case .binaryVector(let dimension): return "binary_vector(\(dimension))"
    case .float16Vector(let dimension): return "float16_vector(\(dimension))"
    case .bfloat16Vector(let dimension): return "bfloat16_vector(\(dimension))"
    case .int8Vector(let dimension): return "int8_vector(\(dimension))"
    case .sparseFloatVector: return "sparse_float_vector"
    case .unsupported(let name, _): return "\(name) (not supported by this client)"
    }
  }

  /// The types without parameters.
  static let parameterless: [DataType] = [
    .bool, .int8, .int16, .int32, .int64, .float, .double, .json, .sparseFloatVector,
  ]

  /// Whether this is a vector type (float, binary, float16, bfloat16, int8 or sparse). A type
  /// this client does not model counts as a vector when its Milvus code is a vector code
  /// (100 … 199).
  public var isVector: Bool {
    switch self {
    case .floatVector, .binaryVector, .float16Vector, .bfloat16Vector, .int8Vector,
      .sparseFloatVector:
      return true
    case .unsupported(_, let code):
      // Vector codes (binary 100 … int8 105, vector arrays 106, future ones) stay vectors, so
      // a collection with only such a field is still described as having a vector field.
      return (100..<200).contains(code)
    default: return false
    }
  }

  /// The values an int8, int16 or int32 field holds (int32's for the other types).
  var integerRange: ClosedRange<Int64> {
    switch self {
    case .int8: return -128...127
    case .int16: return -32_768...32_767
    default: return Int64(Int32.min)...Int64(Int32.max)
    }
  }

  /// The dense dimension (components, or bits for a binary vector); nil for other types.
  public var dimension: Int? {
    switch self {
    case .floatVector(let dimension), .binaryVector(let dimension), .float16Vector(let dimension),
      .bfloat16Vector(let dimension), .int8Vector(let dimension):
      return dimension
    default: return nil
    }
  }

  var proto: Milvus_Proto_Schema_DataType {
    switch self {
    case .bool: return .bool
    case .int8: return .int8
    case .int16: return .int16
    case .int32: return .int32
    case .int64: return .int64
    case .float: return .float
    case .double: return .double
    case .varChar: return .varChar
    case .json: return .json
    case .array: return .array
    case .floatVector: return .floatVector
    case .binaryVector: return .binaryVector
    case .float16Vector: return .float16Vector
    case .bfloat16Vector: return .bfloat16Vector
    case .int8Vector: return .int8Vector
    case .sparseFloatVector: return .sparseFloatVector
    case .unsupported(_, let code): return Milvus_Proto_Schema_DataType(rawValue: code) ?? .none
    }
  }

  /// How a search sends a query vector for a field of this type.
  var placeholderType: Milvus_Proto_Common_PlaceholderType? {
    switch self {
    case .floatVector: return .floatVector
    case .binaryVector: return .binaryVector
    case .float16Vector: return .float16Vector
    case .bfloat16Vector: return .bfloat16Vector
    case .int8Vector: return .int8Vector
    case .sparseFloatVector: return .sparseFloatVector
    default: return nil
    }
  }
}
