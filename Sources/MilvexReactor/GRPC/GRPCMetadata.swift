/// Custom metadata sent with a gRPC call (HTTP/2 header fields).
///
/// Keys are lower-case ASCII (`0-9 a-z - _ .`); keys ending in `-bin` carry binary values,
/// sent base64-encoded; other values are printable ASCII. Invalid entries make the call fail
/// with ``MilvexError/invalidArgument(field:message:)`` naming the key, before anything is sent.
public struct GRPCMetadata: Sendable, Hashable {
  /// The value of one entry: text for ordinary keys, bytes for keys ending in `-bin`.
  public enum Value: Sendable, Hashable {
    case text(String)
    case binary([UInt8])
  }

  /// Every entry in the order it was added; a key may occur more than once (each is sent).
  public private(set) var entries: [(key: String, value: Value)] = []

  /// Empty metadata.
  public init() {}

  /// Text entries, in order.
  public init(_ elements: [(String, String)]) {
    for (key, value) in elements { add(key, value) }
  }

  /// Appends a text entry.
  ///
  /// Not checked here: an invalid key or value fails the call that sends it, with
  /// ``MilvexError/invalidArgument(field:message:)``.
  ///
  /// - Parameters:
  ///   - key: Lower-case ASCII (`0-9 a-z - _ .`), not ending in `-bin`.
  ///   - value: Printable ASCII.
  public mutating func add(_ key: String, _ value: String) {
    entries.append((key, .text(value)))
  }

  /// Appends a binary entry, sent base64-encoded.
  ///
  /// Not checked here: an invalid key fails the call that sends it, with
  /// ``MilvexError/invalidArgument(field:message:)``.
  ///
  /// - Parameters:
  ///   - key: Lower-case ASCII (`0-9 a-z - _ .`) ending in `-bin`.
  ///   - value: The bytes.
  public mutating func add(_ key: String, binary value: [UInt8]) {
    entries.append((key, .binary(value)))
  }

  /// Whether there are no entries.
  public var isEmpty: Bool { entries.isEmpty }

  /// Whether an entry has this key.
  public func contains(key: String) -> Bool { entries.contains { $0.key == key } }

  /// Whether both hold the same entries (keys and values) in the same order.
  public static func == (lhs: GRPCMetadata, rhs: GRPCMetadata) -> Bool {
    lhs.entries.elementsEqual(rhs.entries) { $0.key == $1.key && $0.value == $1.value }
  }

  /// Hashes the entries in order, consistent with `==`.
  public func hash(into hasher: inout Hasher) {
    for entry in entries {
      hasher.combine(entry.key)
      hasher.combine(entry.value)
    }
  }

  /// Header names this library sets itself; callers may not send them.
  private static let reserved: Set<String> = [
    "content-type", "te", "user-agent", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
    "host", "connection", "transfer-encoding", "upgrade", "keep-alive", "proxy-connection",
  ]

  /// Adds every entry to `block`, except those whose key `overrides` has, or returns the error
  /// naming the first invalid one.
  func encode(into block: inout HeaderBlock, except overrides: GRPCMetadata? = nil) -> MilvexError?
  {
    for (key, value) in entries {
      if let overrides, overrides.contains(key: key) { continue }
      switch Self.headerValue(key: key, value: value) {
      case .success(let text): block.add(key, text)
      case .failure(let error): return error
      }
    }
    return nil
  }

  /// Every entry checked and encoded once, for metadata sent with many calls: ``Checked``
  /// adds them per call without checking again.
  func checked() -> Checked {
    Checked(entries: entries.map { ($0.key, Self.headerValue(key: $0.key, value: $0.value)) })
  }

  /// Entries already checked and encoded; adding them does the same as ``encode(into:except:)``
  /// (an invalid entry not overridden fails the call) without checking each call.
  struct Checked {
    fileprivate var entries: [(key: String, value: Result<String, MilvexError>)]

    func encode(into block: inout HeaderBlock, except overrides: GRPCMetadata) -> MilvexError? {
      for (key, value) in entries where overrides.isEmpty || !overrides.contains(key: key) {
        switch value {
        case .success(let text): block.add(key, text)
        case .failure(let error): return error
        }
      }
      return nil
    }
  }

  /// The header value of one entry (base64 for binary values), or the error naming it.
  private static func headerValue(key: String, value: Value) -> Result<String, MilvexError> {
    // Only an error names the field: no string is built for a valid entry (the per-call path).
    var field: String { "metadata[\(key)]" }
    guard !key.isEmpty, all(key.utf8, isKeyByte) else {
      return .failure(
        .invalidArgument(
          field: field, message: "keys must be non-empty lower-case ASCII (0-9 a-z - _ .)"))
    }
    guard !reserved.contains(key), !key.hasPrefix("grpc-") else {
      return .failure(
        .invalidArgument(field: field, message: "this key is reserved for the gRPC protocol"))
    }
    switch value {
    case .binary(let bytes):
      guard key.hasSuffix("-bin") else {
        return .failure(
          .invalidArgument(field: field, message: "binary values need a key ending in -bin"))
      }
      return .success(GRPCWireFormat.base64Encode(bytes))
    case .text(let text):
      guard !key.hasSuffix("-bin") else {
        return .failure(
          .invalidArgument(
            field: field, message: "keys ending in -bin carry binary values; use add(_:binary:)"))
      }
      guard all(text.utf8, { $0 >= 0x20 && $0 <= 0x7E }) else {
        return .failure(
          .invalidArgument(field: field, message: "text values must be printable ASCII"))
      }
      return .success(text)
    }
  }

  /// `allSatisfy` as a plain loop over the UTF-8 bytes (inlined; the generic one is not).
  @inline(__always)
  static func all(_ bytes: String.UTF8View, _ test: (UInt8) -> Bool) -> Bool {
    for byte in bytes where !test(byte) { return false }
    return true
  }

  private static func isKeyByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
      UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
      return true
    default:
      return false
    }
  }
}
