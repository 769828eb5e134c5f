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

  /// The number of values in the column: one per entity (a vector counts as one).
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
