#!/usr/bin/env python3
"""The fault soak's TCP proxy (make soak): a network that breaks on command.

    soak_proxy.py --target-port N [--listen-port 0] [--seed S]

Listens on 127.0.0.1 (port 0 = any free port), prints ``PORT <n>``, and forwards
every accepted connection to 127.0.0.1:N.  Commands arrive on stdin, one per
line; each is answered with ``OK <command>`` once it has taken effect
(``ERR <command>: <reason>`` if it could not):

    reset              close every current connection abruptly (RST, SO_LINGER 0)
    blackhole          stall every current and new connection: nothing is read,
                       written or connected upstream, as on a network that drops
                       every packet (the kernel still completes new handshakes)
    forward            end the stall: what waited flows again, as TCP would
                       retransmit it; a side that gave up meanwhile is seen
                       closed and its link is closed
    latency MIN MAX    delay every chunk, in both directions, by a random MIN to
                       MAX milliseconds (seeded; chunks stay in order)
    nolatency          new chunks go through without delay again
    stats              ``OK stats links=<open links> accepted=<total>``

Unlike Tests/Peers/fault_proxy.py, a blackhole here loses no bytes, and there
is added latency; the tests keep using that one.  Standard library only.
EOF on stdin or SIGTERM ends the process.  Events are logged to stderr.
"""

import argparse
import asyncio
import random
import signal
import socket
import struct
import sys
import time

LOG_PREFIX = "soak_proxy"


def log(message):
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    try:
        sys.stderr.write(f"{stamp} [{LOG_PREFIX}] {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr gone: the parent stopped listening


def abort(writer):
    """Close with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class Link:
    """One proxied connection: client <-> upstream, a pump task per direction."""

    def __init__(self, number, client_reader, client_writer):
        self.number = number
        self.client_reader = client_reader
        self.client_writer = client_writer
        self.upstream_writer = None
        self.tasks = []

    def __repr__(self):
        return f"conn#{self.number}"

    def writers(self):
        return [w for w in (self.client_writer, self.upstream_writer) if w is not None]


class Proxy:
    def __init__(self, target_port, seed):
        self.target_port = target_port
        self.random = random.Random(seed)
        self.links = set()
        self.accepted = 0
        # Set while the network flows; cleared during a blackhole.
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.latency_ms = None  # (min, max) or None

    def delay_seconds(self):
        if self.latency_ms is None:
            return 0.0
        low, high = self.latency_ms
        return self.random.uniform(low, high) / 1000

    # ------------------------------------------------------------ connections
    async def on_client(self, client_reader, client_writer):
        self.accepted += 1
        link = Link(self.accepted, client_reader, client_writer)
        self.links.add(link)
        try:
            await self.flowing.wait()
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    "127.0.0.1", self.target_port)
            except OSError as e:
                log(f"{link} target port {self.target_port} failed: {e}; closing client")
                client_writer.close()
                return
            link.upstream_writer = upstream_writer
            for writer in link.writers():
                writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up = asyncio.ensure_future(self.pump(link, client_reader, upstream_writer, "client"))
            down = asyncio.ensure_future(self.pump(link, upstream_reader, client_writer, "upstream"))
            link.tasks = [up, down]
            # A FIN in one direction lets the other go on (a half-close); a failure ends both.
            pending = {up, down}
            failed = False
            while pending and not failed:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failed = any(task.result() == "error" for task in done)
            for task in pending:
                task.cancel()
            for writer in link.writers():
                if failed:
                    abort(writer)
                else:
                    writer.close()
        except asyncio.CancelledError:
            pass
        finally:
            self.links.discard(link)

    async def pump(self, link, reader, writer, side):
        """Copies one direction; returns "eof" after passing a FIN on, "error" on a failure."""
        queue = asyncio.Queue()
        release = 0.0  # when the last queued chunk may be written: chunks never overtake

        async def write_all():
            while True:
                at, data = await queue.get()
                wait = at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.flowing.wait()
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        writing = asyncio.ensure_future(write_all())
        reading = None
        try:
            while True:
                await self.flowing.wait()
                reading = asyncio.ensure_future(reader.read(65536))
                done, _ = await asyncio.wait({reading, writing}, return_when=asyncio.FIRST_COMPLETED)
                if writing in done:
                    writing.result()  # raises the write error
                    return "eof"
                data = reading.result()
                await self.flowing.wait()  # a read that completed as the blackhole began
                release = max(release, time.monotonic() + self.delay_seconds())
                queue.put_nowait((release, data or None))
                if not data:
                    await writing
                    return "eof"
        except OSError as e:
            log(f"{link} {side} failed: {e!r}; resetting both")
            return "error"
        finally:
            writing.cancel()
            if reading is not None:
                reading.cancel()

    # --------------------------------------------------------------- commands
    def run_command(self, words):
        command = words[0] if words else ""
        if command == "reset":
            for link in list(self.links):
                for task in link.tasks:
                    task.cancel()
                for writer in link.writers():
                    abort(writer)
                self.links.discard(link)
                log(f"{link} reset")
        elif command == "blackhole":
            self.flowing.clear()
        elif command == "forward":
            self.flowing.set()
        elif command == "latency" and len(words) == 3:
            low, high = float(words[1]), float(words[2])
            if not 0 <= low <= high:
                raise ValueError("needs 0 <= MIN <= MAX")
            self.latency_ms = (low, high)
        elif command == "nolatency":
            self.latency_ms = None
        elif command == "stats":
            return f"OK stats links={len(self.links)} accepted={self.accepted}"
        else:
            raise ValueError("unknown command")
        return "OK " + " ".join(words)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-port", type=int, required=True, help="port on 127.0.0.1 to forward to")
    parser.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 to listen on (0 = any)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the added latencies")
    args = parser.parse_args()

    proxy = Proxy(args.target_port, args.seed)
    server = await asyncio.start_server(proxy.on_client, "127.0.0.1", args.listen_port,
                                        reuse_address=True, backlog=128)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    log(f"listening on 127.0.0.1:{port}, forwarding to 127.0.0.1:{args.target_port}")

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.stop())
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while True:
        line = await stdin.readline()
        if not line:
            break
        text = line.decode(errors="replace").strip()
        if not text:
            continue
        try:
            answer = proxy.run_command(text.split())
        except (ValueError, OSError) as e:
            answer = f"ERR {text}: {e}"
        log(f"command {text!r} -> {answer}")
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    log("stdin closed; exiting")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, RuntimeError):
        pass  # RuntimeError: the loop was stopped by SIGTERM
