import MilvexProtos
import MilvexReactor
import SwiftProtobuf

/// A handler a test gives for a path: it sees the call (path, metadata, request bytes) and
/// returns the answer. It runs on the server's loop thread; it must not block.
public typealias TestServerHandler = @Sendable (TestServerCall) -> TestServerAnswer

/// Everything a ``MilvusTestServer`` decides, as one value: which answer a call gets, what a
/// new connection gets (served, held before SETTINGS, blackholed), and the built-in Milvus
/// state (collections, the session identifier, mutation ids). Events in, decisions out; it
/// never touches a socket, a timer or a clock (times come with the events).
///
/// Precedence for a call: the next queued answer for its method or path, then a handler for
/// its path, then the standing answer for its method or path, then the built-in answer of a
/// common Milvus method, else `UNIMPLEMENTED` (recorded as such).
struct TestServerScript: Sendable {
  static let milvusService = "/milvus.proto.milvus.MilvusService/"

  /// Answers given once each, in order, by method name or full path.
  var queued: [String: [TestServerAnswer]] = [:]
  /// Answers given to every call, by method name or full path.
  var standing: [String: TestServerAnswer] = [:]
  /// Handlers by full path.
  var handlers: [String: TestServerHandler] = [:]
  /// Whether the common Milvus methods answer without a script.
  var builtInAnswers = true
  /// The declared collections, by name.
  var collections: [String: Milvus_Proto_Schema_CollectionSchema] = [:]
  /// What `Connect` answers as the session identifier.
  var identifier: Int64 = 4242
  /// What `GetVersion` answers.
  var version = "v2.5.0-milvex-test"
  /// The next auto-generated primary key of an insert without keys.
  var nextAutoID: Int64 = 1
  /// Connections accepted so far (across restarts).
  var connectionsAccepted = 0
  /// New connections are accepted and never answered.
  var blackhole = false
  /// New connections get the server's SETTINGS this late.
  var settingsDelay: Duration = .zero

  // MARK: - Connections

  /// What a newly accepted connection gets.
  enum OnAccept: Equatable {
    /// Serve it; hold its first bytes and the server's SETTINGS for `settingsDelay` first.
    case serve(connection: Int, settingsDelay: Duration)
    /// Read and discard everything; never answer (not even the TLS handshake).
    case blackhole(connection: Int)
  }

  mutating func accepted() -> OnAccept {
    connectionsAccepted += 1
    if blackhole { return .blackhole(connection: connectionsAccepted) }
    return .serve(connection: connectionsAccepted, settingsDelay: settingsDelay)
  }

  // MARK: - Calls

  /// What a call gets.
  enum Decision: Sendable {
    case answer(TestServerAnswer)
    /// The test's handler decides (the glue calls it outside the lock).
    case handler(TestServerHandler)
    /// Nothing scripted and nothing built in: `UNIMPLEMENTED`.
    case unimplemented
  }

  mutating func decide(_ call: TestServerCall) -> Decision {
    let keys = [call.path, call.method]
    for key in keys {
      if var queue = queued[key], !queue.isEmpty {
        let answer = queue.removeFirst()
        queued[key] = queue.isEmpty ? nil : queue
        return .answer(answer)
      }
    }
    if let handler = handlers[call.path] { return .handler(handler) }
    for key in keys {
      if let answer = standing[key] { return .answer(answer) }
    }
    guard builtInAnswers, call.path.hasPrefix(Self.milvusService),
      let answer = builtIn(call)
    else { return .unimplemented }
    return .answer(answer)
  }

