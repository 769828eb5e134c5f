import Foundation
internal import MilvexProtos
import SwiftProtobuf

// Access control (Milvus RBAC): users and their passwords, roles, which roles a user has, and
// which privileges a role has on which objects. Milvus answers these only with authorization
// on (`common.security.authorizationEnabled`); milvus-lite answers UNIMPLEMENTED. Requests
// mirror pymilvus's (`create_user`, `grant_privilege`, `list_grants`, …).
//
// Passwords travel base64-encoded in the request, as Milvus expects, and only there: they are
// captured by the call's encoder alone, so no description, log line or argument error of a
// call holds one.
//
// Every call is made on any thread (making a call is pure); ``MilvusClient`` performs it, its
// `async` form from any task, its callback form from any thread with the completion on the
// loop thread.

extension MilvusCall where Output == Void {
  private static func accessStatus<Request: SwiftProtobuf.Message>(
    _ method: String, invalid: MilvexError?,
    request: @escaping @Sendable (MilvusCallContext) throws -> Request
  ) -> MilvusCall {
    make(method, response: Milvus_Proto_Common_Status.self, invalid: invalid, request: request) {
      _, _ in
    }
  }

  // MARK: Users

  /// Creates a user with a password (`CreateCredential`). Milvus checks the name (letters,
  /// digits and underscores, starting with a letter or underscore) and the password's length
  /// (6 … 256 by default) and says which rule failed; neither its words nor this call's
  /// description contain the password.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func createUser(_ name: String, password: String) -> MilvusCall {
    accessStatus(
      "CreateCredential",
      invalid: Check.first(Check.name(name, "user"), Check.name(password, "password"))
    ) { _ in
      Milvus_Proto_Milvus_CreateCredentialRequest.with {
        $0.username = name
        $0.password = base64(password)
      }
    }
  }

  /// Changes a user's password (`UpdateCredential`), as root or as the user itself;
  /// `oldPassword` must be the current one either way (Milvus: "old password not correct for
  /// alice: not authenticated", code 1400). Connections made with the old password fail their
  /// next calls as UNAUTHENTICATED; connect again with the new one.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func updatePassword(
    user: String, oldPassword: String, newPassword: String
  ) -> MilvusCall {
    accessStatus(
      "UpdateCredential",
      invalid: Check.first(
        Check.name(user, "user"), Check.name(oldPassword, "oldPassword"),
        Check.name(newPassword, "newPassword"))
    ) { _ in
      Milvus_Proto_Milvus_UpdateCredentialRequest.with {
        $0.username = user
        $0.oldPassword = base64(oldPassword)
        $0.newPassword = base64(newPassword)
      }
    }
  }

  /// Drops a user (`DeleteCredential`); its roles are no longer granted to anyone by that name.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func dropUser(_ name: String) -> MilvusCall {
    accessStatus("DeleteCredential", invalid: Check.name(name, "user")) { _ in
      Milvus_Proto_Milvus_DeleteCredentialRequest.with { $0.username = name }
    }
  }

  // MARK: Roles

  /// Creates a role (`CreateRole`), with no privileges yet. Milvus has `admin` and `public`
  /// built in.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func createRole(_ name: String) -> MilvusCall {
    accessStatus("CreateRole", invalid: Check.name(name, "role")) { _ in
      Milvus_Proto_Milvus_CreateRoleRequest.with { $0.entity.name = name }
    }
  }

  /// Drops a role (`DropRole`), also while users have it. Revoke its privileges first: Milvus
  /// 2.3 refuses to drop a role that has some ("fail to drop the role that it has privileges.
  /// Use REVOKE API to revoke privileges").
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func dropRole(_ name: String) -> MilvusCall {
    accessStatus("DropRole", invalid: Check.name(name, "role")) { _ in
      Milvus_Proto_Milvus_DropRoleRequest.with { $0.roleName = name }
    }
  }

  /// Grants `role` to `user` (`OperateUserRole` AddUserToRole, pymilvus's `grant_role`): the
  /// user gets the role's privileges.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func grantRole(_ role: String, to user: String) -> MilvusCall {
    operateUserRole(role, user, .addUserToRole)
  }

  /// Takes `role` away from `user` (`OperateUserRole` RemoveUserFromRole, pymilvus's
  /// `revoke_role`).
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func revokeRole(_ role: String, from user: String) -> MilvusCall {
    operateUserRole(role, user, .removeUserFromRole)
  }

  private static func operateUserRole(
    _ role: String, _ user: String, _ type: Milvus_Proto_Milvus_OperateUserRoleType
  ) -> MilvusCall {
    accessStatus(
      "OperateUserRole", invalid: Check.first(Check.name(role, "role"), Check.name(user, "user"))
    ) { _ in
      Milvus_Proto_Milvus_OperateUserRoleRequest.with {
        $0.username = user
        $0.roleName = role
        $0.type = type
      }
    }
  }

  // MARK: Privileges

  /// Grants `privilege` on `object` to `role` (`OperatePrivilege` Grant, pymilvus's
  /// `grant_privilege`), in `database` (nil: the call's database, `default` unless the client
  /// or the call chose another; pymilvus sends an empty name, which Milvus reads the same way).
  /// Milvus refuses a privilege name it does not know ("not found the privilege name[…]").
  ///
  /// ```swift
  /// try await client.perform(.grantPrivilege(.query, on: .collection("books"), to: "reader"))
  /// ```
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func grantPrivilege(
    _ privilege: Privilege, on object: PrivilegeObject, to role: String, database: String? = nil
  ) -> MilvusCall {
    operatePrivilege(privilege, object, role, database, .grant)
  }

  /// Revokes `privilege` on `object` from `role` (`OperatePrivilege` Revoke, pymilvus's
  /// `revoke_privilege`); `database` as in ``grantPrivilege(_:on:to:database:)``.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func revokePrivilege(
    _ privilege: Privilege, on object: PrivilegeObject, from role: String,
    database: String? = nil
  ) -> MilvusCall {
    operatePrivilege(privilege, object, role, database, .revoke)
  }

  private static func operatePrivilege(
    _ privilege: Privilege, _ object: PrivilegeObject, _ role: String, _ database: String?,
    _ type: Milvus_Proto_Milvus_OperatePrivilegeType
  ) -> MilvusCall {
    let invalid = Check.first(
      Check.name(privilege.rawValue, "privilege"), Check.object(object),
      Check.name(role, "role"), database.map { Check.name($0, "database") } ?? nil)
    return accessStatus("OperatePrivilege", invalid: invalid) { context in
      Milvus_Proto_Milvus_OperatePrivilegeRequest.with {
        $0.entity = .grant(
          role: role, object: object, database: database ?? context.database,
          privilege: privilege)
        $0.type = type
      }
    }
  }

  /// Milvus expects passwords base64-encoded (pymilvus: `base64.b64encode(password)`).
  private static func base64(_ password: String) -> String {
    Data(password.utf8).base64EncodedString()
  }
}

