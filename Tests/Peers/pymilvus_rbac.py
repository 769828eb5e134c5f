#!/usr/bin/env python3
"""Lists users, roles and one role's grants with pymilvus and prints them as JSON.

Test peer for the access-control cross-check: the Swift tests ask the same server (with
authorization on) the same questions through MilvexReactor and through pymilvus (the
reference SDK) and compare the answers.

    pymilvus_rbac.py '<json>'

where the JSON argument is

    {"uri": "https://localhost:PORT", "token": "root:Milvus", "ca": "/path/ca.pem",
     "server_name": "localhost", "user": "alice", "role": "reader", "db": "default"}

("ca" and "server_name" only for TLS; "user", "role" and "db" are optional) and the output
(one line on stdout) is

    {"users": ["root", ...], "roles": ["admin", ...],
     "user": {"user_name": "alice", "roles": ["reader"]},
     "grants": [{"object_type": "Collection", "object_name": "c", "db_name": "default",
                 "role_name": "reader", "privilege": "Query", "grantor_name": "root"}, ...]}

The token goes to pymilvus only; it is never printed.
"""

import json
import sys

from pymilvus import MilvusClient


def main():
    request = json.loads(sys.argv[1])
    options = {"uri": request["uri"], "token": request["token"]}
    if request.get("ca"):
        options["server_pem_path"] = request["ca"]
    if request.get("server_name"):
        options["server_name"] = request["server_name"]
    client = MilvusClient(**options)
    result = {"users": list(client.list_users()), "roles": list(client.list_roles())}
    user = request.get("user")
    if user:
        described = client.describe_user(user)
        result["user"] = {
            "user_name": described.get("user_name"),
            "roles": list(described.get("roles", ())),
        }
    role = request.get("role")
    if role:
        described = client.describe_role(role, db_name=request.get("db", ""))
        result["grants"] = [dict(grant) for grant in described["privileges"]]
    client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
