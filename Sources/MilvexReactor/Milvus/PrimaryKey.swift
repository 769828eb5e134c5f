/// A primary key: int64 or varchar.
public enum PrimaryKey: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral,
  ExpressibleByStringLiteral
{
  case int(Int64)
  case string(String)

  /// An int64 key, written as an integer literal.
  public init(integerLiteral value: Int64) { self = .int(value) }
  /// A varchar key, written as a string literal.
  public init(stringLiteral value: String) { self = .string(value) }

  /// The key's value: the number, or the string itself without quotes.
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
