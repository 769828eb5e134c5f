import Foundation
import Logging
import MilvexProtos
import SwiftProtobuf
import XCTest

@testable import MilvexReactor

/// Users, roles and privileges (issue 14, item 5) on the real Milvus 2.3.5 server with TLS and
/// authorization on (``MilvusServers/tls``, superuser root), cross-checked against pymilvus
/// (Tests/Peers/pymilvus_rbac.py); milvus-lite, which has no access control, for its error.
///
/// The server is shared by the whole test run: every user, role and collection here has a
/// name of its own (a UUID in it) and is dropped at the end, also when the test fails. Root's
/// password and the other users are left alone.
final class AccessControlTests: XCTestCase {
  private var loop: EventLoop!
  private var cleanups: [() async -> Void] = []

  override func setUpWithError() throws {
    loop = try EventLoop(threadName: "access-control")
  }

  override func tearDown() async throws {
    for cleanup in cleanups.reversed() { await cleanup() }
    cleanups = []
    loop.shutdown()
  }

  /// A name no other test uses: `prefix_` and 12 hex digits.
  private func unique(_ prefix: String) -> String {
    "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
  }

  private var quietLogger: Logger {
    var logger = Logger(label: "access-control-test")
    logger.logLevel = .critical
    return logger
  }

  /// A client of the TLS server, signed in as `user`; closed at the end of the test.
  private func client(user: String, password: String) throws -> MilvusClient {
    let server = try MilvusServers.tls
    var config = try ConnectionConfig(
      uri: "https://localhost:\(server.port)?ca_pem_path=\(try TestCertificates.ca)")
    config.user = user
    config.password = password
    config.timeout = .seconds(60)
    let client = try MilvusClient.connect(config: config, on: loop, logger: quietLogger)
    cleanups.append { await client.close() }
    return client
  }

  private func rootClient() throws -> MilvusClient {
    try client(user: MilvusServers.user, password: MilvusServers.password)
  }

  /// `call`'s outcome, success or error.
  private func outcome<Output>(
    _ client: MilvusClient, _ call: MilvusCall<Output>
  ) async -> Result<Output, MilvexError> {
    do {
      return .success(try await client.perform(call))
    } catch {
      return .failure(error)
    }
  }

  /// The first outcome of `attempt` that `done` accepts, trying every 200 ms for up to
  /// `timeout` (Milvus's proxies cache privileges and credentials); the last one otherwise.
  private func eventually<Output>(
    within timeout: Duration = .seconds(15),
    _ attempt: () async throws -> Result<Output, MilvexError>,
    until done: (Result<Output, MilvexError>) -> Bool
  ) async throws -> Result<Output, MilvexError> {
    let deadline = ContinuousClock.now + timeout
    while true {
      let result = try await attempt()
      if done(result) || ContinuousClock.now >= deadline { return result }
      try await Task.sleep(for: .milliseconds(200))
    }
  }

  /// Milvus 2.3.5's refusal of an operation for want of a privilege: gRPC PERMISSION_DENIED
  /// with `Privilege<name>: permission deny to <user>`.
  private func isRefusal(_ privilege: String, user: String) -> (Result<[Row], MilvexError>) -> Bool
  {
    { result in
      guard case .failure(.grpcStatus(let status)) = result else { return false }
      return status.code == .permissionDenied
        && status.message == "\(privilege): permission deny to \(user)"
    }
  }

  /// A loaded collection of 10 rows, made by `root` and dropped at the end.
  private func makeCollection(_ root: MilvusClient) async throws -> String {
    let name = unique("rbac")
    let schema = CollectionSchema(fields: [
      .primaryKey("id", .int64), .vector("vec", dimension: TestData.dimension),
    ])
    cleanups.append { _ = try? await root.perform(.dropCollection(name)) }
    try await root.perform(.createCollection(name, schema: schema, consistencyLevel: .strong))
    _ = try await root.perform(
      .insert(
        into: name,
        rows: (0..<10).map { ["id": .int(Int64($0)), "vec": .floatVector(TestData.vector($0))] }))
    try await root.perform(
      .createIndex(on: name, IndexSpec(fieldName: "vec", indexType: .flat, metricType: .l2)))
    try await root.loadCollection(name, timeout: .seconds(60))
    return name
  }

