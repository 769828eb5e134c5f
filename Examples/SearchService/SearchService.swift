import Foundation
import MilvexReactor

/// The service's endpoints and its Milvus side: prepares the collection at start, embeds texts
/// (``TextEmbedding``) and runs the searches and inserts with the callback API.
///
/// The collection has three fields: `id` (int64 primary key), `text` (varchar, 4096 bytes) and
/// `vector` (float vector of the configured dimension, COSINE index).
///
/// - Important: Loop thread only: every method and every completion runs on the thread that
///   runs the host's libev loop (so `client.onLoop.perform`, which needs no queue hop).
final class SearchService {
  /// The longest text accepted, in UTF-8 bytes (the `text` field's `maxLength`).
  static let maxTextBytes = 4096
  /// The most texts one `POST /insert` may carry.
  static let maxTextsPerInsert = 1000
  /// The largest `limit` of a search.
  static let maxLimit = 100
  /// The deadline of each Milvus call a request makes (it waits for a reconnect within it).
  static let callOptions = MilvusCallOptions(timeout: .seconds(10))

  // Internal rather than private: the collection's preparation (SearchService+Collection.swift)
  // uses them too.
  let client: MilvusClient
  let collection: String
  let embedding: TextEmbedding
  let loop: OpaquePointer
  /// The collection exists, has its index and is loaded: searches and inserts may run.
  var collectionReady = false
  /// Why the collection is not ready, if preparing it failed.
  var setupProblem: String?
  /// The next try of the preparation after a failed step.
  var setupTimer: HostTimer?
  /// The load wait in progress (cancelled at shutdown).
  var loadWait: MilvusCallHandle?
  /// Set at shutdown: the preparation stops.
  var stopped = false
  private var ids = IDGenerator()

  /// A service over `client`, for `collection` with vectors of `dimension`. Call
  /// ``prepareCollection()`` to get it ready.
  init(client: MilvusClient, collection: String, dimension: Int, loop: OpaquePointer) {
    self.client = client
    self.collection = collection
    self.embedding = TextEmbedding(dimension: dimension)
    self.loop = loop
  }

  /// Stops preparing the collection (shutdown); requests still in flight complete.
  func stop() {
    stopped = true
    setupTimer?.cancel()
    setupTimer = nil
    loadWait?.cancel()
    loadWait = nil
  }

  // MARK: - Routing

  /// Answers one request (the server's ``RequestHandler``).
  func handle(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
    do throws(HTTPError) {
      guard let path = request.path else {
        throw HTTPError(.badRequest, "the request path has a broken percent-encoding")
      }
      switch path {
      case "/health":
        try require("GET", of: request, path: path)
        respond(health())
      case "/search":
        try require("GET", of: request, path: path)
        try search(request, respond: respond)
      case "/insert":
        try require("POST", of: request, path: path)
        try insert(request, respond: respond)
      default:
        throw HTTPError(
          .notFound, "no endpoint at \(path): use GET /search, POST /insert or GET /health")
      }
    } catch {
      respond(error.response)
    }
  }

  private func require(_ method: String, of request: HTTPRequest, path: String)
    throws(HTTPError)
  {
    guard request.method == method else {
      throw HTTPError(
        .methodNotAllowed, "\(request.method) is not allowed on \(path): use \(method) \(path)",
        headers: [("Allow", method)])
    }
  }

  // MARK: - GET /health

  private func health() -> HTTPResponse {
    let state = client.connection.state
    let healthy = state == .connected && collectionReady
    var json: [String: Any] = [
      "status": healthy ? "ok" : "unavailable", "milvus": state.description,
      "collection": collection, "collection_ready": collectionReady,
    ]
    if let setupProblem { json["problem"] = setupProblem }
    // With several Milvus endpoints, each one's state ("host:port": "connected", …).
    let endpoints = client.connection.endpointStates
    if !endpoints.isEmpty {
      json["endpoints"] = Dictionary(
        uniqueKeysWithValues: endpoints.map { ($0.key.description, $0.value.description) })
    }
    return HTTPResponse(status: healthy ? .ok : .serviceUnavailable, json: json)
  }

  // MARK: - GET /search?q=<text>&limit=<n>

  private func search(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void)
    throws(HTTPError)
  {
    let parameters = try request.queryParameters()
    guard let text = parameters["q"], !text.allSatisfy(\.isWhitespace) else {
      throw HTTPError(
        .badRequest,
        "query parameter 'q' is missing or empty: give the text to search for, as in "
          + "/search?q=fresh+milk")
    }
    var limit = 10
    if let given = parameters["limit"] {
      guard let number = Int(given), (1...Self.maxLimit).contains(number) else {
        throw HTTPError(
          .badRequest,
          "query parameter 'limit' must be a whole number in 1...\(Self.maxLimit), is '\(given)'")
      }
      limit = number
    }
    guard let vector = embedding.vector(for: text) else {
      throw HTTPError(.badRequest, "query parameter 'q' has no words (letters or digits)")
    }
    try requireReady()
    let started = ContinuousClock.now
    client.onLoop.perform(
      .search(
        collection, vectors: [vector], limit: limit, outputFields: ["text"],
        consistencyLevel: .strong),
      options: Self.callOptions
    ) { result in
      switch result {
      case .success(let results):
        let hits: [[String: Any]] = (results.first ?? []).map { hit in
          [
            "id": Self.json(hit.id), "distance": Double(hit.distance),
            "text": hit.fields["text"]?.stringValue ?? "",
          ]
        }
        respond(HTTPResponse(json: ["hits": hits, "took_ms": Self.milliseconds(since: started)]))
      case .failure(let error):
        respond(Self.failure(error, doing: "search").response)
      }
    }
  }

