#!/usr/bin/env python3
"""A real gRPC server (grpcio, gRPC C-core) that echoes every unary call's request bytes, with
TLS: the TLS tests' reference peer for what a production gRPC server does in a handshake.

  grpc_tls_echo.py --cert server.pem --key server.key [--client-ca ca.pem]

--client-ca requires and verifies a client certificate signed by that CA (mutual TLS).
Prints `PORT <n>` once listening on 127.0.0.1; exits when its stdin closes.
"""
import argparse
import os
import sys
from concurrent import futures

os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # no C-core log lines in the test output
import grpc  # noqa: E402


class Echo(grpc.GenericRpcHandler):
    def service(self, handler_call_details):
        return grpc.unary_unary_rpc_method_handler(lambda request, context: request)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    options = parser.parse_args()
    with open(options.key, "rb") as key, open(options.cert, "rb") as cert:
        pair = (key.read(), cert.read())
    root = None
    if options.client_ca:
        with open(options.client_ca, "rb") as ca:
            root = ca.read()
    credentials = grpc.ssl_server_credentials(
        [pair], root_certificates=root, require_client_auth=root is not None)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((Echo(),))
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()  # until EOF: the test process ended or stopped us
    server.stop(grace=None)


if __name__ == "__main__":
    main()
