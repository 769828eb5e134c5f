#!/usr/bin/env python3
"""A TCP proxy that timestamps every connection it accepts (make bench-many).

    counting_proxy.py --target-port N [--listen-port 0] [--backlog 4096]

Listens on 127.0.0.1 (port 0 = any free port), prints ``PORT <n>``, and forwards
each accepted connection to 127.0.0.1:N, bytes unchanged.  It stands where the
server's listening socket would, so its accepts are the connection attempts the
server's port sees, including those made while the server is down: then the
upstream connect is refused and the client's connection is reset at once (RST),
which a client handles like a refused connect.  When the server closes a link,
the client's side is closed the same way (FIN after an end of stream, RST after
an error).

Commands on stdin, one per line:

    mark      forget what was recorded and count from now (answers ``OK mark``)
    report    one line: ``REPORT {json}`` with, in ms since the mark, the time of
              every accept (``accepts_ms``) and of every upstream connect that
              succeeded (``upstream_ms``), plus ``refused`` (upstream connects
              that failed) and ``links`` (links open now)

EOF on stdin ends the process.  Standard library only.  The accept time is
taken when asyncio hands the connection over, so under a burst it lags the
kernel's accept by the proxy's queue (the client's own attempt times show it).
"""

import argparse
import asyncio
import json
import socket
import struct
import sys
import time


def reset(transport):
    """Close with an RST instead of a FIN."""
    sock = transport.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    transport.abort()


class Counts:
    def __init__(self):
        self.links = 0
        self.start()

    def start(self):
        """Forgets what was recorded: times count from now (links stay open)."""
        self.mark = time.monotonic()
        self.accepts = []
        self.upstream = []
        self.refused = 0

    def since_mark_ms(self):
        return round((time.monotonic() - self.mark) * 1000, 1)


class Side(asyncio.Protocol):
    """One end of a link; what it receives is written to its peer."""

    def __init__(self):
        self.transport = None
        self.peer = None
        self.pending = []  # bytes from the client before the upstream is connected
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.peer is None:
            self.pending.append(data)
        else:
            self.peer.transport.write(data)

    def eof_received(self):
        self.close_peer(error=False)
        return False  # close this side too

    def connection_lost(self, exc):
        self.closed = True
        self.close_peer(error=exc is not None)

    def close_peer(self, error):
        peer = self.peer
        if peer is None or peer.closed:
            return
        peer.closed = True
        if error:
            reset(peer.transport)
        else:
            peer.transport.close()


class ClientSide(Side):
    def __init__(self, counts, target_port):
        super().__init__()
        self.counts = counts
        self.target_port = target_port

    def connection_made(self, transport):
        self.counts.accepts.append(self.counts.since_mark_ms())
        self.counts.links += 1
        super().connection_made(transport)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        asyncio.get_running_loop().create_task(self.connect_upstream())

    def connection_lost(self, exc):
        self.counts.links -= 1
        super().connection_lost(exc)

    async def connect_upstream(self):
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(
                Side, "127.0.0.1", self.target_port)
        except OSError:
            self.counts.refused += 1
            if not self.closed:
                self.closed = True
                reset(self.transport)
            return
        self.counts.upstream.append(self.counts.since_mark_ms())
        if self.closed:  # the client gave up meanwhile
            upstream.transport.close()
            return
        upstream.transport.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.peer, self.peer = self, upstream
        for data in self.pending:
            upstream.transport.write(data)
        self.pending = []


async def commands(counts):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = line.decode().strip()
        if command == "mark":
            counts.start()
            answer = "OK mark"
        elif command == "report":
            answer = "REPORT " + json.dumps({
                "accepts_ms": counts.accepts, "upstream_ms": counts.upstream,
                "refused": counts.refused, "links": counts.links})
        else:
            answer = f"ERR {command}: unknown command"
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=4096)
    arguments = parser.parse_args()
    counts = Counts()
    server = await asyncio.get_running_loop().create_server(
        lambda: ClientSide(counts, arguments.target_port), "127.0.0.1", arguments.listen_port,
        backlog=arguments.backlog)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    await commands(counts)


if __name__ == "__main__":
    asyncio.run(main())
