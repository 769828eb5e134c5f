/// An index to create on a field.
public struct IndexSpec: Sendable, Hashable {
  public var fieldName: String
  public var indexType: IndexType
  /// Required for vector fields.
  public var metricType: MetricType?
  /// Build parameters (`M`, `efConstruction`, `nlist`, …).
  public var params: [String: FieldValue]
  /// Defaults to the field name.
  public var indexName: String?

  public init(
    fieldName: String, indexType: IndexType = .autoIndex, metricType: MetricType? = nil,
    params: [String: FieldValue] = [:], indexName: String? = nil
  ) {
    self.fieldName = fieldName
    self.indexType = indexType
    self.metricType = metricType
    self.params = params
    self.indexName = indexName
  }
}