  /// Drops `user` and `role` at the end (the role's grant on `collection` revoked first: Milvus
  /// does not drop a role with privileges), whether or not they were made.
  private func dropAtEnd(
    _ root: MilvusClient, user: String, role: String, grant: (Privilege, String)? = nil
  ) {
    cleanups.append {
      if let (privilege, collection) = grant {
        _ = try? await root.perform(
          .revokePrivilege(privilege, on: .collection(collection), from: role))
      }
      _ = try? await root.perform(.revokeRole(role, from: user))
      _ = try? await root.perform(.dropUser(user))
      _ = try? await root.perform(.dropRole(role))
    }
  }

  // MARK: - A second user, refused until granted

  /// The whole story: a user without privileges is refused a query, with Milvus's words naming
  /// the privilege; a role with Query on the collection, granted to the user, lets it query;
  /// the grant is listed (as pymilvus lists it); revoking it refuses the query again; a new
  /// password replaces the old one.
  func testASecondUserIsRefusedUntilGrantedOnTheRealServer() async throws {
    let root = try rootClient()
    let collection = try await makeCollection(root)
    let user = unique("user")
    let role = unique("role")
    let password = "Pw-\(UUID().uuidString.prefix(8))"
    dropAtEnd(root, user: user, role: role, grant: (.query, collection))

    try await root.perform(.createUser(user, password: password))
    try await root.perform(.createRole(role))
    let users = try await root.perform(.listUsers())
    XCTAssertTrue(users.contains(user) && users.contains("root"), "\(users)")
    let roles = try await root.perform(.listRoles())
    XCTAssertTrue(roles.contains(role) && roles.contains("public"), "\(roles)")
    let described = try await root.perform(.describeUser(user))
    XCTAssertEqual(described, UserDescription(name: user, roles: []))

    // Signed in as the new user: refused, with the privilege named.
    let alice = try client(user: user, password: password)
    let query = MilvusCall<[Row]>.query(collection, filter: "id >= 0", limit: 100)
    let refused = await outcome(alice, query)
    XCTAssertTrue(isRefusal("PrivilegeQuery", user: user)(refused), "\(refused)")
    if case .failure(let error) = refused {
      XCTAssertEqual(
        "\(error)",
        "gRPC call failed with PERMISSION_DENIED: PrivilegeQuery: permission deny to \(user)")
      XCTAssertFalse(error.isRetriable)
    }

    // Granted: Query on the collection to the role, the role to the user.
    try await root.perform(.grantPrivilege(.query, on: .collection(collection), to: role))
    try await root.perform(.grantRole(role, to: user))
    let allowed = try await eventually({ await outcome(alice, query) }) {
      (try? $0.get()) != nil
    }
    XCTAssertEqual(try allowed.get().count, 10)
    // Only Query: inserting is still refused, naming Insert.
    let insert = MilvusCall<MutationResult>.insert(
      into: collection, rows: [["id": 99, "vec": .floatVector(TestData.vector(99))]])
    let insertRefused = await outcome(alice, insert)
    guard case .failure(.grpcStatus(let status)) = insertRefused else {
      return XCTFail("\(insertRefused)")
    }
    XCTAssertEqual(status.message, "PrivilegeInsert: permission deny to \(user)")

    // Listed, by us and by pymilvus alike.
    let grants = try await root.perform(.listGrants(of: role))
    XCTAssertEqual(
      grants,
      [
        Grant(
          role: role, object: .collection(collection), database: "default", privilege: .query,
          grantor: "root")
      ])
    let onCollection = try await root.perform(
      .listGrants(of: role, on: .collection(collection)))
    XCTAssertEqual(onCollection, grants)
    let onOther = try await root.perform(.listGrants(of: role, on: .collection("other")))
    XCTAssertEqual(onOther, [])
    let withRole = try await root.perform(.describeUser(user))
    XCTAssertEqual(withRole?.roles, [role])
    let roleDescription = try await root.perform(.describeRole(role))
    XCTAssertEqual(roleDescription, RoleDescription(name: role, users: [user]))
    try await assertEqualsPymilvus(root, user: user, role: role, grants: grants)

    // Revoked: refused again.
    try await root.perform(.revokePrivilege(.query, on: .collection(collection), from: role))
    let refusedAgain = try await eventually(
      { await outcome(alice, query) }, until: isRefusal("PrivilegeQuery", user: user))
    XCTAssertTrue(isRefusal("PrivilegeQuery", user: user)(refusedAgain), "\(refusedAgain)")
    let revokedGrants = try await root.perform(.listGrants(of: role))
    XCTAssertEqual(revokedGrants, [])

    // A new password: the old one no longer signs in, the new one does.
    let newPassword = "Pw-\(UUID().uuidString.prefix(8))"
    try await root.perform(
      .updatePassword(user: user, oldPassword: password, newPassword: newPassword))
    let list = MilvusCall<[String]>.listCollections()
    let oldRefused = try await eventually({
      await outcome(try self.client(user: user, password: password), list)
    }) {
      if case .failure(.grpcStatus(let status)) = $0 { return status.code == .unauthenticated }
      return false
    }
    guard case .failure(let oldError) = oldRefused else { return XCTFail("\(oldRefused)") }
    XCTAssertTrue("\(oldError)".contains("Milvus refused the credentials"), "\(oldError)")
    XCTAssertFalse("\(oldError)".contains(password), "\(oldError)")
    let renewed = try client(user: user, password: newPassword)
    let listed = try await renewed.perform(list)
    XCTAssertTrue(listed.contains(collection), "\(listed)")
    // The connection made with the old password: its next call is refused too.
    let stale = await outcome(alice, list)
    guard case .failure(.grpcStatus(let staleStatus)) = stale else { return XCTFail("\(stale)") }
    XCTAssertEqual(staleStatus.code, .unauthenticated, "\(staleStatus)")

    // Dropped: gone from the lists.
    try await root.perform(.revokeRole(role, from: user))
    try await root.perform(.dropUser(user))
    try await root.perform(.dropRole(role))
    let usersAfter = try await root.perform(.listUsers())
    XCTAssertFalse(usersAfter.contains(user), "\(usersAfter)")
    let rolesAfter = try await root.perform(.listRoles())
    XCTAssertFalse(rolesAfter.contains(role), "\(rolesAfter)")
    let gone = try await root.perform(.describeUser(user))
    XCTAssertNil(gone)
    let goneRole = try await root.perform(.describeRole(role))
    XCTAssertNil(goneRole)
  }

