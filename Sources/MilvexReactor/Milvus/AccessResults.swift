// Milvus's access control (RBAC) as Swift values: privileges, the objects they apply to, grants,
// and what describing a user or a role returns. None of them holds a password.

/// A privilege Milvus checks before an operation, named as Milvus names it in grants (`Query`,
/// `Insert`, `CreateCollection`, …). Any name Milvus knows may be used; the common ones of
/// Milvus 2.3 are static members. A refusal names it with a `Privilege` prefix
/// (`PrivilegeQuery: permission deny to alice`).
public struct Privilege: MilvusName {
  public let rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }

  /// Every privilege of the object type.
  public static let all: Privilege = "*"

  // On `Global`.
  public static let createCollection: Privilege = "CreateCollection"
  public static let dropCollection: Privilege = "DropCollection"
  public static let describeCollection: Privilege = "DescribeCollection"
  public static let showCollections: Privilege = "ShowCollections"
  public static let renameCollection: Privilege = "RenameCollection"
  public static let flushAll: Privilege = "FlushAll"
  public static let createOwnership: Privilege = "CreateOwnership"
  public static let dropOwnership: Privilege = "DropOwnership"
  public static let selectOwnership: Privilege = "SelectOwnership"
  public static let manageOwnership: Privilege = "ManageOwnership"
  public static let createDatabase: Privilege = "CreateDatabase"
  public static let dropDatabase: Privilege = "DropDatabase"
  public static let listDatabases: Privilege = "ListDatabases"

  // On `Collection`.
  public static let insert: Privilege = "Insert"
  public static let delete: Privilege = "Delete"
  public static let upsert: Privilege = "Upsert"
  public static let search: Privilege = "Search"
  public static let query: Privilege = "Query"
  public static let flush: Privilege = "Flush"
  public static let load: Privilege = "Load"
  public static let release: Privilege = "Release"
  public static let getLoadState: Privilege = "GetLoadState"
  public static let getLoadingProgress: Privilege = "GetLoadingProgress"
  public static let getStatistics: Privilege = "GetStatistics"
  public static let createIndex: Privilege = "CreateIndex"
  public static let dropIndex: Privilege = "DropIndex"
  public static let indexDetail: Privilege = "IndexDetail"
  public static let createPartition: Privilege = "CreatePartition"
  public static let dropPartition: Privilege = "DropPartition"
  public static let showPartitions: Privilege = "ShowPartitions"
  public static let hasPartition: Privilege = "HasPartition"
  public static let compaction: Privilege = "Compaction"

  // On `User`.
  public static let updateUser: Privilege = "UpdateUser"
  public static let selectUser: Privilege = "SelectUser"
}

/// What a privilege applies to: an object type (`Global`, `Collection`, `User`) and an
/// object's name, `*` for every object of the type (pymilvus's `object_type` and
/// `object_name`).
public struct PrivilegeObject: Sendable, Hashable, CustomStringConvertible {
  /// An object type as Milvus names it. Any name Milvus knows may be used.
  public struct Kind: MilvusName {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The whole server (collections' creation and listing, databases, ownership).
    public static let global: Kind = "Global"
    public static let collection: Kind = "Collection"
    public static let user: Kind = "User"
  }

  public var kind: Kind
  /// The object's name; `*` for all of them.
  public var name: String

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
  public var role: String
  public var object: PrivilegeObject
  /// The database it applies in (`*` for the built-in grants of every database).
  public var database: String
  public var privilege: Privilege
  /// The user who granted it.
  public var grantor: String

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
  public var name: String
  public var roles: [String]
}

/// A role and the users it is granted to (``MilvusCall/describeRole(_:)``).
public struct RoleDescription: Sendable, Hashable {
  public var name: String
  public var users: [String]
}
