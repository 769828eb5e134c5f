import Logging

/// How a ``GRPCChannel`` connects and behaves. Validated by ``validate()`` (called by
/// ``GRPCChannel/connect(configuration:loop:onEvent:)``): a bad value is an error naming the
/// field and the allowed range, never silently clamped.
public struct GRPCChannelConfiguration: Sendable {
  /// Host name or IP literal (IPv6 with or without brackets). Resolved on every connect.
  public var host: String
  /// TCP port of the server, in 1...65535 (Milvus listens on 19530 by default).
  public var port: Int
  /// TLS (``TLSConfiguration``), or nil for plaintext HTTP/2 (h2c with prior knowledge).
  /// With TLS the handshake counts against ``connectTimeout`` and `:scheme` is `https`.
  public var tls: TLSConfiguration?
  /// `:authority`; defaults to `host:port`.
  public var authority: String?
  /// Covers name resolution, TCP connect and the HTTP/2 handshake (server SETTINGS received).
  public var connectTimeout: Duration = .seconds(10)
  /// Send a PING after this long without reading anything (gRPC keepalive). At least 10 s
  /// unless ``allowTestingTimings`` is set.
  public var keepaliveTime: Duration = .seconds(10)
  /// The connection is dead if a keepalive PING is not acknowledged within this time.
  public var keepaliveTimeout: Duration = .seconds(10)
  /// Send keepalive PINGs also while no call is open.
  public var keepaliveWithoutCalls: Bool = false
  /// SETTINGS_INITIAL_WINDOW_SIZE we announce for each stream.
  public var initialStreamWindow: Int = 4 << 20
  /// Our connection-level receive window; large, so big search results are not throttled.
  public var initialConnectionWindow: Int = 8 << 20
  /// Responses larger than this fail with RESOURCE_EXHAUSTED before they are buffered.
  public var maxReceiveMessageSize: Int = 64 << 20
  /// Requests larger than this fail with RESOURCE_EXHAUSTED before anything is sent.
  public var maxSendMessageSize: Int = 64 << 20
  /// `user-agent`; the library's name and version by default.
  public var userAgent: String = "milvex-reactor-swift/\(MilvexReactorVersion.string)"
  /// Metadata sent with every call (for example Milvus's `authorization` and `dbname`); a
  /// call's own entry with the same key replaces it.
  public var defaultMetadata = GRPCMetadata()
  /// For tests only: permits keepalive times below 10 s (down to 10 ms).
  public var allowTestingTimings: Bool = false
  /// One address of ``host``, already resolved (an IP literal): the channel connects there and
  /// still uses ``host`` for `:authority` and TLS (a connection that keeps a channel per
  /// address). Text, not a `SocketAddress`: every connection keeps copies of its configuration,
  /// and a `sockaddr_storage` would add 132 bytes to each.
  var connectAddress: String?
  /// The DNS servers that resolve ``host`` (c-ares's `ip:port,…`), instead of the system's.
  var nameServers: String?
  /// Where the channel logs: connecting, ready and closed at debug level; TLS verification
  /// turned off, `too_many_pings` and keepalive timeouts as warnings. Label `milvex.grpc` by
  /// default.
  public var logger: Logger = Logger(label: "milvex.grpc")

  /// A configuration for `host:port` with every other setting at its default.
  ///
  /// Nothing is checked here; ``validate()`` (run by
  /// ``GRPCChannel/connect(configuration:loop:onEvent:)``) rejects bad values.
  ///
  /// - Parameters:
  ///   - host: Host name or IP literal (IPv6 with or without brackets).
  ///   - port: TCP port, 1...65535.
  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// The `:authority` sent.
  var effectiveAuthority: String {
    if let authority { return authority }
    return host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
  }

  /// The same configuration with the keepalive time doubled: what the next connection uses
  /// after the server said `too_many_pings` (GOAWAY ENHANCE_YOUR_CALM). The doubling stops at
  /// ``maximumKeepaliveTimeAfterTooManyPings`` (a server that keeps complaining cannot push
  /// the interval past any bound, nor overflow it).
  public func afterTooManyPings() -> GRPCChannelConfiguration {
    var copy = self
    let cap = Self.maximumKeepaliveTimeAfterTooManyPings
    if keepaliveTime < cap {
      copy.keepaliveTime = keepaliveTime <= cap / 2 ? keepaliveTime * 2 : cap
    }
    return copy
  }

  /// How far too_many_pings can double the keepalive time: 24 hours.
  public static let maximumKeepaliveTimeAfterTooManyPings: Duration = .seconds(86_400)

  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` naming the first bad field.
  public func validate() throws(MilvexError) {
    guard !host.isEmpty else { throw .invalidArgument(field: "host", message: "must not be empty") }
    guard (1...65535).contains(port) else {
      throw .invalidArgument(field: "port", message: "must be in 1...65535 (got \(port))")
    }
    guard connectTimeout >= .milliseconds(1) else {
      throw .invalidArgument(
        field: "connectTimeout", message: "must be at least 1 ms (got \(connectTimeout))")
    }
    let minimumKeepalive: Duration = allowTestingTimings ? .milliseconds(10) : .seconds(10)
    guard keepaliveTime >= minimumKeepalive else {
      throw .invalidArgument(
        field: "keepaliveTime",
        message: "must be at least \(minimumKeepalive) (got \(keepaliveTime))")
    }
    let minimumTimeout: Duration = allowTestingTimings ? .milliseconds(10) : .seconds(1)
    guard keepaliveTimeout >= minimumTimeout else {
      throw .invalidArgument(
        field: "keepaliveTimeout",
        message: "must be at least \(minimumTimeout) (got \(keepaliveTimeout))")
    }
    let windows = 65_535...Int(Int32.max)
    guard windows.contains(initialStreamWindow) else {
      throw .invalidArgument(
        field: "initialStreamWindow", message: "must be in \(windows) (got \(initialStreamWindow))")
    }
    guard windows.contains(initialConnectionWindow) else {
      throw .invalidArgument(
        field: "initialConnectionWindow",
        message: "must be in \(windows) (got \(initialConnectionWindow))")
    }
    let sizes = 1...Int(UInt32.max)
    guard sizes.contains(maxReceiveMessageSize) else {
      throw .invalidArgument(
        field: "maxReceiveMessageSize",
        message: "must be in \(sizes) (got \(maxReceiveMessageSize))")
    }
    guard sizes.contains(maxSendMessageSize) else {
      throw .invalidArgument(
        field: "maxSendMessageSize", message: "must be in \(sizes) (got \(maxSendMessageSize))")
    }
    try tls?.validate()
  }
}
