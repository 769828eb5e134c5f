// Milvus's access control (RBAC) as Swift values: privileges, the objects they apply to, grants,
// and what describing a user or a role returns. None of them holds a password.

/// A privilege Milvus checks before an operation, named as Milvus names it in grants (`Query`,
/// `Insert`, `CreateCollection`, …). Any name Milvus knows may be used; the common ones of
/// Milvus 2.3 are static members. A refusal names it with a `Privilege` prefix
/// (`PrivilegeQuery: permission deny to alice`).
public struct Privilege: MilvusName {
  /// The privilege's name as Milvus spells it in grants, such as `Query`.
  public let rawValue: String
  /// A privilege by its Milvus name; this client does not check it (the server refuses names it
  /// does not know).
  public init(rawValue: String) { self.rawValue = rawValue }

  /// Every privilege of the object type.
  public static let all: Privilege = "*"

  // On `Global`.
  /// Global: create collections (`CreateCollection`).
  public static let createCollection: Privilege = "CreateCollection"
  /// Global: drop collections (`DropCollection`).
  public static let dropCollection: Privilege = "DropCollection"
  /// Global: describe any collection (`DescribeCollection`).
  public static let describeCollection: Privilege = "DescribeCollection"
  /// Global: list the collections (`ShowCollections`).
  public static let showCollections: Privilege = "ShowCollections"
  /// Global: rename collections (`RenameCollection`).
  public static let renameCollection: Privilege = "RenameCollection"
  /// Global: flush every collection at once (`FlushAll`).
  public static let flushAll: Privilege = "FlushAll"
  /// Global: create users and roles (`CreateCredential`, `CreateRole`).
  public static let createOwnership: Privilege = "CreateOwnership"
  /// Global: drop users and roles (`DeleteCredential`, `DropRole`).
  public static let dropOwnership: Privilege = "DropOwnership"
  /// Global: list roles and their grants (`SelectRole`, `SelectGrant`).
  public static let selectOwnership: Privilege = "SelectOwnership"
  /// Global: grant and revoke roles and privileges (`OperateUserRole`, `OperatePrivilege`).
  public static let manageOwnership: Privilege = "ManageOwnership"
  /// Global: create databases (`CreateDatabase`).
  public static let createDatabase: Privilege = "CreateDatabase"
  /// Global: drop databases (`DropDatabase`).
  public static let dropDatabase: Privilege = "DropDatabase"
  /// Global: list the databases (`ListDatabases`).
  public static let listDatabases: Privilege = "ListDatabases"

  // On `Collection`.
  /// Collection: insert entities (`Insert`).
  public static let insert: Privilege = "Insert"
  /// Collection: delete entities (`Delete`).
  public static let delete: Privilege = "Delete"
  /// Collection: upsert entities (`Upsert`).
  public static let upsert: Privilege = "Upsert"
  /// Collection: vector search, including hybrid search (`Search`).
  public static let search: Privilege = "Search"
  /// Collection: query by filter or primary key (`Query`).
  public static let query: Privilege = "Query"
  /// Collection: seal and persist growing segments (`Flush`).
  public static let flush: Privilege = "Flush"
  /// Collection: load the collection or its partitions into memory (`LoadCollection`,
  /// `LoadPartitions`).
  public static let load: Privilege = "Load"
  /// Collection: release it from memory (`ReleaseCollection`, `ReleasePartitions`).
  public static let release: Privilege = "Release"
  /// Collection: read whether it is loaded (`GetLoadState`).
  public static let getLoadState: Privilege = "GetLoadState"
  /// Collection: read how far loading has got (`GetLoadingProgress`).
  public static let getLoadingProgress: Privilege = "GetLoadingProgress"
  /// Collection: read its statistics, such as the row count (`GetCollectionStatistics`).
  public static let getStatistics: Privilege = "GetStatistics"
  /// Collection: create indexes (`CreateIndex`).
  public static let createIndex: Privilege = "CreateIndex"
  /// Collection: drop indexes (`DropIndex`).
  public static let dropIndex: Privilege = "DropIndex"
  /// Collection: describe indexes and their build progress (`DescribeIndex`, `GetIndexState`).
  public static let indexDetail: Privilege = "IndexDetail"
  /// Collection: create partitions (`CreatePartition`).
  public static let createPartition: Privilege = "CreatePartition"
  /// Collection: drop partitions (`DropPartition`).
  public static let dropPartition: Privilege = "DropPartition"
  /// Collection: list partitions (`ShowPartitions`).
  public static let showPartitions: Privilege = "ShowPartitions"
  /// Collection: check whether a partition exists (`HasPartition`).
  public static let hasPartition: Privilege = "HasPartition"
  /// Collection: start a manual compaction (`ManualCompaction`).
  public static let compaction: Privilege = "Compaction"