  /// The decoded request of a common Milvus method, or nil.
  static func decodeRequest(path: String, bytes: [UInt8]) -> (any SwiftProtobuf.Message)? {
    guard path.hasPrefix(milvusService) else { return nil }
    let type: (any SwiftProtobuf.Message.Type)?
    switch String(path.dropFirst(milvusService.count)) {
    case "Connect": type = Milvus_Proto_Milvus_ConnectRequest.self
    case "CheckHealth": type = Milvus_Proto_Milvus_CheckHealthRequest.self
    case "GetVersion": type = Milvus_Proto_Milvus_GetVersionRequest.self
    case "HasCollection": type = Milvus_Proto_Milvus_HasCollectionRequest.self
    case "DescribeCollection": type = Milvus_Proto_Milvus_DescribeCollectionRequest.self
    case "CreateCollection": type = Milvus_Proto_Milvus_CreateCollectionRequest.self
    case "DropCollection": type = Milvus_Proto_Milvus_DropCollectionRequest.self
    case "LoadCollection": type = Milvus_Proto_Milvus_LoadCollectionRequest.self
    case "Insert": type = Milvus_Proto_Milvus_InsertRequest.self
    case "Upsert": type = Milvus_Proto_Milvus_UpsertRequest.self
    case "Delete": type = Milvus_Proto_Milvus_DeleteRequest.self
    case "Search": type = Milvus_Proto_Milvus_SearchRequest.self
    case "Query": type = Milvus_Proto_Milvus_QueryRequest.self
    default: type = nil
    }
    return try? type?.init(serializedBytes: bytes)
  }

  // MARK: - Built-in answers

  /// The built-in answer of a common Milvus method, or nil.
  private mutating func builtIn(_ call: TestServerCall) -> TestServerAnswer? {
    var ok = Milvus_Proto_Common_Status()
    ok.errorCode = .success
    switch call.method {
    case "Connect":
      var info = Milvus_Proto_Common_ServerInfo()
      info.buildTags = version
      info.deployMode = "STANDALONE"
      var response = Milvus_Proto_Milvus_ConnectResponse()
      response.status = ok
      response.serverInfo = info
      response.identifier = identifier
      return .message(response)
    case "CheckHealth":
      var response = Milvus_Proto_Milvus_CheckHealthResponse()
      response.isHealthy = true
      return .message(response)
    case "GetVersion":
      var response = Milvus_Proto_Milvus_GetVersionResponse()
      response.version = version
      return .message(response)
    case "HasCollection":
      let request = call.request(as: Milvus_Proto_Milvus_HasCollectionRequest.self)
      var response = Milvus_Proto_Milvus_BoolResponse()
      response.value = collections[request?.collectionName ?? ""] != nil
      return .message(response)
    case "DescribeCollection":
      let name =
        call.request(as: Milvus_Proto_Milvus_DescribeCollectionRequest.self)?
        .collectionName ?? ""
      guard let schema = collections[name] else {
        return .milvusError(
          code: 100, reason: "can't find collection[database=default][collection=\(name)]")
      }
      var response = Milvus_Proto_Milvus_DescribeCollectionResponse()
      response.schema = schema
      response.collectionName = name
      response.collectionID = name.utf8.reduce(Int64(17)) { ($0 &* 31 &+ Int64($1)) & 0xff_ffff }
      response.dbName = call.metadata["dbname"] ?? "default"
      response.shardsNum = 1
      response.consistencyLevel = .bounded
      response.updateTimestamp = 1
      return .message(response)
    case "Insert", "Upsert":
      // UpsertRequest's fields 1–8 are InsertRequest's: one decoding serves both.
      guard let request = call.request(as: Milvus_Proto_Milvus_InsertRequest.self) else {
        return nil
      }
      var result = mutation(
        collection: request.collectionName, fields: request.fieldsData, rows: request.numRows)
      if call.method == "Insert" {
        result.insertCnt = Int64(request.numRows)
      } else {
        result.upsertCnt = Int64(request.numRows)
      }
      return .message(result)
    case "Delete":
      let expression = call.request(as: Milvus_Proto_Milvus_DeleteRequest.self)?.expr ?? ""
      var result = Milvus_Proto_Milvus_MutationResult()
      result.deleteCnt = Self.listLength(in: expression)
      return .message(result)
    case "Search":
      // No hits: one empty list per query (script the answer for hits).
      let request = call.request(as: Milvus_Proto_Milvus_SearchRequest.self)
      var data = Milvus_Proto_Schema_SearchResultData()
      // Clamped to Milvus's own limit of 16,384 queries: a client's nq never sizes an
      // allocation beyond it.
      data.numQueries = min(max(request?.nq ?? 1, 1), 16_384)
      data.topks = Array(repeating: 0, count: Int(data.numQueries))
      data.ids.intID = Milvus_Proto_Schema_LongArray()
      var response = Milvus_Proto_Milvus_SearchResults()
      response.results = data
      response.collectionName = request?.collectionName ?? ""
      return .message(response)
    case "Query":
      let request = call.request(as: Milvus_Proto_Milvus_QueryRequest.self)
      var response = Milvus_Proto_Milvus_QueryResults()
      response.collectionName = request?.collectionName ?? ""
      response.outputFields = request?.outputFields ?? []
      return .message(response)
    default:
      return nil
    }
  }