extension MilvusCall where Output == [String] {
  /// The names of every user (`ListCredUsers`), `root` among them.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func listUsers() -> MilvusCall {
    make("ListCredUsers", response: Milvus_Proto_Milvus_ListCredUsersResponse.self) { _ in
      Milvus_Proto_Milvus_ListCredUsersRequest()
    } output: { response, _ in
      response.usernames
    }
  }

  /// The names of every role (`SelectRole`), `admin` and `public` among them.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func listRoles() -> MilvusCall {
    make("SelectRole", response: Milvus_Proto_Milvus_SelectRoleResponse.self) { _ in
      Milvus_Proto_Milvus_SelectRoleRequest()
    } output: { response, _ in
      response.results.map(\.role.name)
    }
  }
}

extension MilvusCall where Output == UserDescription? {
  /// A user and its roles (`SelectUser` with role information, pymilvus's `describe_user`);
  /// nil if there is no such user. Root is a superuser without roles.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func describeUser(_ name: String) -> MilvusCall {
    make(
      "SelectUser", response: Milvus_Proto_Milvus_SelectUserResponse.self,
      invalid: Check.name(name, "user")
    ) { _ in
      Milvus_Proto_Milvus_SelectUserRequest.with {
        $0.user.name = name
        $0.includeRoleInfo = true
      }
    } output: { response, _ in
      response.results.first.map {
        UserDescription(name: $0.user.name, roles: $0.roles.map(\.name))
      }
    }
  }
}

