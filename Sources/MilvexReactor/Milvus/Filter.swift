internal import MilvexProtos

/// Builders for filter expressions whose quoting is easy to get wrong.
///
/// ```swift
/// let filter = FilterExpression.textMatch("body", "vector database")
/// // TEXT_MATCH(body, "vector database")
/// ```
public enum FilterExpression {
  /// `TEXT_MATCH(field, "words")`: rows whose analyzed text in `field` (a varchar field with
  /// `enableMatch`) contains any of the words.
  public static func textMatch(_ field: String, _ words: String) -> String {
    "TEXT_MATCH(\(field), \(literal(words)))"
  }

  /// A string literal for a filter, quoted and escaped (`"it's \"quoted\""`).
  public static func literal(_ text: String) -> String {
    var literal = ""
    JSONText.write(.string(text), to: &literal)
    return literal
  }
}

/// Filter expressions the client writes, and checks of field names against the schema.
enum Filter {
  /// `pk in [1, 2]` or `pk in ["a", "b"]`, the keys checked against the key's type.
  static func primaryKeyIn(
    _ ids: [PrimaryKey], schema: CollectionSchema, collection: String
  ) throws(MilvexError) -> String {
    guard let key = schema.primaryKey else {
      throw .protocolViolation("collection '\(collection)' has no primary key in its schema")
    }
    var literals: [String] = []
    literals.reserveCapacity(ids.count)
    for (index, id) in ids.enumerated() {
      switch (id, key.type) {
      case (.int(let value), .int64): literals.append("\(value)")
      case (.string(let value), .varChar):
        var text = ""
        JSONText.write(.string(value), to: &text)
        literals.append(text)
      default:
        throw .invalidArgument(
          field: "ids[\(index)]",
          message: "\(id) does not match primary key '\(key.name)' of type \(key.type)")
      }
    }
    return "\(key.name) in [\(literals.joined(separator: ","))]"
  }

  /// The keys as an `IDs` message (search by primary keys), each checked against the key's
  /// type; errors name `path[index]`.
  static func primaryKeyIDs(
    _ ids: [PrimaryKey], schema: CollectionSchema, collection: String, path: String
  ) throws(MilvexError) -> Milvus_Proto_Schema_IDs {
    guard let key = schema.primaryKey else {
      throw .protocolViolation("collection '\(collection)' has no primary key in its schema")
    }
    var integers: [Int64] = []
    var strings: [String] = []
    for (index, id) in ids.enumerated() {
      switch (id, key.type) {
      case (.int(let value), .int64): integers.append(value)
      case (.string(let value), .varChar): strings.append(value)
      default:
        throw .invalidArgument(
          field: "\(path)[\(index)]",
          message: "\(id) does not match primary key '\(key.name)' of type \(key.type)")
      }
    }
    var message = Milvus_Proto_Schema_IDs()
    if case .varChar = key.type {
      message.strID = Milvus_Proto_Schema_StringArray.with { $0.data = strings }
    } else {
      message.intID = Milvus_Proto_Schema_LongArray.with { $0.data = integers }
    }
    return message
  }

  /// A group-by field must be a field of the schema and not a vector field (Milvus groups by
  /// bool, integer and varchar fields; which others depends on the server).
  static func checkGroupBy(
    _ field: String, schema: CollectionSchema, collection: String, path: String
  ) throws(MilvexError) {
    guard let named = schema.field(named: field) else {
      throw .invalidArgument(
        field: path,
        message:
          "collection '\(collection)' has no field '\(field)'; a search groups by a scalar "
          + "field of the schema (not a dynamic key)")
    }
    if named.type.isVector {
      throw .invalidArgument(
        field: path,
        message: "field '\(field)' is \(named.type); a search groups by a scalar field")
    }
  }

  /// Output fields must be schema fields, `*`, `count(*)`, or (with a dynamic field) any key.
  static func checkOutputFields(
    _ names: [String], schema: CollectionSchema, collection: String
  ) throws(MilvexError) {
    for (index, name) in names.enumerated() {
      if name.isEmpty {
        throw .invalidArgument(field: "outputFields[\(index)]", message: "must not be empty")
      }
      if name == "*" || name == "count(*)" || name == EntityCodec.dynamicFieldName { continue }
      if schema.field(named: name) == nil && !schema.enableDynamicField {
        throw .invalidArgument(
          field: "outputFields[\(index)]",
          message: "unknown field '\(name)': collection '\(collection)' has no such field")
      }
      if let field = schema.field(named: name), case .unsupported = field.type {
        throw EntityCodec.unsupported(fieldName: name, type: field.type, collection: collection)
      }
    }
  }
}
