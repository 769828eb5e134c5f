import Foundation

/// JSON text for field values: written by hand (a JSON field's bytes, the dynamic field's
/// object) and read with Foundation's `JSONDecoder`.
enum JSONText {
  static func write(_ value: FieldValue, to text: inout String) {
    switch value {
    case .null: text += "null"
    case .bool(let flag): text += flag ? "true" : "false"
    case .int(let number): text += String(number)
    case .float(let number): writeNumber(number, to: &text)
    case .double(let number): writeNumber(number, to: &text)
    case .string(let string): writeString(string, to: &text)
    case .floatVector(let vector):
      text += "["
      for (index, element) in vector.enumerated() {
        if index > 0 { text += "," }
        writeNumber(element, to: &text)
      }
      text += "]"
    case .binaryVector(let bytes):
      writeList(bytes, to: &text) { $1 += String($0) }
    case .int8Vector(let components):
      writeList(components, to: &text) { $1 += String($0) }
    case .float16Vector, .bfloat16Vector:
      writeList(value.floatVectorValue ?? [], to: &text) { writeNumber($0, to: &$1) }
    case .sparseVector(let vector):
      // As a JSON object of index → value (pymilvus's dictionary form).
      text += "{"
      for (position, (index, element)) in zip(vector.indices, vector.values).enumerated() {
        if position > 0 { text += "," }
        text += "\"\(index)\":"
        writeNumber(element, to: &text)
      }
      text += "}"
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

  private static func writeList<Element>(
    _ elements: [Element], to text: inout String, _ write: (Element, inout String) -> Void
  ) {
    text += "["
    for (index, element) in elements.enumerated() {
      if index > 0 { text += "," }
      write(element, &text)
    }
    text += "]"
  }

  static func writeObject(_ members: [String: FieldValue], to text: inout String) {
    if members.count == 1, let (key, value) = members.first {
      text += "{"
      writeString(key, to: &text)
      text += ":"
      write(value, to: &text)
      text += "}"
      return
    }
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

  /// A float32 as its shortest decimal form (`0.1`, not the widened `0.10000000149011612`),
  /// which reads back as the same float32.
  private static func writeNumber(_ number: Float, to text: inout String) {
    if number.isFinite { text += "\(number)" } else { text += "null" }
  }

  private static func writeNumber(_ number: Double, to text: inout String) {
    // JSON has no NaN or infinity; Milvus rejects them too.
    if number.isFinite { text += "\(number)" } else { text += "null" }
  }

  private static func writeString(_ string: String, to text: inout String) {
    text += "\""
    // Most strings need no escaping: appended whole.
    if !string.utf8.contains(where: {
      $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\")
    }) {
      text += string
      text += "\""
      return
    }
    for scalar in string.unicodeScalars {
      switch scalar {
      case "\"": text += "\\\""
      case "\\": text += "\\\\"
      case "\n": text += "\\n"
      case "\r": text += "\\r"
      case "\t": text += "\\t"
      case _ where scalar.value < 0x20:
        text +=
          "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
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
