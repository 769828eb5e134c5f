import Foundation

/// One value of one field of one entity: what rows carry in and what queries and searches
/// return. Literals make rows read naturally:
///
/// ```swift
/// let row: Row = ["id": 7, "title": "seven", "score": 0.5, "vector": .floatVector([0.1, 0.2])]
/// ```
///
/// JSON fields (and dynamic fields) hold any tree of these values (`object`, `array`, scalars).
public enum FieldValue: Sendable, Hashable, CustomStringConvertible {
  case null
  case bool(Bool)
  /// Any integer field (int8 … int64); range-checked against the schema on insert.
  case int(Int64)
  case float(Float)
  case double(Double)
  case string(String)
  case floatVector([Float])
  /// A binary vector's bytes (8 dimensions per byte, the first dimension in the lowest bit of
  /// the first byte, as Milvus and numpy's `packbits(bitorder="little")`… store them).
  case binaryVector([UInt8])
  /// A float16 vector as raw IEEE 754 binary16 bits. A float16 field also accepts
  /// `.floatVector` (converted with round-to-nearest-even); ``floatVectorValue`` converts back.
  case float16Vector([UInt16])
  /// A bfloat16 vector as raw bits. A bfloat16 field also accepts `.floatVector`.
  case bfloat16Vector([UInt16])
  case int8Vector([Int8])
  /// A sparse vector. A sparse field also accepts an object (`["3": 0.5]`) or an array of
  /// `[index, value]` pairs.
  case sparseVector(SparseVector)
  /// An ARRAY field's elements, or a JSON array.
  case array([FieldValue])
  /// A JSON object.
  case object([String: FieldValue])

  /// The value of a `.bool`; nil for any other case.
  public var boolValue: Bool? {
    if case .bool(let value) = self { return value }
    return nil
  }

  /// The value of an `.int`; nil for any other case (floats are not converted).
  public var intValue: Int64? {
    if case .int(let value) = self { return value }
    return nil
  }

  /// The number as a Double (from `float`, `double` or `int`).
  public var doubleValue: Double? {
    switch self {
    case .double(let value): return value
    case .float(let value): return Double(value)
    case .int(let value): return Double(value)
    default: return nil
    }
  }

  /// The value of a `.string`; nil for any other case.
  public var stringValue: String? {
    if case .string(let value) = self { return value }
    return nil
  }

  /// The vector as floats (from `floatVector`, the 16-bit float vectors, `int8Vector`, or an
  /// `array` of numbers).
  public var floatVectorValue: [Float]? {
    switch self {
    case .floatVector(let vector): return vector
    case .float16Vector(let bits): return bits.map { HalfFloat.float(float16Bits: $0) }
    case .bfloat16Vector(let bits): return bits.map { HalfFloat.float(bfloat16Bits: $0) }
    case .int8Vector(let components): return components.map { Float($0) }
    case .array(let values):
      var vector: [Float] = []
      vector.reserveCapacity(values.count)
      for value in values {
        guard let number = value.doubleValue else { return nil }
        vector.append(Float(number))
      }
      return vector
    default: return nil
    }
  }

  /// The vector of a `.sparseVector`; nil for any other case (an object or an array of pairs is
  /// not converted).
  public var sparseVectorValue: SparseVector? {
    if case .sparseVector(let vector) = self { return vector }
    return nil
  }

  /// A float16 vector converted from floats with round-to-nearest-even.
  public static func float16Vector(converting floats: [Float]) -> FieldValue {
    .float16Vector(floats.map(HalfFloat.float16Bits))
  }

  /// A bfloat16 vector converted from floats with round-to-nearest-even.
  public static func bfloat16Vector(converting floats: [Float]) -> FieldValue {
    .bfloat16Vector(floats.map(HalfFloat.bfloat16Bits))
  }

  /// The elements of an `.array`; nil for any other case.
  public var arrayValue: [FieldValue]? {
    if case .array(let values) = self { return values }
    return nil
  }

  /// The members of an `.object`; nil for any other case.
  public var objectValue: [String: FieldValue]? {
    if case .object(let members) = self { return members }
    return nil
  }

  /// The value as JSON text (what a JSON field stores).
  public var jsonText: String {
    var text = ""
    JSONText.write(self, to: &text)
    return text
  }

  /// The value as JSON text, the same as ``jsonText``.
  public var description: String { jsonText }

  /// The kind of value, for error messages.
  var kindName: String {
    switch self {
    case .null: return "null"
    case .bool: return "a bool"
    case .int: return "an integer"
    case .float: return "a float"
    case .double: return "a double"
    case .string: return "a string"
    case .floatVector: return "a float vector"
    case .binaryVector: return "a binary vector"
    case .float16Vector: return "a float16 vector"
    case .bfloat16Vector: return "a bfloat16 vector"
    case .int8Vector: return "an int8 vector"
    case .sparseVector: return "a sparse vector"
    case .array: return "an array"
    case .object: return "an object"
    }
  }
}

extension FieldValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral,
  ExpressibleByIntegerLiteral,
  ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
  ExpressibleByDictionaryLiteral
{
  /// `.null`, written as `nil`.
  public init(nilLiteral: ()) { self = .null }
  /// A `.bool`, written as `true` or `false`.
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  /// An `.int`, written as an integer literal.
  public init(integerLiteral value: Int64) { self = .int(value) }
  /// A `.double`, written as a floating-point literal.
  public init(floatLiteral value: Double) { self = .double(value) }
  /// A `.string`, written as a string literal.
  public init(stringLiteral value: String) { self = .string(value) }
  /// An `.array`, written as an array literal.
  public init(arrayLiteral elements: FieldValue...) { self = .array(elements) }
  /// An `.object`, written as a dictionary literal; for a repeated key the last value wins.
  public init(dictionaryLiteral elements: (String, FieldValue)...) {
    self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
  }
}

/// One entity as field name → value. Keys that are not in the schema go to the dynamic field
/// (when the collection has one).
public typealias Row = [String: FieldValue]
