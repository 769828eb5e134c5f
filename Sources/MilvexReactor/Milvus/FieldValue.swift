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

/// A primary key: int64 or varchar.
public enum PrimaryKey: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral,
  ExpressibleByStringLiteral
{
  case int(Int64)
  case string(String)

  public init(integerLiteral value: Int64) { self = .int(value) }
  public init(stringLiteral value: String) { self = .string(value) }

  public var description: String {
    switch self {
    case .int(let value): return "\(value)"
    case .string(let value): return value
    }
  }

  /// The key as a field value.
  public var fieldValue: FieldValue {
    switch self {
    case .int(let value): return .int(value)
    case .string(let value): return .string(value)
    }
  }
}

/// The values of one field for many entities, for column-oriented inserts.
public enum FieldColumn: Sendable, Hashable {
  case bool([Bool])
  case int([Int64])
  case float([Float])
  case double([Double])
  case string([String])
  case floatVectors([[Float]])
  /// Any values (JSON and ARRAY fields, or mixed input).
  case values([FieldValue])

  public var count: Int {
    switch self {
    case .bool(let values): return values.count
    case .int(let values): return values.count
    case .float(let values): return values.count
    case .double(let values): return values.count
    case .string(let values): return values.count
    case .floatVectors(let values): return values.count
    case .values(let values): return values.count
    }
  }

  subscript(index: Int) -> FieldValue {
    switch self {
    case .bool(let values): return .bool(values[index])
    case .int(let values): return .int(values[index])
    case .float(let values): return .float(values[index])
    case .double(let values): return .double(values[index])
    case .string(let values): return .string(values[index])
    case .floatVectors(let values): return .floatVector(values[index])
    case .values(let values): return values[index]
    }
  }
}

/// Entities to insert or upsert: rows (one dictionary per entity) or columns (one array per
/// field, all of the same length).
public enum Entities: Sendable, Hashable {
  case rows([Row])
  case columns([String: FieldColumn])

  /// How many entities (for columns: the length of the first column by name; the lengths are
  /// checked on encoding).
  public var count: Int {
    switch self {
    case .rows(let rows): return rows.count
    case .columns(let columns): return columns.keys.min().flatMap { columns[$0]?.count } ?? 0
    }
  }
}

/// JSON text for field values: written by hand (a JSON field's bytes, the dynamic field's
/// object) and read with Foundation's `JSONDecoder`.
enum JSONText {
  static func write(_ value: FieldValue, to text: inout String) {
    switch value {
    case .null: text += "null"
    case .bool(let flag): text += flag ? "true" : "false"
    case .int(let number): text += String(number)
    case .float(let number): writeNumber(Double(number), to: &text)
    case .double(let number): writeNumber(number, to: &text)
    case .string(let string): writeString(string, to: &text)
    case .floatVector(let vector):
      text += "["
      for (index, element) in vector.enumerated() {
        if index > 0 { text += "," }
        writeNumber(Double(element), to: &text)
      }
      text += "]"
    case .array(let elements):
      text += "["
      for (index, element) in elements.enumerated() {
        if index > 0 { text += "," }
        write(element, to: &text)
      }
      text += "]"
    case .object(let members):
      writeObject(members, to: &text)
    }
  }

  static func writeObject(_ members: [String: FieldValue], to text: inout String) {
    text += "{"
    // Sorted keys: the same row always gives the same bytes.
    for (index, key) in members.keys.sorted().enumerated() {
      if index > 0 { text += "," }
      writeString(key, to: &text)
      text += ":"
      write(members[key]!, to: &text)
    }
    text += "}"
  }

  private static func writeNumber(_ number: Double, to text: inout String) {
    // JSON has no NaN or infinity; Milvus rejects them too.
    if number.isFinite { text += "\(number)" } else { text += "null" }
  }

  private static func writeString(_ string: String, to text: inout String) {
    text += "\""
    for scalar in string.unicodeScalars {
      switch scalar {
      case "\"": text += "\\\""
      case "\\": text += "\\\\"
      case "\n": text += "\\n"
      case "\r": text += "\\r"
      case "\t": text += "\\t"
      case _ where scalar.value < 0x20:
        text += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
          + String(scalar.value, radix: 16)
      default: text.unicodeScalars.append(scalar)
      }
    }
    text += "\""
  }

  /// Parses JSON bytes into a value tree.
  static func parse(_ bytes: Data) throws(MilvexError) -> FieldValue {
    do {
      return try JSONDecoder().decode(DecodedValue.self, from: bytes).value
    } catch {
      throw .protocolViolation("Milvus returned JSON that does not parse: \(error)")
    }
  }

  private struct DecodedValue: Decodable {
    let value: FieldValue

    init(from decoder: any Decoder) throws {
      if let container = try? decoder.container(keyedBy: Key.self) {
        var members: [String: FieldValue] = [:]
        for key in container.allKeys {
          members[key.stringValue] = try container.decode(DecodedValue.self, forKey: key).value
        }
        value = .object(members)
        return
      }
      if var container = try? decoder.unkeyedContainer() {
        var elements: [FieldValue] = []
        while !container.isAtEnd { elements.append(try container.decode(DecodedValue.self).value) }
        value = .array(elements)
        return
      }
      let single = try decoder.singleValueContainer()
      if single.decodeNil() {
        value = .null
      } else if let flag = try? single.decode(Bool.self) {
        value = .bool(flag)
      } else if let integer = try? single.decode(Int64.self) {
        value = .int(integer)
      } else if let number = try? single.decode(Double.self) {
        value = .double(number)
      } else {
        value = .string(try single.decode(String.self))
      }
    }
  }

  private struct Key: CodingKey {
    let stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { return nil }
  }
}
