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
  /// A type a server described that this client does not model yet (binary or sparse
  /// vectors, Geometry, Text, …), named as Milvus names it. The collection stays usable: calls
  /// that do not touch the field work; writing or reading it fails with an error naming the
  /// field and the type. It cannot be used to create a collection.
  case unsupported(name: String, code: Int)

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
    case .unsupported(let name, _): return "\(name) (not supported by this client)"
    }
  }

  /// The types without parameters.
  static let parameterless: [DataType] = [
    .bool, .int8, .int16, .int32, .int64, .float, .double, .json,
  ]

  var isVector: Bool {
    if case .floatVector = self { return true }
    return false
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
    case .unsupported(_, let code): return Milvus_Proto_Schema_DataType(rawValue: code) ?? .none
    }
  }
}
