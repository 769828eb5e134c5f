import Foundation

/// One complete HTTP/1.1 request, as the parser delivered it.
struct HTTPRequest {
  /// The method name, such as `GET`.
  var method: String
  /// The request target as sent: path and query, such as `/search?q=milk&limit=3`.
  var target: String
  /// The body (empty without one).
  var body: [UInt8]
  /// Whether the client keeps the connection open after the response (HTTP/1.1 default, or
  /// `Connection: keep-alive` in HTTP/1.0).
  var keepAlive: Bool
  /// When the request was complete, for `took_ms`.
  var receivedAt: ContinuousClock.Instant

  /// The target's path, percent-decoded (nil if the encoding is broken).
  var path: String? {
    let raw = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
    return String(raw).removingPercentEncoding
  }

  /// The query's parameters (`+` is a space); the first value of a repeated name wins.
  ///
  /// - Throws: ``HTTPError`` (400) naming a parameter whose percent-encoding is broken.
  func queryParameters() throws(HTTPError) -> [String: String] {
    let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    guard parts.count == 2 else { return [:] }
    var parameters: [String: String] = [:]
    for pair in parts[1].split(separator: "&") {
      let nameAndValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
      }
      guard let name = decode(nameAndValue[0]),
        let value = nameAndValue.count == 2 ? decode(nameAndValue[1]) : ""
      else {
        throw HTTPError(
          .badRequest, "query parameter '\(nameAndValue[0])' has a broken percent-encoding")
      }
      if parameters[name] == nil { parameters[name] = value }
    }
    return parameters
  }
}

/// The statuses the service answers with.
enum HTTPStatus: Int {
  case ok = 200
  case badRequest = 400
  case notFound = 404
  case methodNotAllowed = 405
  case payloadTooLarge = 413
  case uriTooLong = 414
  case requestHeaderFieldsTooLarge = 431
  case internalServerError = 500
  case serviceUnavailable = 503

  /// The reason phrase of the status line.
  var reason: String {
    switch self {
    case .ok: return "OK"
    case .badRequest: return "Bad Request"
    case .notFound: return "Not Found"
    case .methodNotAllowed: return "Method Not Allowed"
    case .payloadTooLarge: return "Payload Too Large"
    case .uriTooLong: return "URI Too Long"
    case .requestHeaderFieldsTooLarge: return "Request Header Fields Too Large"
    case .internalServerError: return "Internal Server Error"
    case .serviceUnavailable: return "Service Unavailable"
    }
  }
}

/// A request that cannot be served, with words for the client: the answer is
/// `{"error": message, "status": code}`.
struct HTTPError: Error {
  /// The response status.
  var status: HTTPStatus
  /// What was wrong, naming the parameter, field or limit.
  var message: String
  /// Extra response headers (`Allow` for 405).
  var headers: [(String, String)] = []

  /// An error with `status` and `message`.
  init(_ status: HTTPStatus, _ message: String, headers: [(String, String)] = []) {
    self.status = status
    self.message = message
    self.headers = headers
  }

  /// The JSON response for this error.
  var response: HTTPResponse {
    HTTPResponse(
      status: status, json: ["error": message, "status": status.rawValue], headers: headers)
  }
}

/// One response: a status and a JSON body.
struct HTTPResponse {
  /// The status.
  var status: HTTPStatus
  /// The serialized JSON body.
  var body: [UInt8]
  /// Extra headers; `Content-Type`, `Content-Length` and `Connection` are added when written.
  var headers: [(String, String)]

  /// A response whose body is `json` serialized (keys sorted, so answers are stable).
  init(status: HTTPStatus = .ok, json: [String: Any], headers: [(String, String)] = []) {
    self.status = status
    self.headers = headers
    if let data = try? JSONSerialization.data(
      withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
    {
      body = [UInt8](data)
    } else {
      // Only a non-JSON value (a bug in this program) gets here; the client still gets JSON.
      self.status = .internalServerError
      body = Array(#"{"error":"the response could not be encoded as JSON","status":500}"#.utf8)
    }
  }

  /// The response's bytes on the wire; `close` announces that the connection closes after it.
  /// Without `body` (the answer to a HEAD request) only the head is sent, with the length the
  /// body would have.
  func serialized(close: Bool, body includeBody: Bool = true) -> [UInt8] {
    var head = "HTTP/1.1 \(status.rawValue) \(status.reason)\r\n"
    head += "Content-Type: application/json\r\n"
    head += "Content-Length: \(body.count)\r\n"
    head += close ? "Connection: close\r\n" : "Connection: keep-alive\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    head += "\r\n"
    return Array(head.utf8) + (includeBody ? body : [])
  }
}