  // MARK: - POST /insert {"texts": [...], "ids": [...]}

  private func insert(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void)
    throws(HTTPError)
  {
    let (texts, givenIDs) = try Self.parseInsertBody(request.body)
    var rows: [Row] = []
    rows.reserveCapacity(texts.count)
    for (index, text) in texts.enumerated() {
      guard let vector = embedding.vector(for: text) else {
        throw HTTPError(.badRequest, "'texts[\(index)]' has no words (letters or digits) to embed")
      }
      let id = givenIDs?[index] ?? ids.next()
      rows.append(["id": .int(id), "text": .string(text), "vector": .floatVector(vector)])
    }
    try requireReady()
    client.onLoop.perform(.insert(into: collection, rows: rows), options: Self.callOptions) {
      result in
      switch result {
      case .success(let mutation):
        respond(
          HTTPResponse(
            json: ["inserted": mutation.insertCount, "ids": mutation.ids.map(Self.json)]))
      case .failure(let error):
        respond(Self.failure(error, doing: "insert").response)
      }
    }
  }

  /// The texts and the optional ids of an insert body, every value checked.
  static func parseInsertBody(_ body: [UInt8]) throws(HTTPError) -> ([String], [Int64]?) {
    let example = #"{"texts": ["first text", "second text"]}"#
    guard !body.isEmpty else {
      throw HTTPError(.badRequest, "the body is empty: send JSON such as \(example)")
    }
    guard let parsed = try? JSONSerialization.jsonObject(with: Data(body)) else {
      throw HTTPError(.badRequest, "the body is not valid JSON: send JSON such as \(example)")
    }
    guard let object = parsed as? [String: Any] else {
      throw HTTPError(.badRequest, "the body must be a JSON object such as \(example)")
    }
    if let unknown = object.keys.sorted().first(where: { $0 != "texts" && $0 != "ids" }) {
      throw HTTPError(.badRequest, "unknown field '\(unknown)' in the body (known: texts, ids)")
    }
    guard let textValues = object["texts"] as? [Any] else {
      throw HTTPError(
        .badRequest, "the body needs 'texts', an array of strings, as in \(example)")
    }
    guard (1...maxTextsPerInsert).contains(textValues.count) else {
      throw HTTPError(
        .badRequest,
        "'texts' has \(textValues.count) entries; give 1...\(maxTextsPerInsert) per request")
    }
    var texts: [String] = []
    for (index, value) in textValues.enumerated() {
      guard let text = value as? String else {
        throw HTTPError(.badRequest, "'texts[\(index)]' is not a string")
      }
      guard text.utf8.count <= maxTextBytes else {
        throw HTTPError(
          .badRequest,
          "'texts[\(index)]' is \(text.utf8.count) bytes long; the limit is \(maxTextBytes)")
      }
      texts.append(text)
    }
    guard let idValues = object["ids"] else { return (texts, nil) }
    guard let idArray = idValues as? [Any], idArray.count == texts.count else {
      throw HTTPError(
        .badRequest, "'ids' must be an array with one whole number per text (\(texts.count))")
    }
    var ids: [Int64] = []
    for (index, value) in idArray.enumerated() {
      // NSNumber bridging gives an Int64 only for a number it represents exactly (SE-0170).
      guard let id = value as? Int64 else {
        throw HTTPError(.badRequest, "'ids[\(index)]' is not a whole number in the int64 range")
      }
      ids.append(id)
    }
    return (texts, ids)
  }

  private func requireReady() throws(HTTPError) {
    guard collectionReady else {
      throw HTTPError(
        .serviceUnavailable,
        "the collection '\(collection)' is not ready yet: "
          + (setupProblem ?? "it is being created and loaded"))
    }
  }

  // MARK: - Results and errors

  private static func json(_ id: PrimaryKey) -> Any {
    switch id {
    case .int(let value): return value
    case .string(let value): return value
    }
  }

  private static func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    let milliseconds =
      Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    return (milliseconds * 1000).rounded() / 1000
  }

  /// A failed Milvus call in words: 503 when trying again later can help (Milvus unreachable,
  /// the service shutting down), 400 for arguments Milvus's checks refused, 500 otherwise.
  static func failure(_ error: MilvexError, doing what: String) -> HTTPError {
    switch error {
    case .invalidArgument:
      return HTTPError(.badRequest, "the \(what) was refused: \(error)")
    case .notConnected, .connection, .tls, .disconnected, .eventLoopShutDown:
      return HTTPError(.serviceUnavailable, "Milvus is unavailable for the \(what): \(error)")
    case .grpcStatus, .protocolViolation, .milvus:
      if error.isRetriable {
        return HTTPError(
          .serviceUnavailable, "the \(what) failed for now (try again): \(error)")
      }
      return HTTPError(.internalServerError, "the \(what) failed in Milvus: \(error)")
    }
  }
}

/// Ids for texts inserted without one: the milliseconds since 1970 shifted left by 16 bits, so
/// 65,536 ids fit in each millisecond; each id is one more than the last when that is larger
/// (a burst borrows from the next milliseconds). Unique within a run, and across runs unless
/// the clock goes back.
struct IDGenerator {
  private var last: Int64 = 0

  /// The next id.
  mutating func next() -> Int64 {
    let now = Int64(Date().timeIntervalSince1970 * 1000) << 16
    last = max(now, last + 1)
    return last
  }
}