  /// pymilvus's `list_users`, `list_roles`, `describe_user` and `describe_role` on the same
  /// server give the same answers as ours.
  private func assertEqualsPymilvus(
    _ root: MilvusClient, user: String, role: String, grants: [Grant],
    file: StaticString = #filePath, line: UInt = #line
  ) async throws {
    let server = try MilvusServers.tls
    let theirs = try Self.runPymilvusRBAC([
      "uri": "https://localhost:\(server.port)", "token": "root:Milvus",
      "ca": try TestCertificates.ca, "server_name": "localhost", "user": user, "role": role,
    ])
    let strings = { (value: FieldValue?) -> [String] in
      (value?.arrayValue ?? []).compactMap(\.stringValue)
    }
    // Other tests may add and drop users and roles meanwhile: compare ours and theirs on the
    // names either side knows that this test made or Milvus has built in.
    let ourUsers = try await root.perform(.listUsers())
    let ourRoles = try await root.perform(.listRoles())
    let mine = { (names: [String]) in Set(names.filter { [user, role, "root"].contains($0) }) }
    let builtIn = { (names: [String]) in
      Set(names.filter { [role, "admin", "public"].contains($0) })
    }
    XCTAssertEqual(mine(ourUsers), mine(strings(theirs["users"])), file: file, line: line)
    XCTAssertEqual(mine(ourUsers), [user, "root"], file: file, line: line)
    XCTAssertEqual(builtIn(ourRoles), builtIn(strings(theirs["roles"])), file: file, line: line)
    XCTAssertEqual(builtIn(ourRoles), [role, "admin", "public"], file: file, line: line)
    let theirUser = theirs["user"]?.objectValue
    XCTAssertEqual(theirUser?["user_name"]?.stringValue, user, file: file, line: line)
    XCTAssertEqual(strings(theirUser?["roles"]), [role], file: file, line: line)
    let theirGrants = (theirs["grants"]?.arrayValue ?? []).compactMap(\.objectValue).map {
      Grant(
        role: $0["role_name"]?.stringValue ?? "?",
        object: PrivilegeObject(
          kind: .init(rawValue: $0["object_type"]?.stringValue ?? "?"),
          name: $0["object_name"]?.stringValue ?? "?"),
        database: $0["db_name"]?.stringValue ?? "?",
        privilege: Privilege(rawValue: $0["privilege"]?.stringValue ?? "?"),
        grantor: $0["grantor_name"]?.stringValue ?? "?")
    }
    XCTAssertEqual(theirGrants, grants, file: file, line: line)
  }

