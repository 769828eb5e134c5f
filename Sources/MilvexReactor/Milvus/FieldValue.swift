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
  /// An ARRAY field's elements, or a JSON array.
  case array([FieldValue])
  /// A JSON object.
  case object([String: FieldValue])

  public var boolValue: Bool? {
    if case .bool(let value) = self { return value }
    return nil
  }

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

  public var stringValue: String? {
    if case .string(let value) = self { return value }
    return nil
  }

  /// The vector (from `floatVector`, or an `array` of numbers).
  public var floatVectorValue: [Float]? {
    switch self {
    case .floatVector(let vector): return vector
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

  public var arrayValue: [FieldValue]? {
    if case .array(let values) = self { return values }
    return nil
  }

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
    case .array: return "an array"
    case .object: return "an object"
    }
  }
}

extension FieldValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
  ExpressibleByDictionaryLiteral
{
  public init(nilLiteral: ()) { self = .null }
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  public init(integerLiteral value: Int64) { self = .int(value) }
  public init(floatLiteral value: Double) { self = .double(value) }
  public init(stringLiteral value: String) { self = .string(value) }
  public init(arrayLiteral elements: FieldValue...) { self = .array(elements) }
  public init(dictionaryLiteral elements: (String, FieldValue)...) {
    self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
  }
}

/// One entity as field name → value. Keys that are not in the schema go to the dynamic field
/// (when the collection has one).
public typealias Row = [String: FieldValue]
