#!/usr/bin/env python3
"""Runs one search and one query with pymilvus and prints the results as JSON.

Test peer for the cross-check: the Swift tests ask the same server the same
questions through MilvexReactor and through pymilvus (the reference SDK) and
compare the answers.

    pymilvus_query.py '<json>'

where the JSON argument is

    {"uri": "http://127.0.0.1:PORT", "db": "default", "collection": "c",
     "search": {"vectors": [[...]], "anns_field": "vec", "limit": 5,
                "filter": "", "output_fields": ["title"]},
     "query": {"filter": "id < 10", "output_fields": ["title"], "limit": 100}}

and the output (one line on stdout) is

    {"search": [[{"id": 1, "distance": 0.0, "entity": {...}}, ...], ...],
     "query": [{"id": 1, "title": "..."}, ...]}
"""

import json
import sys

from pymilvus import MilvusClient


def plain(value):
    """JSON-safe copies of pymilvus values (numpy floats and the like)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return value


def main():
    request = json.loads(sys.argv[1])
    client = MilvusClient(uri=request["uri"], db_name=request.get("db", "default"))
    collection = request["collection"]
    result = {}
    search = request.get("search")
    if search:
        hits = client.search(
            collection,
            data=search["vectors"],
            anns_field=search["anns_field"],
            limit=search["limit"],
            filter=search.get("filter", ""),
            output_fields=search.get("output_fields", []),
        )
        result["search"] = [
            [{"id": hit["id"], "distance": hit["distance"], "entity": plain(hit["entity"])} for hit in query]
            for query in hits
        ]
    query = request.get("query")
    if query:
        rows = client.query(
            collection,
            filter=query["filter"],
            output_fields=query.get("output_fields", []),
            limit=query.get("limit"),
        )
        result["query"] = [plain(dict(row)) for row in rows]
    client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
