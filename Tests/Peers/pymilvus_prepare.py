#!/usr/bin/env python3
"""Prints the request pymilvus builds for a call, without a server: the bytes to compare with
this library's request for the same call when no test server implements the method.

    pymilvus_prepare.py FUNCTION ARGS_JSON

FUNCTION is a classmethod of pymilvus.client.prepare.Prepare (for example
alter_index_properties_request); ARGS_JSON is a JSON array of its positional arguments. Prints
one line {"type": <message full name>, "hex": <serialized request>} and exits 0; on any error
prints one line to stderr and exits 1.
"""

import json
import sys


def main():
    try:
        from pymilvus.client.prepare import Prepare
        if len(sys.argv) != 3:
            raise ValueError("usage: pymilvus_prepare.py FUNCTION ARGS_JSON")
        function = getattr(Prepare, sys.argv[1], None)
        if function is None or sys.argv[1].startswith("_"):
            raise ValueError(f"Prepare has no function {sys.argv[1]!r}")
        request = function(*json.loads(sys.argv[2]))
        print(json.dumps({"type": request.DESCRIPTOR.full_name,
                          "hex": request.SerializeToString().hex()}))
    except Exception as error:  # one line, whatever failed
        sys.stderr.write(f"pymilvus_prepare.py: {type(error).__name__}: {error}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