  static func runPymilvusRBAC(_ request: [String: String]) throws -> [String: FieldValue] {
    try PeerProcess.runJSONScript("pymilvus_rbac.py", request)
  }

  // MARK: - Privileges and objects

  /// Every privilege with a name here is one Milvus 2.3.5 knows on its object type: each is
  /// granted to a role, listed, and revoked. (Milvus refuses an unknown name.)
  func testEveryNamedPrivilegeIsOneMilvusKnows() async throws {
    let root = try rootClient()
    let role = unique("role")
    let named: [(Privilege, PrivilegeObject)] =
      [
        Privilege.createCollection, .dropCollection, .describeCollection, .showCollections,
        .renameCollection, .flushAll, .createOwnership, .dropOwnership, .selectOwnership,
        .manageOwnership, .createDatabase, .dropDatabase, .listDatabases,
      ].map { ($0, .global) }
      + [
        Privilege.insert, .delete, .upsert, .search, .query, .flush, .load, .release,
        .getLoadState, .getLoadingProgress, .getStatistics, .createIndex, .dropIndex,
        .indexDetail, .createPartition, .dropPartition, .showPartitions, .hasPartition,
        .compaction, .all,
      ].map { ($0, .collection()) }
      + [Privilege.updateUser, .selectUser].map { ($0, .user()) }
    cleanups.append {
      for (privilege, object) in named {
        _ = try? await root.perform(.revokePrivilege(privilege, on: object, from: role))
      }
      _ = try? await root.perform(.dropRole(role))
    }
    try await root.perform(.createRole(role))
    var refused: [String] = []
    for (privilege, object) in named {
      do {
        try await root.perform(.grantPrivilege(privilege, on: object, to: role))
      } catch {
        refused.append("\(privilege) on \(object): \(error)")
      }
    }
    XCTAssertEqual(refused, [])
    let dropped = await outcome(root, .dropRole(role))
    guard case .failure(.milvus(_, let dropWords)) = dropped else { return XCTFail("\(dropped)") }
    XCTAssertTrue(
      dropWords.contains("fail to drop the role that it has privileges"), "\(dropWords)")
    let grants = try await root.perform(.listGrants(of: role))
    XCTAssertEqual(
      Set(grants.map { "\($0.privilege) on \($0.object)" }),
      Set(named.map { "\($0.0) on \($0.1)" }))
    XCTAssertEqual(Set(grants.map(\.database)), ["default"])
    let onUsers = try await root.perform(.listGrants(of: role, on: .user()))
    XCTAssertEqual(Set(onUsers.map(\.privilege)), [.updateUser, .selectUser])
    for (privilege, object) in named {
      try await root.perform(.revokePrivilege(privilege, on: object, from: role))
    }
    let none = try await root.perform(.listGrants(of: role))
    XCTAssertEqual(none, [])

    let unknown = await outcome(root, .grantPrivilege("NoSuchPrivilege", on: .global, to: role))
    guard case .failure(.milvus(_, let reason)) = unknown else { return XCTFail("\(unknown)") }
    XCTAssertTrue(reason.contains("not found the privilege name[NoSuchPrivilege]"), reason)
    let noRole = await outcome(root, .listGrants(of: unique("missing")))
    guard case .failure(.milvus(_, let words)) = noRole else { return XCTFail("\(noRole)") }
    XCTAssertTrue(words.contains("not found the role"), words)
  }

  // MARK: - Secrets

