#!/usr/bin/env python3
"""Creates a collection, inserts, searches and drops it through pymilvus: proof that a
server started by milvus_server.py answers real calls with the mode's TLS settings.

    milvus_smoke.py --port N --mode plain|tls|mtls [--certs DIR]

Prints one line per step and `OK` at the end; exits 1 on the first failure.
"""

import argparse
import sys
import time

from pymilvus import MilvusClient

from milvus_server import MODES, client_options


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", required=True, choices=sorted(MODES))
    parser.add_argument("--certs")
    args = parser.parse_args()

    started = time.monotonic()

    def step(text):
        print(f"{time.monotonic() - started:6.2f} s  {text}", flush=True)

    client = MilvusClient(uri=f"http://127.0.0.1:{args.port}", timeout=30, dedicated=True,
                          **client_options(args.mode, args.certs))
    step(f"connected, server {client.get_server_version()}")
    name = f"smoke_{int(time.time() * 1000)}"
    client.create_collection(name, dimension=4, metric_type="L2", consistency_level="Strong")
    step(f"created {name}")
    rows = [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0]} for i in range(100)]
    step(f"inserted {client.insert(name, rows)['insert_count']} rows")
    hits = client.search(name, [[42.0, 1.0, 0.0, 0.0]], limit=3)
    ids = [hit["id"] for hit in hits[0]]
    step(f"search: nearest ids {ids}")
    if not ids or ids[0] != 42:
        print(f"FAILED: expected id 42 first, got {ids}", file=sys.stderr)
        sys.exit(1)
    client.drop_collection(name)
    step("dropped")
    client.close()
    print("OK", flush=True)


if __name__ == "__main__":
    main()
