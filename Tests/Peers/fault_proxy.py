#!/usr/bin/env python3
"""A TCP proxy whose network can be broken on command.

Test peer for MilvexReactor: it sits between the client and a server and
simulates a stalled or failing network.

    fault_proxy.py --target-port N [--listen-port 0]

Listens on 127.0.0.1 (port 0 = any free port), prints ``PORT <n>``, and
forwards every accepted connection to 127.0.0.1:N.  Commands arrive on stdin,
one per line; each is answered with ``OK <command>`` once it has taken effect
(``ERR <command>: <reason>`` if it could not):

    blackhole  stop forwarding both ways on all current and future
               connections; sockets stay open, whatever arrives is discarded
    forward    forward new connections again (blackholed ones stay dead)
    reset      close every current connection abruptly (RST, SO_LINGER 0)
    refuse     close the listening socket: new connects get ECONNREFUSED
    accept     listen again on the same port

EOF on stdin or SIGTERM ends the process.  Events are logged to stderr.
"""

import argparse
import errno
import itertools
import os
import queue
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback

from peer_log import make_log

# Stop reading from a side while this much is still waiting to be written to
# the other, so a slow reader bounds our memory.
BUFFER_LIMIT = 1024 * 1024

log = make_log(lambda: "fault_proxy")