  /// No password shows in a call's description or dump, in an argument error, or in the words
  /// of the server's refusals: a too-short password, a wrong old password, a wrong sign-in.
  func testPasswordsAppearInNoDescriptionOrError() async throws {
    let password = "Secret-\(UUID().uuidString.prefix(8))"
    let other = "Other-\(UUID().uuidString.prefix(8))"
    let secrets = [
      password, other, Data(password.utf8).base64EncodedString(),
      Data(other.utf8).base64EncodedString(),
    ]
    func assertNoSecret(
      _ text: String, file: StaticString = #filePath, line: UInt = #line
    ) {
      for secret in secrets {
        XCTAssertFalse(text.contains(secret), "'\(text)' shows a password", file: file, line: line)
      }
    }
    let calls: [MilvusCall<Void>] = [
      .createUser("alice", password: password),
      .updatePassword(user: "alice", oldPassword: password, newPassword: other),
      .updatePassword(user: "", oldPassword: password, newPassword: other),
    ]
    for call in calls {
      var dumped = ""
      dump(call, to: &dumped)
      assertNoSecret(String(describing: call))
      assertNoSecret(String(reflecting: call))
      assertNoSecret(dumped)
      assertNoSecret(String(describing: call.invalid))
    }

    let root = try rootClient()
    let user = unique("user")
    dropAtEnd(root, user: user, role: unique("role"))
    let tooShort = await outcome(root, .createUser(user, password: "abc12"))
    guard case .failure(let shortError) = tooShort else { return XCTFail("\(tooShort)") }
    XCTAssertTrue("\(shortError)".contains("invalid password length"), "\(shortError)")
    XCTAssertFalse("\(shortError)".contains("abc12"), "\(shortError)")

    try await root.perform(.createUser(user, password: password))
    let again = await outcome(root, .createUser(user, password: other))
    guard case .failure(let againError) = again else { return XCTFail("\(again)") }
    assertNoSecret("\(againError)")
    assertNoSecret(String(reflecting: againError))
    let wrongOld = await outcome(
      root, .updatePassword(user: user, oldPassword: other, newPassword: other))
    guard case .failure(let wrongOldError) = wrongOld else { return XCTFail("\(wrongOld)") }
    XCTAssertEqual(wrongOldError.milvusCode, 1400, "\(wrongOldError)")
    XCTAssertTrue(
      "\(wrongOldError)".contains("old password not correct for \(user)"), "\(wrongOldError)")
    assertNoSecret("\(wrongOldError)")
    let signIn = await outcome(try client(user: user, password: other), .listCollections())
    guard case .failure(let signInError) = signIn else { return XCTFail("\(signIn)") }
    assertNoSecret("\(signInError)")
    assertNoSecret(String(reflecting: signInError))
    let described = try await root.perform(.describeUser(user))
    assertNoSecret("\(String(describing: described))")

    // A user may change its own password.
    let itself = try client(user: user, password: password)
    try await itself.perform(
      .updatePassword(user: user, oldPassword: password, newPassword: other))
    let signedIn = try await eventually({
      await outcome(try self.client(user: user, password: other), .listCollections())
    }) { (try? $0.get()) != nil }
    XCTAssertNotNil(try? signedIn.get(), "\(signedIn)")
  }

