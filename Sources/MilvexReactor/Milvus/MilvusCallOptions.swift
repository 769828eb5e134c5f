/// Per-call settings for ``MilvusClient/perform(_:options:)``.
public struct MilvusCallOptions: Sendable, Hashable {
  /// The whole call's deadline, counted from `perform`, covering waiting for the connection,
  /// every attempt and every retry delay. Defaults to the connection config's `timeout`.
  public var timeout: Duration?
  /// Runs the call in this database instead of the client's current one.
  public var database: String?
  /// Overrides the client's retry policy for this call.
  public var retryPolicy: RetryPolicy?

  /// Options for one call; nil leaves a setting to the client.
  ///
  /// - Parameters:
  ///   - timeout: The whole call's deadline; nil for the connection config's `timeout`. Must be
  ///     positive.
  ///   - database: The database to run the call in; nil for the client's current one. Must not
  ///     be empty.
  ///   - retryPolicy: The retry policy for this call; nil for the client's. Validated when the
  ///     call is performed.
  public init(timeout: Duration? = nil, database: String? = nil, retryPolicy: RetryPolicy? = nil) {
    self.timeout = timeout
    self.database = database
    self.retryPolicy = retryPolicy
  }
}