  // On `User`.
  /// User: change a user's password (`UpdateCredential`).
  public static let updateUser: Privilege = "UpdateUser"
  /// User: describe users and the roles granted to them (`SelectUser`).
  public static let selectUser: Privilege = "SelectUser"
}

/// What a privilege applies to: an object type (`Global`, `Collection`, `User`) and an
/// object's name, `*` for every object of the type (pymilvus's `object_type` and
/// `object_name`).
public struct PrivilegeObject: Sendable, Hashable, CustomStringConvertible {
  /// An object type as Milvus names it. Any name Milvus knows may be used.
  public struct Kind: MilvusName {
    /// The type's name as Milvus spells it: `Global`, `Collection` or `User`.
    public let rawValue: String
    /// An object type by its Milvus name; this client does not check it.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The whole server (collections' creation and listing, databases, ownership).
    public static let global: Kind = "Global"
    /// One collection, or every collection of the grant's database (`*`).
    public static let collection: Kind = "Collection"
    /// One user, or every user (`*`).
    public static let user: Kind = "User"
  }

  /// The object type; it decides which privileges can be granted on the object.
  public var kind: Kind
  /// The object's name; `*` for all of them.
  public var name: String

  /// An object of `kind` called `name` (`*` for every object of the kind).
  ///
  /// - Parameters:
  ///   - kind: The object type.
  ///   - name: The object's name, or `*`.
  public init(kind: Kind, name: String) {
    self.kind = kind
    self.name = name
  }

  /// The server: `Global` privileges are granted on the object name `*`.
  public static let global = PrivilegeObject(kind: .global, name: "*")

  /// A collection of the grant's database (`*`: every collection in it).
  public static func collection(_ name: String = "*") -> PrivilegeObject {
    PrivilegeObject(kind: .collection, name: name)
  }

  /// A user (`*`: every user).
  public static func user(_ name: String = "*") -> PrivilegeObject {
    PrivilegeObject(kind: .user, name: name)
  }

  /// `Collection/books`, `Global/*`.
  public var description: String { "\(kind.rawValue)/\(name)" }
}

/// One privilege granted to a role, as ``MilvusCall/listGrants(of:on:database:)`` reports it.
public struct Grant: Sendable, Hashable {
  /// The role the privilege is granted to.
  public var role: String
  /// What the privilege applies to.
  public var object: PrivilegeObject
  /// The database it applies in (`*` for the built-in grants of every database).
  public var database: String
  /// The privilege granted.
  public var privilege: Privilege
  /// The user who granted it.
  public var grantor: String

  /// A grant with the given parts, as ``MilvusCall/listGrants(of:on:database:)`` reports it.
  ///
  /// - Parameters:
  ///   - role: The role the privilege is granted to.
  ///   - object: What it applies to.
  ///   - database: The database it applies in (`*` for every database).
  ///   - privilege: The privilege.
  ///   - grantor: The user who granted it.
  public init(
    role: String, object: PrivilegeObject, database: String, privilege: Privilege,
    grantor: String
  ) {
    self.role = role
    self.object = object
    self.database = database
    self.privilege = privilege
    self.grantor = grantor
  }
}

/// A user and the roles granted to it (``MilvusCall/describeUser(_:)``).
public struct UserDescription: Sendable, Hashable {
  /// The user's name.
  public var name: String
  /// The names of the roles granted to the user.
  public var roles: [String]
}

/// A role and the users it is granted to (``MilvusCall/describeRole(_:)``).
public struct RoleDescription: Sendable, Hashable {
  /// The role's name.
  public var name: String
  /// The names of the users the role is granted to.
  public var users: [String]
}
