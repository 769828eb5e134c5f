/// One server of a deployment: a host name or IP address and a TCP port.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
  /// Host name or IP address (an IPv6 address without brackets).
  public var host: String
  /// TCP port.
  public var port: Int
  /// For an endpoint the connection made from one address of a host name
  /// (``AddressResolution/everyAddress(refreshInterval:)``): that IP address. Nil for an
  /// endpoint as configured (the connection rejects one that sets it).
  public var address: String?

  /// An endpoint; ``ConnectionConfig/validate()`` checks it.
  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// `host:port`, with brackets around an IPv6 address, then the resolved address if any:
  /// `milvus.example:19530 (10.0.0.7)`.
  public var description: String {
    let base = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    return address.map { "\(base) (\($0))" } ?? base
  }
}

/// How a connection turns a host name into servers.
public enum AddressResolution: Sendable, Hashable, CustomStringConvertible {
  /// One endpoint per configured host (the default): each connect attempt resolves the name
  /// afresh and tries its addresses in order until one answers.
  case perAttempt
  /// Every address the name resolves to is an endpoint of its own, with its own reconnecting
  /// channel, in rotation by ``ConnectionConfig/loadBalancing`` (a Kubernetes headless
  /// service, or a DNS name with one record per Milvus proxy). The name is resolved again every
  /// `refreshInterval`, and soon after one of its endpoints fails (at most once per
  /// `min(refreshInterval, 5 s)`): an address that appears becomes an endpoint, one that
  /// disappeared stops taking calls and closes once its calls have finished. A failed
  /// resolution keeps the endpoints the name had. `:authority` and TLS still use the host
  /// name. An IP address as host stays one endpoint.
  case everyAddress(refreshInterval: Duration)

  /// `per_attempt`, or `every_address (refresh 30000 ms)`.
  public var description: String {
    switch self {
    case .perAttempt: return "per_attempt"
    case .everyAddress(let refresh):
      return "every_address (refresh \(ConnectionConfig.milliseconds(refresh)))"
    }
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
      if endpoint.address != nil {
        throw .invalidArgument(
          field: field + ".address",
          message: "is set by the connection for the addresses of a host name; leave it nil")
      }
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

  /// The health check interval, the maximum channel age and the address refresh are off, or
  /// within their range; the DNS server is an IP address.
  func validatePeriodicChecks() throws(MilvexError) {
    let minimum: Duration = allowTestingTimings ? .milliseconds(10) : .seconds(1)
    var refresh: Duration?
    if case .everyAddress(let interval) = addressResolution { refresh = interval }
    for (field, value) in [
      ("healthCheckInterval", healthCheckInterval), ("maxChannelAge", maxChannelAge),
      ("addressResolution.refreshInterval", refresh),
    ] {
      guard let value else { continue }
      guard value >= minimum, value <= Self.longestTiming else {
        throw .invalidArgument(
          field: field,
          message: "must be between \(Self.milliseconds(minimum)) and 30 days, or nil for none")
      }
    }
  }

  /// ``dnsServer`` is an IP address with a port in range.
  func validateDNSServer() throws(MilvexError) {
    guard let dnsServer else { return }
    guard dnsServer.address == nil, SocketAddress(ipLiteral: dnsServer.host, port: 53) != nil
    else {
      throw .invalidArgument(
        field: "dnsServer", message: "must be an IPv4 or IPv6 address, not a host name")
    }
    guard (1...65535).contains(dnsServer.port) else {
      throw .invalidArgument(field: "dnsServer", message: "port must be between 1 and 65535")
    }
  }

  /// c-ares's server list for ``dnsServer``: `ip:port` or `[ipv6]:port`.
  var nameServers: String? { dnsServer?.description }

  /// This configuration for one of its endpoints: that host and port, no other endpoints; for
  /// one address of a name, the channel connects to that address.
  func forEndpoint(_ endpoint: Endpoint, at address: SocketAddress? = nil) -> ConnectionConfig {
    var config = self
    config.host = endpoint.host
    config.port = endpoint.port
    config.additionalEndpoints = []
    config.connectAddress = address?.ipText
    return config
  }
}