def abort_socket(sock):
    """Close with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Direction:
    """Bytes read from one side, waiting to be written to the other."""

    def __init__(self):
        self.buf = bytearray()
        self.eof = False   # the reading side sent FIN
        self.shut = False  # ...and we passed it on with shutdown(SHUT_WR)


class Link:
    """One proxied connection: client socket <-> upstream socket."""

    def __init__(self, number, client):
        self.number = number
        self.client = client
        self.upstream = None
        self.state = "connecting"  # "connecting", "forwarding" or "blackholed"
        self.up = Direction()      # client -> upstream
        self.down = Direction()    # upstream -> client

    def __repr__(self):
        return f"conn#{self.number}"


class Proxy:
    def __init__(self, target_port, listen_port):
        self.target_port = target_port
        self.port = listen_port
        self.sel = selectors.DefaultSelector()
        self.interest = {}  # socket -> registered event mask
        self.links = set()
        self.numbers = itertools.count(1)
        self.blackhole = False
        self.listener = None
        self.commands = queue.Queue()
        # The loop thread owns every socket; the stdin thread hands it
        # commands through this queue and wakes it with a byte on this pair.
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.open_listener()

    # --------------------------------------------------------------- listener
    def open_listener(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # SO_REUSEADDR lets `accept` rebind the port right after `refuse`,
        # with proxied connections from the old listener still in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self.listener = listener
        self.sel.register(listener, selectors.EVENT_READ, "listener")

    def close_listener(self):
        if self.listener is not None:
            self.sel.unregister(self.listener)
            self.listener.close()
            self.listener = None

    def accept_all(self):
        while self.listener is not None:
            try:
                client, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log(f"accept failed: {e}")
                return
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = Link(next(self.numbers), client)
            self.links.add(link)
            if self.blackhole:
                # No upstream at all: the client's connect succeeded, but
                # nothing it sends will ever reach the server.
                link.state = "blackholed"
                log(f"{link} accepted into the blackhole")
                continue
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link.upstream = upstream
            rc = upstream.connect_ex(("127.0.0.1", self.target_port))
            if rc not in (0, errno.EINPROGRESS):
                log(f"{link} target port {self.target_port} failed: {os.strerror(rc)}; closing client")
                self.close_link(link)
                continue
            log(f"{link} accepted, connecting to port {self.target_port}")

    # --------------------------------------------------------------- commands
    def submit(self, command):
        """Called from the stdin thread; returns the line to print."""
        done = threading.Event()
        result = []
        self.commands.put((command, done, result))
        self.wake_w.send(b"x")
        done.wait()
        return result[0]

    def run_commands(self):
        while True:
            try:
                command, done, result = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                result.append(self.run_command(command))
            except OSError as e:
                result.append(f"ERR {command}: {e}")
            log(f"command {command!r} -> {result[0]}")
            done.set()

    def run_command(self, command):
        if command == "blackhole":
            self.blackhole = True
            for link in self.links:
                link.state = "blackholed"
                # Bytes already read but not yet delivered are lost too.
                link.up.buf.clear()
                link.down.buf.clear()
        elif command == "forward":
            self.blackhole = False
        elif command == "reset":
            for link in list(self.links):
                self.close_link(link, abortive=True)
        elif command == "refuse":
            self.close_listener()
        elif command == "accept":
            if self.listener is None:
                self.open_listener()
        else:
            return f"ERR {command}: unknown command"
        return f"OK {command}"

    # ------------------------------------------------------------ event loop
    def set_interest(self, sock, mask, link):
        current = self.interest.get(sock, 0)
        if mask == current:
            return
        if mask == 0:
            self.sel.unregister(sock)
            del self.interest[sock]
        elif current == 0:
            self.sel.register(sock, mask, link)
            self.interest[sock] = mask
        else:
            self.sel.modify(sock, mask, link)
            self.interest[sock] = mask

    def update_interest(self, link):
        R, W = selectors.EVENT_READ, selectors.EVENT_WRITE
        client_mask = upstream_mask = 0
        if link.state == "blackholed":
            client_mask = upstream_mask = R
        elif link.state == "connecting":
            # Leave the client's bytes in the kernel until upstream is up.
            upstream_mask = W
        else:
            if not link.up.eof and len(link.up.buf) < BUFFER_LIMIT:
                client_mask |= R
            if link.down.buf:
                client_mask |= W
            if not link.down.eof and len(link.down.buf) < BUFFER_LIMIT:
                upstream_mask |= R
            if link.up.buf:
                upstream_mask |= W
        if link.client is not None:
            self.set_interest(link.client, client_mask, link)
        if link.upstream is not None:
            self.set_interest(link.upstream, upstream_mask, link)

    def run(self):
        while True:
            for link in list(self.links):
                self.update_interest(link)
            for key, mask in self.sel.select():
                if key.data == "wake":
                    try:
                        self.wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    self.run_commands()
                elif key.data == "listener":
                    self.accept_all()
                else:
                    link, sock = key.data, key.fileobj
                    try:
                        self.on_event(link, sock, mask)
                    except Exception:  # one broken link must not stop the proxy
                        log(f"{link} handler crashed; resetting it:\n{traceback.format_exc()}")
                        self.close_link(link, abortive=True)

    def on_event(self, link, sock, mask):
        # An earlier event of the same batch may have closed it.
        if link not in self.links or sock not in (link.client, link.upstream):
            return
        if mask & selectors.EVENT_READ:
            self.on_readable(link, sock)
        if mask & selectors.EVENT_WRITE and link in self.links and sock in (link.client, link.upstream):
            self.on_writable(link, sock)

    def on_readable(self, link, sock):
        if link.state == "blackholed":
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                # That side is gone; the other one stays stalled, as it
                # would behind a real black hole.
                log(f"{link} {'client' if sock is link.client else 'upstream'} closed while blackholed")
                self.drop_socket(link, sock)
            return
        from_client = sock is link.client
        direction = link.up if from_client else link.down
        other = link.upstream if from_client else link.client
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            log(f"{link} {'client' if from_client else 'upstream'} recv failed: {e}; resetting both")
            self.close_link(link, abortive=True)
            return
        if data:
            direction.buf += data
        else:
            direction.eof = True
        self.send_pending(link, direction, other)

    def on_writable(self, link, sock):
        if link.state == "connecting" and sock is link.upstream:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                log(f"{link} target port {self.target_port} failed: {os.strerror(err)}; closing client")
                self.close_link(link)
            else:
                link.state = "forwarding"
                log(f"{link} forwarding")
            return
        if link.state != "forwarding":
            return
        direction = link.down if sock is link.client else link.up
        self.send_pending(link, direction, sock)

    def send_pending(self, link, direction, dst):
        while direction.buf:
            try:
                sent = dst.send(direction.buf)
            except BlockingIOError:
                return
            except OSError as e:
                log(f"{link} send failed: {e}; resetting both")
                self.close_link(link, abortive=True)
                return
            del direction.buf[:sent]
        if direction.eof and not direction.shut:
            # Pass the half-close on; the other direction keeps flowing.
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            direction.shut = True
        if link.up.shut and link.down.shut:
            log(f"{link} closed by both ends")
            self.close_link(link)

    def drop_socket(self, link, sock):
        if sock in self.interest:
            self.sel.unregister(sock)
            del self.interest[sock]
        sock.close()
        if sock is link.client:
            link.client = None
        else:
            link.upstream = None
        if link.client is None and link.upstream is None:
            self.links.discard(link)

    def close_link(self, link, abortive=False):
        for sock in (link.client, link.upstream):
            if sock is None:
                continue
            if sock in self.interest:
                self.sel.unregister(sock)
                del self.interest[sock]
            if abortive:
                abort_socket(sock)
            else:
                sock.close()
        link.client = link.upstream = None
        self.links.discard(link)
        if abortive:
            log(f"{link} reset")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-port", type=int, required=True, help="port on 127.0.0.1 to forward to")
    parser.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 to listen on (0 = any free port)")
    args = parser.parse_args()

    def on_sigterm(signum, frame):
        log("SIGTERM; exiting")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)

    proxy = Proxy(args.target_port, args.listen_port)
    threading.Thread(target=proxy.run, name="proxy", daemon=True).start()
    sys.stdout.write(f"PORT {proxy.port}\n")
    sys.stdout.flush()
    log(f"listening on 127.0.0.1:{proxy.port}, forwarding to 127.0.0.1:{args.target_port}")

    try:
        for line in sys.stdin:
            command = line.strip()
            if not command:
                continue
            sys.stdout.write(proxy.submit(command) + "\n")
            sys.stdout.flush()
    except (OSError, ValueError, TypeError, KeyboardInterrupt):
        pass  # no usable stdin (TypeError: sys.stdin is None) counts as EOF
    log("stdin closed; exiting")
    os._exit(0)


if __name__ == "__main__":
    main()
