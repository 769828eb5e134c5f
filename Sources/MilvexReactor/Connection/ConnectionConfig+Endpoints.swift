/// One server of a deployment: a host name or IP address and a TCP port.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
  /// Host name or IP address (an IPv6 address without brackets).
  public var host: String
  /// TCP port.
  public var port: Int

  /// An endpoint; ``ConnectionConfig/validate()`` checks it.
  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// `host:port`, with brackets around an IPv6 address.
  public var description: String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
  }
}

extension ConnectionConfig {
  /// Every endpoint: ``host``:``port`` first, then ``additionalEndpoints``.
  public var endpoints: [Endpoint] {
    [Endpoint(host: host, port: port)] + additionalEndpoints
  }

  /// A configuration for several endpoints of one deployment, one URI each (see
  /// ``init(uri:)``). The first URI gives every setting; the others may differ from it only in
  /// host and port.
  ///
  /// - Throws: ``MilvexError/invalidArgument(field:message:)`` for an empty list, a URI that
  ///   does not parse (as ``init(uri:)`` says), or one that differs from the first in more than
  ///   host and port (`uris[i]`; no part of a URI is repeated: it may hold a secret).
  public init(uris: [String]) throws(MilvexError) {
    guard let first = uris.first else {
      throw .invalidArgument(field: "uris", message: "must name at least one endpoint")
    }
    self = try ConnectionConfig(uri: first)
    for (index, uri) in uris.enumerated().dropFirst() {
      let other = try ConnectionConfig(uri: uri)
      var comparable = other
      comparable.host = host
      comparable.port = port
      guard comparable == self else {
        throw .invalidArgument(
          field: "uris[\(index)]",
          message: "must differ from uris[0] only in host and port (the other settings, "
            + "credentials and database apply to every endpoint)")
      }
      additionalEndpoints.append(Endpoint(host: other.host, port: other.port))
    }
    try validate()
  }

  /// Each additional endpoint is a plain host and a port in range, and no endpoint is listed
  /// twice.
  func validateAdditionalEndpoints() throws(MilvexError) {
    var seen: Set<Endpoint> = [Endpoint(host: host, port: port)]
    for (index, endpoint) in additionalEndpoints.enumerated() {
      let field = "additionalEndpoints[\(index)]"
      if endpoint.host.isEmpty
        || endpoint.host.contains(where: { $0.isWhitespace || "/?#@[]".contains($0) })
      {
        throw .invalidArgument(
          field: field, message: "must have a host name or IP address, without scheme or path")
      }
      guard (1...65535).contains(endpoint.port) else {
        throw .invalidArgument(field: field, message: "port must be between 1 and 65535")
      }
      guard seen.insert(endpoint).inserted else {
        throw .invalidArgument(field: field, message: "lists \(endpoint) a second time")
      }
    }
  }

  /// The health check interval and the maximum channel age are off, or within their range.
  func validatePeriodicChecks() throws(MilvexError) {
    let minimum: Duration = allowTestingTimings ? .milliseconds(10) : .seconds(1)
    for (field, value) in [
      ("healthCheckInterval", healthCheckInterval), ("maxChannelAge", maxChannelAge),
    ] {
      guard let value else { continue }
      guard value >= minimum, value <= Self.longestTiming else {
        throw .invalidArgument(
          field: field,
          message: "must be between \(Self.milliseconds(minimum)) and 30 days, or nil for none")
      }
    }
  }

  /// This configuration for one of its endpoints: that host and port, no other endpoints.
  func forEndpoint(_ endpoint: Endpoint) -> ConnectionConfig {
    var config = self
    config.host = endpoint.host
    config.port = endpoint.port
    config.additionalEndpoints = []
    return config
  }
}
