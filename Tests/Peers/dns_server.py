"""A DNS server for tests: answers A and AAAA queries over UDP from a table that the test
changes while it runs (the names of a deployment whose proxies come and go).

It binds 127.0.0.1 (port 0 = any free port), prints exactly one line ``PORT <n>`` to
stdout, and lives as long as its stdin stays open (see README.md).  Commands, one per line on
stdin, each answered with one line starting ``OK`` on stdout:

    SET <name> <address>[,<address>...]   answer with these addresses (IPv4 and IPv6 mixed)
    SET <name> -                          the name does not exist (NXDOMAIN)
    FAIL <name>                           answer SERVFAIL for the name
    COUNT <name>                          ``OK <n>``: how many A queries the name received

Names not in the table get NXDOMAIN.  Answers carry TTL 0, so nothing caches them.
Standard library only.
"""

import argparse
import ipaddress
import os
import socket
import struct
import sys
import threading

from peer_log import make_log

log = make_log(lambda: "dns")

TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3

_table = {}          # name -> list of ipaddress objects, or None for NXDOMAIN
_failing = set()
_counts = {}
_lock = threading.Lock()


def parse_question(packet):
    """(name, qtype, end offset) of the first question, or None if malformed."""
    offset, labels = 12, []
    while True:
        if offset >= len(packet):
            return None
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0 or offset + length > len(packet):
            return None
        labels.append(packet[offset:offset + length].decode("ascii", "replace").lower())
        offset += length
    if offset + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[offset:offset + 4])
    return ".".join(labels), qtype, offset + 4


def answer(packet):
    if len(packet) < 12:
        return None
    query_id, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    parsed = parse_question(packet)
    if parsed is None:
        return None
    name, qtype, end = parsed
    with _lock:
        if qtype == TYPE_A:
            _counts[name] = _counts.get(name, 0) + 1
        failing = name in _failing
        addresses = _table.get(name)
    records = []
    if failing:
        rcode = SERVFAIL
    elif addresses is None:
        rcode = NXDOMAIN
    else:
        rcode = NOERROR
        version = 4 if qtype == TYPE_A else 6 if qtype == TYPE_AAAA else None
        for address in addresses:
            if address.version == version:
                records.append(struct.pack("!HHHIH", 0xC00C, qtype, CLASS_IN, 0,
                                           len(address.packed)) + address.packed)
    log(f"{name} type {qtype}: rcode {rcode}, {len(records)} answers")
    header = struct.pack("!HHHHHH", query_id, 0x8180 | (flags & 0x0100) | rcode, 1,
                         len(records), 0, 0)
    return header + packet[12:end] + b"".join(records)


def serve(sock):
    while True:
        try:
            packet, peer = sock.recvfrom(4096)
        except OSError:
            return
        reply = answer(packet)
        if reply is not None:
            sock.sendto(reply, peer)


def command(line):
    parts = line.split()
    if len(parts) == 3 and parts[0] == "SET":
        name = parts[1].lower().rstrip(".")
        addresses = None if parts[2] == "-" else [ipaddress.ip_address(a) for a in parts[2].split(",")]
        with _lock:
            _table[name] = addresses
            _failing.discard(name)
        return "OK"
    if len(parts) == 2 and parts[0] == "FAIL":
        with _lock:
            _failing.add(parts[1].lower().rstrip("."))
        return "OK"
    if len(parts) == 2 and parts[0] == "COUNT":
        with _lock:
            return f"OK {_counts.get(parts[1].lower().rstrip('.'), 0)}"
    return f"ERROR unknown command: {line}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="UDP port on 127.0.0.1 (0 = any)")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    threading.Thread(target=serve, args=(sock,), name="udp", daemon=True).start()
    sys.stdout.write(f"PORT {sock.getsockname()[1]}\n")
    sys.stdout.flush()
    log(f"listening on 127.0.0.1:{sock.getsockname()[1]} (UDP)")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = command(line.strip())
        except ValueError as error:
            reply = f"ERROR {error}"
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()
    log("stdin closed; exiting")
    os._exit(0)


if __name__ == "__main__":
    main()
