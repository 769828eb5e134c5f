#!/usr/bin/env python3
"""Runs pymilvus's query iterator and search iterator and prints their batches as JSON.

Test peer for the iterator cross-check (Tests/MilvexReactorTests/Milvus/
IteratorWorkflowTests.swift): the Swift tests iterate over the same collection through
MilvexReactor and through pymilvus (the reference SDK) and compare the batches.

    pymilvus_iterators.py '<json>'

where the JSON argument is

    {"uri": "http://127.0.0.1:PORT", "collection": "c",
     "query": {"filter": "group == 3", "batch_size": 64, "limit": 250, "offset": 100},
     "search": {"vector": [...], "anns_field": "vec", "metric_type": "L2",
                "batch_size": 100, "limit": 2500, "filter": ""}}

(either part may be left out; "limit" and "offset" too) and the output (one line on stdout) is

    {"query": [[id, ...], ...], "search": [[[id, distance], ...], ...]}

one list per batch. pymilvus 3.0.2 tries its search iterator v2 first; Milvus 2.3.5 and
milvus-lite 3.2.2 do not support it, so it uses v1 (range search by distance), whose warning
goes to stderr. A watchdog ends the process after 120 s.
"""

import json
import logging
import sys
import threading
import os

from pymilvus import MilvusClient


def watchdog(seconds):
    def expire():
        sys.stderr.write(f"pymilvus_iterators.py: no answer within {seconds} s\n")
        os._exit(2)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def drain(iterator, convert):
    batches = []
    while True:
        batch = iterator.next()
        if not batch:
            break
        batches.append([convert(item) for item in batch])
    iterator.close()
    return batches


def main():
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    watchdog(120)
    request = json.loads(sys.argv[1])
    client = MilvusClient(uri=request["uri"], timeout=30)
    collection = request["collection"]
    result = {}
    query = request.get("query")
    if query:
        extra = {"offset": query["offset"]} if query.get("offset") else {}
        iterator = client.query_iterator(
            collection,
            batch_size=query["batch_size"],
            limit=query.get("limit", -1),
            filter=query.get("filter", ""),
            output_fields=[],
            **extra,
        )
        result["query"] = drain(iterator, lambda row: row["id"])
    search = request.get("search")
    if search:
        iterator = client.search_iterator(
            collection,
            data=[search["vector"]],
            anns_field=search["anns_field"],
            batch_size=search["batch_size"],
            limit=search.get("limit", -1),
            filter=search.get("filter", ""),
            search_params={"metric_type": search["metric_type"]},
        )
        result["search"] = drain(iterator, lambda hit: [hit["id"], float(hit["distance"])])
    client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
