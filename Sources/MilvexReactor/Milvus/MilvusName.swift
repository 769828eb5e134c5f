/// A name Milvus knows, as a type of its own: any string may be used, the common ones are
/// static members.
public protocol MilvusName: RawRepresentable<String>, Sendable, Hashable, ExpressibleByStringLiteral,
  CustomStringConvertible
{
  init(rawValue: String)
}

extension MilvusName {
  public init(stringLiteral value: String) { self.init(rawValue: value) }
  public var description: String { rawValue }
}

/// How vectors are compared. Any name Milvus knows may be used (`"HAMMING"`, …).
public struct MetricType: MilvusName {
  public let rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }

  public static let l2: MetricType = "L2"
  public static let ip: MetricType = "IP"
  public static let cosine: MetricType = "COSINE"
}

/// An index type. Any name Milvus knows may be used (`"DISKANN"`, …).
public struct IndexType: MilvusName {
  public let rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }

  public static let autoIndex: IndexType = "AUTOINDEX"
  public static let flat: IndexType = "FLAT"
  public static let ivfFlat: IndexType = "IVF_FLAT"
  public static let ivfSQ8: IndexType = "IVF_SQ8"
  public static let hnsw: IndexType = "HNSW"
  public static let inverted: IndexType = "INVERTED"
}