  /// What is sent: the password base64-encoded (as pymilvus sends it), grants in the call's
  /// database unless one is named, pymilvus's object types and names.
  func testRequestsAreThoseOfPymilvus() throws {
    let context = MilvusCallContext(database: "shop", schema: nil)
    let create = try Milvus_Proto_Milvus_CreateCredentialRequest(
      serializedBytes: MilvusCall<Void>.createUser("alice", password: "pässword").encode(context))
    XCTAssertEqual(create.username, "alice")
    XCTAssertEqual(create.password, "cMOkc3N3b3Jk")  // base64.b64encode("pässword".encode())
    let update = try Milvus_Proto_Milvus_UpdateCredentialRequest(
      serializedBytes: MilvusCall<Void>.updatePassword(
        user: "alice", oldPassword: "old-one", newPassword: "new-one"
      ).encode(context))
    XCTAssertEqual(update.oldPassword, "b2xkLW9uZQ==")
    XCTAssertEqual(update.newPassword, "bmV3LW9uZQ==")

    let grant = try Milvus_Proto_Milvus_OperatePrivilegeRequest(
      serializedBytes: MilvusCall<Void>.grantPrivilege(.search, on: .collection(), to: "reader")
        .encode(context))
    XCTAssertEqual(grant.type, .grant)
    XCTAssertEqual(grant.entity.role.name, "reader")
    XCTAssertEqual(grant.entity.object.name, "Collection")
    XCTAssertEqual(grant.entity.objectName, "*")
    XCTAssertEqual(grant.entity.dbName, "shop", "the call's database")
    XCTAssertEqual(grant.entity.grantor.privilege.name, "Search")
    let revoke = try Milvus_Proto_Milvus_OperatePrivilegeRequest(
      serializedBytes: MilvusCall<Void>.revokePrivilege(
        .createCollection, on: .global, from: "reader", database: "default"
      ).encode(context))
    XCTAssertEqual(revoke.type, .revoke)
    XCTAssertEqual(revoke.entity.object.name, "Global")
    XCTAssertEqual(revoke.entity.dbName, "default")

    let select = try Milvus_Proto_Milvus_SelectGrantRequest(
      serializedBytes: MilvusCall<[Grant]>.listGrants(of: "reader").encode(context))
    XCTAssertFalse(select.entity.hasObject, "every object")
    XCTAssertEqual(select.entity.dbName, "shop")
    let role = try Milvus_Proto_Milvus_OperateUserRoleRequest(
      serializedBytes: MilvusCall<Void>.revokeRole("reader", from: "alice").encode(context))
    XCTAssertEqual(role.type, .removeUserFromRole)
    XCTAssertEqual([role.username, role.roleName], ["alice", "reader"])
  }

  /// Empty names are refused before anything is sent, naming the argument (no server
  /// listens at the client's port).
  func testArgumentsAreCheckedBeforeSending() async throws {
    let client = try MilvusClient.connect(
      config: ConnectionConfig(host: "127.0.0.1", port: freeLocalPort()), on: loop,
      logger: quietLogger)
    cleanups.append { await client.close() }
    let cases: [(String, MilvusCall<Void>)] = [
      ("user", .createUser("", password: "password1")),
      ("password", .createUser("alice", password: "")),
      ("oldPassword", .updatePassword(user: "alice", oldPassword: "", newPassword: "x")),
      ("newPassword", .updatePassword(user: "alice", oldPassword: "x", newPassword: "")),
      ("user", .dropUser("")),
      ("role", .createRole("")),
      ("role", .dropRole("")),
      ("user", .grantRole("reader", to: "")),
      ("role", .revokeRole("", from: "alice")),
      ("privilege", .grantPrivilege("", on: .global, to: "reader")),
      ("object.name", .grantPrivilege(.query, on: .collection(""), to: "reader")),
      ("role", .revokePrivilege(.query, on: .collection(), from: "")),
      ("database", .grantPrivilege(.query, on: .collection(), to: "r", database: "")),
    ]
    for (field, call) in cases {
      await assertMilvexError({ try await client.perform(call) }) { $0.invalidField == field }
    }
    await assertMilvexError({ try await client.perform(.describeUser("")) }) {
      $0.invalidField == "user"
    }
    await assertMilvexError({ try await client.perform(.listGrants(of: "")) }) {
      $0.invalidField == "role"
    }
    await assertMilvexError({
      try await client.perform(.listGrants(of: "reader", on: .collection("")))
    }) { $0.invalidField == "object.name" }
  }

  // MARK: - milvus-lite

  /// milvus-lite has no access control: it answers UNIMPLEMENTED, and the error says so.
  func testMilvusLiteAnswersUnimplemented() async throws {
    let fixture = try MilvusFixture()
    let client = fixture.client
    let calls: [(String, Result<Void, MilvexError>)] = [
      ("listUsers", await outcome(client, .listUsers()).map { _ in }),
      ("createUser", await outcome(client, .createUser("alice", password: "password1"))),
      ("createRole", await outcome(client, .createRole("reader"))),
      ("grantPrivilege", await outcome(client, .grantPrivilege(.query, on: .global, to: "r"))),
    ]
    await fixture.stop()
    for (name, result) in calls {
      guard case .failure(let error) = result else { return XCTFail("\(name): \(result)") }
      XCTAssertEqual(
        "\(error)", "gRPC call failed with UNIMPLEMENTED: Method not implemented!", name)
      XCTAssertFalse(error.isRetriable, name)
    }
  }
}