extension MilvusCall where Output == RoleDescription? {
  /// A role and the users it is granted to (`SelectRole` with user information); nil if there
  /// is no such role. Its privileges: ``listGrants(of:on:database:)``.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func describeRole(_ name: String) -> MilvusCall {
    make(
      "SelectRole", response: Milvus_Proto_Milvus_SelectRoleResponse.self,
      invalid: Check.name(name, "role")
    ) { _ in
      Milvus_Proto_Milvus_SelectRoleRequest.with {
        $0.role.name = name
        $0.includeUserInfo = true
      }
    } output: { response, _ in
      response.results.first.map {
        RoleDescription(name: $0.role.name, users: $0.users.map(\.name))
      }
    }
  }
}

extension MilvusCall where Output == [Grant] {
  /// The privileges granted to `role` (`SelectGrant`, pymilvus's `describe_role` privileges
  /// and `list_grants`), on every object or on `object` only, in `database` (nil: the call's
  /// database). Built-in grants of the `public` role apply in every database and are reported
  /// with the database `*`. Milvus: "not found the role, …" for a role that does not exist.
  ///
  /// - Important: Any thread may make the call; ``MilvusClient`` runs a callback form's
  ///   completion on the loop thread.
  public static func listGrants(
    of role: String, on object: PrivilegeObject? = nil, database: String? = nil
  ) -> MilvusCall {
    let invalid = Check.first(
      Check.name(role, "role"), object.map(Check.object) ?? nil,
      database.map { Check.name($0, "database") } ?? nil)
    return make(
      "SelectGrant", response: Milvus_Proto_Milvus_SelectGrantResponse.self, invalid: invalid
    ) { context in
      Milvus_Proto_Milvus_SelectGrantRequest.with {
        $0.entity.role.name = role
        if let object {
          $0.entity.object.name = object.kind.rawValue
          $0.entity.objectName = object.name
        }
        $0.entity.dbName = database ?? context.database
      }
    } output: { response, _ in
      response.entities.map {
        Grant(
          role: $0.role.name,
          object: PrivilegeObject(kind: .init(rawValue: $0.object.name), name: $0.objectName),
          database: $0.dbName, privilege: Privilege(rawValue: $0.grantor.privilege.name),
          grantor: $0.grantor.user.name)
      }
    }
  }
}

extension Milvus_Proto_Milvus_GrantEntity {
  /// What pymilvus's `grant_privilege` sends (the grantor's user is the caller, set by Milvus).
  fileprivate static func grant(
    role: String, object: PrivilegeObject, database: String, privilege: Privilege
  ) -> Self {
    .with {
      $0.role.name = role
      $0.object.name = object.kind.rawValue
      $0.objectName = object.name
      $0.dbName = database
      $0.grantor.privilege.name = privilege.rawValue
    }
  }
}

extension Check {
  /// An object type and an object name (`*` for all).
  fileprivate static func object(_ object: PrivilegeObject) -> MilvexError? {
    first(name(object.kind.rawValue, "object.kind"), name(object.name, "object.name"))
  }
}

extension Milvus_Proto_Milvus_ListCredUsersResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_SelectRoleResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_SelectUserResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
extension Milvus_Proto_Milvus_SelectGrantResponse: MilvusResponse {
  var milvusStatus: Milvus_Proto_Common_Status { status }
}
