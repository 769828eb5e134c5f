import Foundation
internal import MilvexProtos

/// Filter templates (Milvus's `expr_template_values`, pymilvus's `filter_params`): a filter
/// names placeholders in braces and the values travel beside it, typed, so a list of 10,000
/// keys is not parsed as expression text and a user's string needs no quoting:
///
/// ```swift
/// .query("docs", filter: "id in {ids} and color == {c}",
///        filterParams: ["ids": [1, 2, 3], "c": "red"])
/// ```
///
/// Values are converted as pymilvus 3.0.2 converts the same Python values (byte for byte):
/// `.bool`, `.int`, `.string`, and `.float`/`.double` (both sent as a double) stand alone; an
/// `.array` whose elements are all of one of those kinds becomes a typed list (floats and
/// doubles count as one kind), an array of arrays a list of lists, an empty array an empty
/// list, and an array mixing kinds a list of each element's JSON text (a string in it as a
/// JSON string; pymilvus takes a string there as JSON text already). `.null`, objects,
/// vectors and arrays of only objects or only nulls have no template form and are refused
/// before anything is sent. Milvus 2.5 and later read templates; older servers fail to parse
/// the braces.
enum FilterTemplate {
  /// The template values of `params`, or an error naming the bad value
  /// (`filterParams["ids"][2]`).
  static func values(_ params: [String: FieldValue], path: String = "filterParams")
    throws(MilvexError) -> [String: Milvus_Proto_Schema_TemplateValue]
  {
    var values: [String: Milvus_Proto_Schema_TemplateValue] = [:]
    values.reserveCapacity(params.count)
    // Sorted, so that the first bad key reported is the same on every run.
    for name in params.keys.sorted() {
      let namePath = "\(path)[\(FilterExpression.literal(name))]"
      guard isIdentifier(name) else {
        throw .invalidArgument(
          field: namePath,
          message:
            "is not a placeholder name: a filter names {placeholders} with letters, digits "
            + "and '_', not starting with a digit")
      }
      values[name] = try value(params[name]!, path: namePath)
    }
    return values
  }

  /// One value on its own.
  private static func value(_ value: FieldValue, path: String) throws(MilvexError)
    -> Milvus_Proto_Schema_TemplateValue
  {
    var template = Milvus_Proto_Schema_TemplateValue()
    switch value {
    case .bool(let flag): template.boolVal = flag
    case .int(let number): template.int64Val = number
    case .float(let number): template.floatVal = widened(number)
    case .double(let number): template.floatVal = number
    case .string(let text): template.stringVal = text
    case .array(let elements): template.arrayVal = try array(elements, path: path)
    case .null, .object, .floatVector, .binaryVector, .float16Vector, .bfloat16Vector,
      .int8Vector, .sparseVector:
      throw .invalidArgument(
        field: path,
        message:
          "is \(value.kindName), which has no filter template form; use a bool, an integer, "
          + "a number, a string or an array of them")
    }
    return template
  }

  /// The kinds a typed template list can hold (pymilvus infers one from the Python type).
  private enum Kind: Equatable {
    case bool, integer, number, string, array, object, null, vector
  }

  private static func kind(_ value: FieldValue) -> Kind {
    switch value {
    case .bool: return .bool
    case .int: return .integer
    case .float, .double: return .number
    case .string: return .string
    case .array: return .array
    case .object: return .object
    case .null: return .null
    case .floatVector, .binaryVector, .float16Vector, .bfloat16Vector, .int8Vector,
      .sparseVector:
      return .vector
    }
  }

  private static func array(_ elements: [FieldValue], path: String) throws(MilvexError)
    -> Milvus_Proto_Schema_TemplateArrayValue
  {
    var list = Milvus_Proto_Schema_TemplateArrayValue()
    guard let first = elements.first else { return list }
    let firstKind = kind(first)
    guard elements.allSatisfy({ kind($0) == firstKind }) else {
      // Mixed kinds: each element as JSON text, as pymilvus sends a mixed list.
      var json = Milvus_Proto_Schema_JSONArray()
      json.data = elements.map { Data($0.jsonText.utf8) }
      list.jsonData = json
      return list
    }
    switch firstKind {
    case .bool:
      var bools = Milvus_Proto_Schema_BoolArray()
      bools.data = elements.compactMap(\.boolValue)
      list.boolData = bools
    case .integer:
      var longs = Milvus_Proto_Schema_LongArray()
      longs.data = elements.compactMap(\.intValue)
      list.longData = longs
    case .number:
      var doubles = Milvus_Proto_Schema_DoubleArray()
      doubles.data = elements.map { element in
        if case .float(let number) = element { return widened(number) }
        return element.doubleValue ?? .nan
      }
      list.doubleData = doubles
    case .string:
      var strings = Milvus_Proto_Schema_StringArray()
      strings.data = elements.compactMap(\.stringValue)
      list.stringData = strings
    case .array:
      var lists = Milvus_Proto_Schema_TemplateArrayValueArray()
      for (index, element) in elements.enumerated() {
        lists.data.append(try array(element.arrayValue ?? [], path: "\(path)[\(index)]"))
      }
      list.arrayData = lists
    case .object, .null, .vector:
      throw .invalidArgument(
        field: "\(path)[0]",
        message:
          "is \(first.kindName), like every element: a template list holds bools, integers, "
          + "numbers, strings or lists (or a mix of kinds, sent as JSON)")
    }
    return list
  }

  /// A float32 as the double it was written as (`0.1`, not `0.10000000149011612`).
  private static func widened(_ number: Float) -> Double {
    Double("\(number)") ?? Double(number)
  }

  /// Milvus's placeholder names: identifiers.
  private static func isIdentifier(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, first == "_" || isLetter(first) else {
      return false
    }
    return name.unicodeScalars.allSatisfy { $0 == "_" || isLetter($0) || ("0"..."9").contains($0) }
  }

  private static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
    ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
  }
}
