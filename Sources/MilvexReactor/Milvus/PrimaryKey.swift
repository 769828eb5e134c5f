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