  /// A successful MutationResult for `rows` rows: the primary keys sent, or new ones when
  /// the collection generates them (auto ID or no key column sent).
  private mutating func mutation(
    collection: String, fields: [Milvus_Proto_Schema_FieldData], rows: UInt32
  ) -> Milvus_Proto_Milvus_MutationResult {
    var result = Milvus_Proto_Milvus_MutationResult()
    let primary = collections[collection]?.fields.first { $0.isPrimaryKey }?.name
    let keys = fields.first { $0.fieldName == primary }?.scalars
    switch keys?.data {
    case .longData(let longs)?:
      result.ids.intID = longs
    case .stringData(let strings)?:
      result.ids.strID = strings
    default:
      var longs = Milvus_Proto_Schema_LongArray()
      longs.data = (0..<Int64(rows)).map { nextAutoID + $0 }
      nextAutoID += Int64(rows)
      result.ids.intID = longs
    }
    result.succIndex = (0..<rows).map { $0 }
    result.timestamp = 1
    return result
  }

  /// How many elements the first `[...]` list of a filter holds (`id in [1, 2, 3]`: 3).
  private static func listLength(in expression: String) -> Int64 {
    guard let open = expression.firstIndex(of: "["),
      let close = expression[open...].firstIndex(of: "]")
    else { return 0 }
    let inside = expression[expression.index(after: open)..<close]
    if inside.allSatisfy({ $0 == " " }) { return 0 }
    return Int64(inside.split(separator: ",").count)
  }

  // MARK: - Milvus errors

  /// The methods whose response is a bare `common.Status` (milvus.proto's service block).
  static let statusOnlyMethods: Set<String> = [
    "CreateDatabase", "DropDatabase", "CreateCollection", "DropCollection", "RenameCollection",
    "LoadCollection", "ReleaseCollection", "CreatePartition", "DropPartition", "LoadPartitions",
    "ReleasePartitions", "CreateIndex", "DropIndex", "CreateAlias", "AlterAlias", "DropAlias",
    "AlterCollection", "AlterCollectionField", "AlterIndex", "AlterDatabase",
    "CreateCredential", "UpdateCredential", "DeleteCredential", "CreateRole", "DropRole",
    "OperateUserRole", "OperatePrivilege",
  ]

  /// A response of `method` holding only a `common.Status` with `code` and `reason`. Every
  /// other Milvus response carries its status as field 1, so the status is written there.
  static func milvusErrorResponse(method: String, code: Int32, reason: String) -> [UInt8] {
    var status = Milvus_Proto_Common_Status()
    status.errorCode = .unexpectedError
    status.code = code
    status.reason = reason
    let bytes: [UInt8] = (try? status.serializedBytes()) ?? []
    if statusOnlyMethods.contains(method) { return bytes }
    // Field 1, wire type 2 (length-delimited): tag 0x0A, the length as a varint, the bytes.
    var wrapped: [UInt8] = [0x0A]
    var length = bytes.count
    repeat {
      let low = UInt8(length & 0x7f)
      length >>= 7
      wrapped.append(length > 0 ? low | 0x80 : low)
    } while length > 0
    return wrapped + bytes
  }
}
