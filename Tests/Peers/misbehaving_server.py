#!/usr/bin/env python3
"""A scripted HTTP/2 gRPC server that misbehaves on purpose.

Test peer for MilvexReactor's gRPC client.  One scenario per process:

    misbehaving_server.py --scenario NAME [--port 0]
                          [--tls-cert PEM --tls-key KEY [--tls-client-ca PEM]
                           [--alpn h2|http/1.1|none]]

It binds 127.0.0.1 (port 0 = any free port), prints exactly one line
``PORT <n>`` to stdout, then serves every connection on its own thread until
stdin reaches EOF (the parent died or closed the pipe) or SIGTERM arrives.
One line per notable event goes to stderr; the ``max-streams-10`` scenario
writes ``VIOLATION`` there whenever the client exceeds the announced limit.

HTTP/2 framing is done by python-hyper h2 (sans-I/O); each connection runs a
small select loop of its own, so delayed answers are timers and never block
the other streams of the connection.  See README.md for the scenario list.

With --tls-cert and --tls-key every connection is TLS (Python's ssl, TLS 1.2+):
the handshake runs on the connection's own thread with a 10 s limit, so a
client that stalls it holds up no other connection; then the scenario runs
over TLS.  --tls-client-ca requires a client certificate signed by that CA.
--alpn is the protocol the server selects (default h2; `none`: no ALPN).
The tls-* scenarios misbehave in the handshake itself.
"""

import argparse
import base64
import heapq
import itertools
import os
import selectors
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from peer_log import make_log

SCENARIOS = (
    "echo",
    "max-streams-10",
    "no-settings",
    "goaway-mid-call",
    "goaway-calm",
    "calm-pings",
    "connect-denied",
    "reset-stream",
    "trailers-only-error",
    "http-503",
    "wrong-content-type",
    "huge-message",
    "compressed-flag",
    "two-messages",
    "truncated-message",
    "garbage",
    "no-ping-ack",
    "close-mid-response",
    "milvus-flaky",
    "tls-handshake-stall",
    "tls-close-mid-handshake",
    "tls-garbage-after-handshake",
)

# Scenarios that take over before (or instead of) our TLS handshake, and the one that
# needs a completed handshake first.
TLS_RAW_SCENARIOS = ("tls-handshake-stall", "tls-close-mid-handshake")
TLS_HANDSHAKE_SECONDS = 10.0
GARBAGE_AFTER_HANDSHAKE_SECONDS = 5.0

# milvus-flaky: a Milvus-shaped server whose answers fail on purpose, to test
# the client's retry policy.  Counters are per process (start one per test).
#   Connect        -> UNIMPLEMENTED (an older server: the client goes on)
#   GetVersion     -> calls 1 and 2: Milvus status code 8 (rate limit); then OK
#   CheckHealth    -> calls 1 and 2: gRPC UNAVAILABLE; then healthy
#   Delete         -> always gRPC UNAVAILABLE
#   DescribeIndex  -> always Milvus status code 1100 (not retriable)
#   ListDatabases  -> the counters, as db_names "Method=count"
#   Flush          -> never answered (for cancellation)
#   DescribeCollection -> call 1: gRPC UNAVAILABLE; then a schema (int64 key "id",
#                     2-dim float vector "vec") with update_timestamp 100 (call 2), then 200
#   Insert         -> schema_timestamp other than 200: legacy error_code SchemaMismatch;
#                     else success with the ids of the "id" column
MILVUS_PREFIX = "/milvus.proto.milvus.MilvusService/"
_milvus_calls = {}
_milvus_calls_lock = threading.Lock()

# Scenarios that answer like `echo` (including the /test.Echo/Delay and
# /test.Echo/Never paths and the x-echo-metadata header).
ECHO_LIKE = ("echo", "max-streams-10", "goaway-mid-call", "no-ping-ack", "calm-pings")

# calm-pings: echoes; prints `PING <connection number> <monotonic seconds>` to stdout for
# every PING it receives, and on the 2nd PING of connection 1 sends GOAWAY ENHANCE_YOUR_CALM
# "too_many_pings" but keeps that connection open for 1.5 s more (so that a client's
# replacement connection overlaps it), then closes it.  Later connections are left alone.
_stdout_lock = threading.Lock()


def announce(line):
    with _stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

DELAY_PATH = "/test.Echo/Delay"
NEVER_PATH = "/test.Echo/Never"
DELAY_PATH_SECONDS = 0.200

HUGE_MESSAGE_BYTES = 100 * 1024 * 1024
HUGE_CHUNK = bytes(64 * 1024)  # reused for every chunk: never 100 MiB in memory

# Stop producing response DATA while this much is still queued for the socket,
# so a slow (or stalled) reader bounds our memory instead of the flow-control
# window alone (a client may open a window of gigabytes).
OUTBOUND_HIGH_WATER = 256 * 1024

GRPC_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]
GRPC_OK = [(b"grpc-status", b"0")]

_scenario_name = "?"


log = make_log(lambda: f"misbehaving_server {_scenario_name}")


def grpc_frame(message, compressed=False):
    """Length-prefixed gRPC message: flag byte, 4-byte big-endian length."""
    return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


def grpc_prefix(declared_length, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, declared_length)


def parse_grpc_messages(body):
    """Split a request body into [(compressed_flag, message)], leftover bytes."""
    messages = []
    offset = 0
    while len(body) - offset >= 5:
        flag, length = struct.unpack_from(">BI", body, offset)
        if len(body) - offset - 5 < length:
            break
        messages.append((flag, bytes(body[offset + 5:offset + 5 + length])))
        offset += 5 + length
    return messages, bytes(body[offset:])


def grpc_percent_encode(text):
    """grpc-message encoding: UTF-8, then %XX for '%' and bytes outside 0x20-0x7E."""
    out = []
    for byte in text.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != ord("%"):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


class PeerH2Connection(h2.connection.H2Connection):
    """h2 connection with the two hooks that scripted misbehaviour needs.

    Both override private h2 methods; they are checked against h2 4.4.1,
    the version pinned in requirements.txt.
    """

    def __init__(self, config, ack_pings=True):
        super().__init__(config=config)
        self.ack_pings = ack_pings

    def _receive_ping_frame(self, frame):
        frames, events = super()._receive_ping_frame(frame)
        if not self.ack_pings:
            # The only frame h2 builds for a received PING is its automatic
            # ACK; dropping it here still lets h2 report PingReceived.
            frames = []
        return frames, events

    def _receive_goaway_frame(self, frame):
        # h2 moves the connection to CLOSED on any GOAWAY and then refuses
        # to send anything, but a client's GOAWAY only forbids *new* streams
        # from us: in-flight calls must still get their answers (graceful
        # client shutdown).  Keep the previous state.
        state = self.state_machine.state
        frames, events = super()._receive_goaway_frame(frame)
        if state != ConnectionState.CLOSED:
            self.state_machine.state = state
        return frames, events

    def send_goaway_and_keep_serving(self, error_code, last_stream_id, additional_data=b""):
        # Same reason as above: after our own GOAWAY the streams up to
        # last_stream_id must still be answered, which h2 would forbid.
        state = self.state_machine.state
        self.close_connection(
            error_code=error_code,
            additional_data=additional_data,
            last_stream_id=last_stream_id,
        )
        self.state_machine.state = state


class Request:
    def __init__(self, stream_id, headers):
        self.stream_id = stream_id
        self.headers = headers  # list of (bytes, bytes), as received
        self.path = dict(headers).get(b":path", b"").decode("utf-8", "replace")
        self.body = bytearray()
        self.ended = False    # client sent END_STREAM
        self.done = False     # we finished the stream (END_STREAM or RST)
        self.ignored = False  # scenario decided never to answer it

    def header(self, name):
        for key, value in self.headers:
            if key == name:
                return value
        return None


class ResponseWriter:
    """Streams one response body under flow control, then ends the stream.

    `chunks` is an iterable of bytes produced lazily, so huge bodies are
    generated on the fly.  `trailers` is sent with END_STREAM afterwards;
    with trailers None and end_stream False the stream is left open.
    `after` runs once everything has been handed to h2.
    """

    def __init__(self, stream_id, chunks, trailers, end_stream=True, after=None):
        self.stream_id = stream_id
        self.chunks = iter(chunks)
        self.pending = memoryview(b"")
        self.trailers = trailers
        self.end_stream = end_stream
        self.after = after


class ConnectionHandler:
    def __init__(self, sock, scenario, conn_no, tls_context=None):
        self.sock = sock
        self.tls_context = tls_context
        self.scenario = scenario
        self.name = f"conn#{conn_no}"
        self.conn_no = conn_no
        self.pings_received = 0
        self.out = bytearray()
        self.timers = []
        self.timer_seq = itertools.count()
        self.requests = {}
        self.writers = {}
        self.closing = None  # None, "graceful" or "abrupt", acted on once `out` drains
        self.peer_closed = False
        self.peer_sent_close_notify = False
        # max-streams-10
        self.open_streams = set()
        # goaway-mid-call / goaway-calm
        self.request_count = 0
        self.goaway_last_stream_id = None
        self.held = {}
        self.handshake_done = False
        self.settings_acked = False
        self.requests_seen = 0
        self.conn = None

    def log(self, message):
        log(f"{self.name} {message}")

    # ---------------------------------------------------------------- run
    def run(self):
        self.log("accepted")
        try:
            if self.scenario == "tls-handshake-stall":
                self.run_tls_handshake_stall()
            elif self.scenario == "tls-close-mid-handshake":
                self.run_tls_close_mid_handshake()
            elif self.tls_context is not None and not self.tls_handshake():
                pass
            elif self.scenario == "tls-garbage-after-handshake":
                self.run_tls_garbage_after_handshake()
            elif self.scenario == "no-settings":
                self.run_no_settings()
            elif self.scenario == "garbage":
                self.run_garbage()
            else:
                self.run_h2()
        except Exception:  # keep serving other connections; show why this one died
            self.log("handler crashed:\n" + traceback.format_exc())
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.log("closed")

    # ------------------------------------------------------------------ TLS
    @property
    def is_tls(self):
        return isinstance(self.sock, ssl.SSLSocket)

    def tls_handshake(self):
        """Wraps the socket in TLS; False (logged) when the handshake failed."""
        raw = self.sock
        # suppress_ragged_eofs=False: a TCP close without close_notify raises SSLEOFError,
        # so the log can say which of the two the client did.
        self.sock = self.tls_context.wrap_socket(raw, server_side=True,
                                                 do_handshake_on_connect=False,
                                                 suppress_ragged_eofs=False)
        self.sock.settimeout(TLS_HANDSHAKE_SECONDS)
        try:
            self.sock.do_handshake()
        except (ssl.SSLError, OSError) as e:  # socket.timeout is an OSError
            self.log(f"TLS handshake failed: {e!r}")
            return False
        self.sock.settimeout(None)
        cipher = self.sock.cipher()
        peer = self.sock.getpeercert()
        subject = ", ".join("=".join(part) for rdn in peer.get("subject", ()) for part in rdn) \
            if peer else "none"
        self.log(f"TLS handshake done: {self.sock.version()} {cipher[0] if cipher else '?'}, "
                 f"ALPN {self.sock.selected_alpn_protocol() or 'none'}, client certificate {subject}")
        return True

    def read_client_hello(self):
        """Reads the first TLS record (the ClientHello) off the TCP socket, unanswered."""
        self.sock.settimeout(TLS_HANDSHAKE_SECONDS)
        record = b""
        try:
            while len(record) < 5 or len(record) < 5 + struct.unpack_from(">H", record, 3)[0]:
                data = self.sock.recv(65536)
                if not data:
                    self.log(f"peer closed after {len(record)} bytes, before a whole ClientHello")
                    return None
                record += data
        except OSError as e:
            self.log(f"no ClientHello within {TLS_HANDSHAKE_SECONDS:.0f} s: {e!r}")
            return None
        finally:
            self.sock.settimeout(None)
        kind = "a TLS handshake record" if record[0] == 0x16 else f"NOT TLS (first byte {record[0]:#x})"
        self.log(f"received {len(record)} bytes: {kind}")
        return record

    def run_tls_handshake_stall(self):
        if self.read_client_hello() is None:
            return
        self.log("never answering the ClientHello; reading and discarding until the peer closes")
        self.run_no_settings()

    def run_tls_close_mid_handshake(self):
        if self.read_client_hello() is None:
            return
        self.log("closing the TCP connection instead of answering the ClientHello")
        # Everything sent was read, so close() sends FIN, not RST.
        self.sock.close()

    def run_tls_garbage_after_handshake(self):
        garbage = bytearray(os.urandom(64))
        # An HTTP/2 server's first frame is SETTINGS (type 4, 4th byte): make sure it is not.
        if garbage[3] == 0x04:
            garbage[3] = 0x17
        self.sock.sendall(bytes(garbage))
        self.log(f"sent 64 random bytes that are not HTTP/2 ({bytes(garbage[:9]).hex()}...); "
                 f"closing in {GARBAGE_AFTER_HANDSHAKE_SECONDS:.0f} s")
        if self.discard_input_for(GARBAGE_AFTER_HANDSHAKE_SECONDS):
            self.graceful_close()

    def run_no_settings(self):
        # Never write a byte: the client must time out waiting for SETTINGS.
        received = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError as e:
                self.log(f"recv failed: {e}")
                return
            if not data:
                self.log(f"peer closed after sending {received} bytes (none answered)")
                return
            received += len(data)

    def run_garbage(self):
        self.sock.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not http/2 garbage garbage")
        self.log("sent HTTP/1.1 garbage; closing in 2 s")
        if self.discard_input_for(2.0):
            self.graceful_close()

    def discard_input_for(self, seconds):
        """Reads and drops what the peer sends for `seconds`; False if the peer closed first or
        the socket failed (then there is nothing left to close gracefully)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                if not self.sock.recv(65536):
                    self.log("peer closed")
                    return False
            except socket.timeout:
                break
            except OSError as e:
                self.log(f"recv failed: {e!r}")
                return False
        return True

    def run_h2(self):
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = PeerH2Connection(config, ack_pings=self.scenario != "no-ping-ack")
        if self.scenario == "max-streams-10":
            # Announce 10, but keep h2's own limit high: h2 would answer an
            # 11th stream with a connection-wide PROTOCOL_ERROR, whereas the
            # scenario wants a per-stream REFUSED_STREAM and a logged VIOLATION.
            self.conn.local_settings = self.settings_with_max_streams(10)
            self.conn.initiate_connection()
            self.conn.local_settings = self.settings_with_max_streams(2**31 - 1)
        else:
            self.conn.initiate_connection()
        self.drain_h2()

        self.sock.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        try:
            while True:
                # Refill and flush until the socket pushes back or no response
                # can progress; otherwise a drained buffer with data still to
                # produce would leave us blocked in select().
                while True:
                    more = self.pump_writers()
                    self.drain_h2()
                    self.flush_socket()
                    if not more or self.out:
                        break
                if self.closing and not self.out:
                    break
                mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0)
                if self.peer_closed:
                    mask &= ~selectors.EVENT_READ
                    if not self.out:
                        self.answer_peer_close()
                        return
                selector.modify(self.sock, mask)
                for _, ready in selector.select(self.next_timer_delay()):
                    if ready & selectors.EVENT_READ:
                        if not self.receive():
                            self.answer_peer_close()
                            return
                self.run_due_timers()
        finally:
            selector.close()

        if self.closing == "abrupt":
            self.log("closing TCP connection abruptly")
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        else:
            self.graceful_close()

    @staticmethod
    def settings_with_max_streams(limit):
        return h2.settings.Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: limit,
                SettingCodes.MAX_HEADER_LIST_SIZE:
                    h2.connection.H2Connection.DEFAULT_MAX_HEADER_LIST_SIZE,
            },
        )

    def graceful_close(self):
        # Send FIN, then read until the client closes (at most 1 s) before
        # close(): closing with unread input makes Linux send RST, which can
        # make the client drop our last frames (e.g. the GOAWAY) unread.
        # Over TLS, close_notify goes first (RFC 8446 §6.1).
        if self.is_tls:
            self.send_close_notify()
        try:
            self.sock.setblocking(True)
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 1.0
            while (remaining := deadline - time.monotonic()) > 0:
                self.sock.settimeout(remaining)
                if not self.sock.recv(65536):
                    break
        except OSError:
            pass
        self.sock.close()

    def answer_peer_close(self):
        if self.peer_sent_close_notify:
            self.send_close_notify()

    def send_close_notify(self):
        """Sends TLS close_notify and goes on with the TCP socket under it."""
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(1.0)
            # unwrap() sends close_notify and waits (here: at most 1 s) for the client's.
            self.sock = self.sock.unwrap()
            self.log("sent TLS close_notify")
        except (ssl.SSLError, OSError) as e:
            # Our close_notify went out unless the error says the connection was gone.
            self.log(f"TLS shutdown: {e!r}")
            if isinstance(self.sock, ssl.SSLSocket):
                # The TCP socket under it, without its TLS state.
                self.sock = socket.socket(fileno=self.sock.detach())

    # ----------------------------------------------------------- socket I/O
    def receive(self):
        """Read what has arrived; returns False when the connection is over."""
        more = self.receive_once()
        # TLS may have read several records off the socket while we took one: the
        # rest is in the TLS buffer, and select() would not report it.
        while more and self.is_tls and not self.peer_closed and self.sock.pending():
            more = self.receive_once()
        return more

    def receive_once(self):
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True
        except ssl.SSLEOFError:
            self.log("peer closed the TCP connection without TLS close_notify")
            self.peer_closed = True
            return bool(self.out)
        except OSError as e:
            self.log(f"recv failed: {e}")
            return False
        if not data:
            if self.is_tls:
                self.log("peer sent TLS close_notify")
                self.peer_sent_close_notify = True
            else:
                self.log("peer closed the TCP connection")
            self.peer_closed = True
            # Still flush what is queued (the peer may only have half-closed).
            return bool(self.out)
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            # For most errors h2 has queued a GOAWAY with the matching code;
            # it goes out before the close.
            self.log(f"protocol error from client: {e!r}; closing")
            self.closing = "graceful"
            return True
        for event in events:
            self.handle_event(event)
        return True

    def drain_h2(self):
        if self.conn is not None:
            data = self.conn.data_to_send()
            if data:
                self.out += data

    def flush_socket(self):
        while self.out:
            try:
                sent = self.sock.send(self.out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                # OpenSSL wants the same bytes again: `out` only grows at its end.
                return
            except OSError as e:
                self.log(f"send failed: {e}")
                self.out.clear()
                self.peer_closed = True
                self.closing = self.closing or "abrupt"
                return
            del self.out[:sent]

    # --------------------------------------------------------------- timers
    def call_later(self, delay, callback):
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.timer_seq), callback))

    def next_timer_delay(self):
        if not self.timers:
            return None
        return max(0.0, self.timers[0][0] - time.monotonic())

    def run_due_timers(self):
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, callback = heapq.heappop(self.timers)
            callback()

    # --------------------------------------------------------------- events
    def handle_event(self, event):
        if isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.handshake_done:
                self.handshake_done = True
                self.on_handshake()
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.settings_acked = True
        elif isinstance(event, h2.events.RequestReceived):
            request = Request(event.stream_id, event.headers)
            self.requests[event.stream_id] = request
            self.requests_seen += 1
            # A test may make 10,000 calls: log the first few, then a sample.
            if self.requests_seen <= 20 or self.requests_seen % 1000 == 0:
                note = " (further requests logged every 1000th)" if self.requests_seen == 20 else ""
                self.log(f"stream {event.stream_id}: request #{self.requests_seen} {request.path}{note}")
            self.on_request_headers(request)
        elif isinstance(event, h2.events.DataReceived):
            # Give the window back at once, so requests of any size get through.
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            request = self.requests.get(event.stream_id)
            if request is not None and not request.done and not request.ignored:
                request.body += event.data
        elif isinstance(event, h2.events.StreamEnded):
            request = self.requests.get(event.stream_id)
            if request is not None and not request.done:
                request.ended = True
                if not request.ignored:
                    self.on_request_complete(request)
        elif isinstance(event, h2.events.StreamReset):
            self.log(f"stream {event.stream_id}: RST_STREAM {self.error_name(event.error_code)} "
                     f"({'from client' if event.remote_reset else 'by us'})")
            self.finish_stream(event.stream_id)
        elif isinstance(event, h2.events.PingReceived):
            acked = "acked" if self.conn.ack_pings else "NOT acked"
            self.log(f"PING received {event.ping_data.hex()} ({acked})")
            self.pings_received += 1
            if self.scenario == "calm-pings":
                announce(f"PING {self.conn_no} {time.monotonic():.6f}")
                if self.conn_no == 1 and self.pings_received == 2:
                    self.conn.send_goaway_and_keep_serving(
                        ErrorCodes.ENHANCE_YOUR_CALM, last_stream_id=max(self.requests, default=0),
                        additional_data=b"too_many_pings")
                    self.goaway_last_stream_id = max(self.requests, default=0)
                    self.log("2nd PING: sent GOAWAY ENHANCE_YOUR_CALM too_many_pings; closing in 1.5 s")
                    self.call_later(1.5, self.close_gracefully)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.log(f"GOAWAY from client: {self.error_name(event.error_code)} "
                     f"last_stream_id={event.last_stream_id} data={event.additional_data!r}")
            if event.error_code != ErrorCodes.NO_ERROR:
                self.closing = "graceful"
            # On NO_ERROR keep answering in-flight calls; the client closes TCP.

    @staticmethod
    def error_name(code):
        try:
            return ErrorCodes(code).name
        except ValueError:
            return f"0x{int(code):x}"

    def finish_stream(self, stream_id):
        request = self.requests.get(stream_id)
        if request is not None:
            request.done = True
            request.body = bytearray()  # the Request stays (GOAWAY bookkeeping), its body need not
        self.writers.pop(stream_id, None)
        self.held.pop(stream_id, None)
        self.open_streams.discard(stream_id)

    # ------------------------------------------------------- scenario hooks
    def on_handshake(self):
        if self.scenario == "goaway-calm":
            self.conn.send_goaway_and_keep_serving(
                ErrorCodes.ENHANCE_YOUR_CALM, last_stream_id=0, additional_data=b"too_many_pings")
            self.goaway_last_stream_id = 0
            self.log("sent GOAWAY ENHANCE_YOUR_CALM too_many_pings; closing in 100 ms")
            self.call_later(0.100, self.close_gracefully)

    def on_request_headers(self, request):
        sid = request.stream_id
        if self.goaway_last_stream_id is not None and sid > self.goaway_last_stream_id:
            request.ignored = True
            self.log(f"stream {sid}: arrived after our GOAWAY (last_stream_id="
                     f"{self.goaway_last_stream_id}); ignored")
            return

        if self.scenario == "max-streams-10":
            if len(self.open_streams) >= 10:
                # Until the client ACKs our SETTINGS it may not have seen the
                # limit (RFC 9113 §6.5.3): refusing is still right, blaming is not.
                # TCP ordering makes the ACK arrive before any stream the client
                # opened after reading our SETTINGS, so the split is exact.
                verdict = "VIOLATION" if self.settings_acked else "EARLY-OVER-LIMIT (before SETTINGS ACK)"
                self.log(f"{verdict}: client opened stream {sid} while {len(self.open_streams)} "
                         f"streams were open (announced MAX_CONCURRENT_STREAMS=10); "
                         f"sending RST_STREAM REFUSED_STREAM")
                self.conn.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
                self.finish_stream(sid)
                return
            self.open_streams.add(sid)

        elif self.scenario == "reset-stream":
            self.conn.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
            self.log(f"stream {sid}: sent RST_STREAM INTERNAL_ERROR")
            self.finish_stream(sid)

        elif self.scenario == "goaway-mid-call":
            self.request_count += 1
            if self.request_count == 3:
                last = max((s for s in self.requests if s != sid), default=0)
                self.conn.send_goaway_and_keep_serving(ErrorCodes.NO_ERROR, last_stream_id=last)
                self.goaway_last_stream_id = last
                request.ignored = True
                self.log(f"stream {sid}: 3rd request; sent GOAWAY NO_ERROR last_stream_id={last}; "
                         f"stream {sid} will never be answered")
                # The held calls were in flight when the GOAWAY went out;
                # answer them a little later so the client sees both.
                for held in list(self.held.values()):
                    self.call_later(0.100, lambda r=held: self.release_held(r))
                self.call_later(0.500, self.close_after_goaway)

    def on_request_complete(self, request):
        s = self.scenario
        if s in ECHO_LIKE:
            if s == "goaway-mid-call":
                if self.goaway_last_stream_id is not None:
                    self.call_later(0.100, lambda: self.answer_echo(request))
                else:
                    # Hold until the 3rd request triggers the GOAWAY, or 300 ms.
                    self.held[request.stream_id] = request
                    self.call_later(0.300, lambda: self.release_held(request))
            elif s == "max-streams-10":
                self.call_later(0.002, lambda: self.answer_echo(request))
            else:
                self.answer_echo(request)
        elif s == "trailers-only-error":
            details = base64.b64encode(b"\x08\x05\x12\x03abc").rstrip(b"=")
            self.send_trailers_only(request, [
                (b":status", b"200"),
                (b"content-type", b"application/grpc"),
                (b"grpc-status", b"5"),
                (b"grpc-message", grpc_percent_encode("no such thing: 100%").encode()),
                (b"grpc-status-details-bin", details),
            ])
        elif s == "http-503":
            self.send_trailers_only(request, [(b":status", b"503"), (b"content-type", b"text/plain")])
        elif s == "wrong-content-type":
            self.respond(request, [b"<html>"], GRPC_OK,
                         headers=[(b":status", b"200"), (b"content-type", b"text/html")])
        elif s == "huge-message":
            self.log(f"stream {request.stream_id}: streaming a {HUGE_MESSAGE_BYTES}-byte message")
            self.respond(request, self.huge_chunks(), GRPC_OK)
        elif s == "compressed-flag":
            self.respond(request, [grpc_frame(self.first_message(request), compressed=True)], GRPC_OK)
        elif s == "two-messages":
            message = self.first_message(request)
            self.respond(request, [grpc_frame(message), grpc_frame(message)], GRPC_OK)
        elif s == "truncated-message":
            self.respond(request, [grpc_prefix(100) + bytes(10)], GRPC_OK)
        elif s == "close-mid-response":
            self.respond(request, [grpc_prefix(1000) + bytes(500)], trailers=None, end_stream=False,
                         after=self.close_abruptly)
        elif s == "milvus-flaky":
            self.answer_milvus_flaky(request)
        elif s == "connect-denied":
            # Milvus's answer to a wrong password: the Connect handshake fails with a status.
            from pymilvus.grpc_gen import milvus_pb2
            response = milvus_pb2.ConnectResponse()
            response.status.code = 1800
            response.status.reason = "auth check failure, please check username and password are correct"
            self.respond(request, [grpc_frame(response.SerializeToString())], GRPC_OK)

    def answer_milvus_flaky(self, request):
        from pymilvus.grpc_gen import common_pb2, milvus_pb2

        method = request.path[len(MILVUS_PREFIX):] if request.path.startswith(MILVUS_PREFIX) else request.path
        with _milvus_calls_lock:
            _milvus_calls[method] = count = _milvus_calls.get(method, 0) + 1

        def fail(code, message):
            self.send_trailers_only(request, GRPC_HEADERS + [
                (b"grpc-status", str(code).encode()), (b"grpc-message", grpc_percent_encode(message).encode())])

        def answer(message):
            self.respond(request, [grpc_frame(message.SerializeToString())], GRPC_OK)

        if method == "Connect":
            fail(12, "milvus-flaky: no Connect here")
        elif method == "GetVersion":
            response = milvus_pb2.GetVersionResponse(version=f"flaky-{count}")
            if count <= 2:
                response.status.code = 8
                response.status.error_code = common_pb2.RateLimit
                response.status.reason = "rate limit exceeded[rate=1]"
            answer(response)
        elif method == "CheckHealth":
            if count <= 2:
                fail(14, f"milvus-flaky: unavailable (call {count})")
            else:
                answer(milvus_pb2.CheckHealthResponse(isHealthy=True))
        elif method == "Delete":
            fail(14, f"milvus-flaky: unavailable (call {count})")
        elif method == "DescribeIndex":
            response = milvus_pb2.DescribeIndexResponse()
            response.status.code = 1100
            response.status.reason = "invalid parameter[index not found]"
            answer(response)
        elif method == "DescribeCollection":
            if count == 1:
                fail(14, "milvus-flaky: unavailable (call 1)")
            else:
                from pymilvus.grpc_gen import schema_pb2
                response = milvus_pb2.DescribeCollectionResponse(collection_name="c")
                response.schema.fields.add(name="id", data_type=schema_pb2.Int64, is_primary_key=True)
                vec = response.schema.fields.add(name="vec", data_type=schema_pb2.FloatVector)
                vec.type_params.add(key="dim", value="2")
                response.update_timestamp = 100 if count == 2 else 200
                answer(response)
        elif method == "Insert":
            insert = milvus_pb2.InsertRequest.FromString(self.first_message(request))
            response = milvus_pb2.MutationResult()
            if insert.schema_timestamp != 200:
                response.status.error_code = common_pb2.SchemaMismatch
                response.status.code = 2
                response.status.reason = f"collection schema mismatch (sent {insert.schema_timestamp}, is 200)"
            else:
                ids = next(f for f in insert.fields_data if f.field_name == "id").scalars.long_data.data
                response.IDs.int_id.data.extend(ids)
                response.insert_cnt = insert.num_rows
            answer(response)
        elif method == "Flush":
            self.log(f"stream {request.stream_id}: Flush, never answering")
        elif method == "ListDatabases":
            with _milvus_calls_lock:
                names = [f"{name}={n}" for name, n in sorted(_milvus_calls.items())]
            answer(milvus_pb2.ListDatabasesResponse(db_names=names))
        else:
            fail(12, f"milvus-flaky: {method} is not scripted")

    def release_held(self, request):
        if self.held.pop(request.stream_id, None) is not None:
            self.answer_echo(request)

    def close_after_goaway(self):
        pending = [r.stream_id for r in self.requests.values()
                   if not r.ignored and not r.done and r.stream_id <= self.goaway_last_stream_id]
        if pending or self.writers:
            self.call_later(0.050, self.close_after_goaway)
            return
        self.log("GOAWAY + 500 ms and the in-flight calls were answered; closing")
        self.close_gracefully()

    def close_gracefully(self):
        self.closing = "graceful"

    def close_abruptly(self):
        self.log("half a message sent; closing abruptly")
        self.closing = "abrupt"

    # ------------------------------------------------------------- answers
    @staticmethod
    def first_message(request):
        messages, _ = parse_grpc_messages(request.body)
        return messages[0][1] if messages else b""

    @staticmethod
    def huge_chunks():
        yield grpc_prefix(HUGE_MESSAGE_BYTES)
        for _ in range(HUGE_MESSAGE_BYTES // len(HUGE_CHUNK)):
            yield HUGE_CHUNK

    def answer_echo(self, request, extra_delay_done=False):
        if request.done:
            return
        if request.path == NEVER_PATH:
            self.log(f"stream {request.stream_id}: {NEVER_PATH}, never answering")
            return
        if request.path == DELAY_PATH and not extra_delay_done:
            self.call_later(DELAY_PATH_SECONDS, lambda: self.answer_echo(request, True))
            return

        if request.header(b"x-echo-served-by") == b"1":
            # Which server answered: the address and port it listens on.
            host, port = self.sock.getsockname()[:2]
            self.respond(request, [grpc_frame(f"{host}:{port}".encode())], GRPC_OK)
            return

        if request.header(b"x-echo-metadata") == b"1":
            # One line per field; a field the client sent as "never indexed" (HPACK
            # RFC 7541 §6.2.3) says so.
            def line(field):
                never = isinstance(field, hpack.NeverIndexedHeaderTuple)
                return field[0] + b": " + field[1] + (b" (never indexed)" if never else b"")
            text = b"".join(line(field) + b"\n" for field in sorted(request.headers))
            self.respond(request, [grpc_frame(text)], GRPC_OK)
            return

        messages, leftover = parse_grpc_messages(request.body)
        if leftover:
            self.send_trailers_only(request, GRPC_HEADERS + [
                (b"grpc-status", b"13"),
                (b"grpc-message", grpc_percent_encode(
                    f"echo: request body ends inside a message ({len(leftover)} stray bytes)").encode()),
            ])
            return
        if any(flag for flag, _ in messages):
            self.send_trailers_only(request, GRPC_HEADERS + [
                (b"grpc-status", b"12"),
                (b"grpc-message", b"echo: compressed requests are not supported"),
            ])
            return
        self.respond(request, [grpc_frame(m) for _, m in messages], GRPC_OK)

    def send_trailers_only(self, request, headers):
        try:
            self.conn.send_headers(request.stream_id, headers, end_stream=True)
        except h2.exceptions.StreamClosedError:
            return
        status = dict(headers).get(b"grpc-status", b"-").decode()
        self.log(f"stream {request.stream_id}: headers-only answer, grpc-status {status}")
        self.finish_stream(request.stream_id)

    def respond(self, request, chunks, trailers, headers=None, end_stream=True, after=None):
        try:
            self.conn.send_headers(request.stream_id, headers or GRPC_HEADERS)
        except h2.exceptions.StreamClosedError:
            return
        self.writers[request.stream_id] = ResponseWriter(
            request.stream_id, chunks, trailers, end_stream, after)

    def pump_writers(self):
        """Hand response bytes to h2 as far as flow control and OUTBOUND_HIGH_WATER allow.

        Returns True when it stopped only because of OUTBOUND_HIGH_WATER.
        """
        for stream_id, writer in list(self.writers.items()):
            try:
                while True:
                    if len(self.out) >= OUTBOUND_HIGH_WATER:
                        return True
                    if not writer.pending:
                        chunk = next(writer.chunks, None)
                        if chunk is None:
                            self.finish_writer(writer)
                            break
                        writer.pending = memoryview(chunk)
                        continue
                    window = min(self.conn.local_flow_control_window(stream_id),
                                 self.conn.max_outbound_frame_size)
                    if window <= 0:
                        break
                    size = min(window, len(writer.pending))
                    self.conn.send_data(stream_id, bytes(writer.pending[:size]))
                    writer.pending = writer.pending[size:]
                    self.drain_h2()
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
                self.log(f"stream {stream_id}: stopped sending: {e!r}")
                self.finish_stream(stream_id)
        return False

    def finish_writer(self, writer):
        del self.writers[writer.stream_id]
        if writer.trailers is not None:
            self.conn.send_headers(writer.stream_id, writer.trailers, end_stream=True)
            self.finish_stream(writer.stream_id)
        elif writer.end_stream:
            self.conn.end_stream(writer.stream_id)
            self.finish_stream(writer.stream_id)
        self.drain_h2()
        if writer.after is not None:
            writer.after()


def serve(listener, scenario, tls_context):
    # SIGTERM must reach the main thread: a signal taken by this thread (or by a connection
    # thread, which inherits the mask) would wait for the main thread to leave its read of
    # stdin before the handler runs.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    for conn_no in itertools.count(1):
        try:
            sock, _ = listener.accept()
        except OSError as e:
            log(f"accept failed: {e}")
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The TLS handshake, if any, runs on the connection's thread.
        handler = ConnectionHandler(sock, scenario, conn_no, tls_context)
        threading.Thread(target=handler.run, name=handler.name, daemon=True).start()


def make_tls_context(args):
    """The server's TLS settings, or None without --tls-cert."""
    if not args.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.tls_cert, args.tls_key)
    if args.tls_client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=args.tls_client_ca)
    if args.alpn != "none":
        # A client offering only other protocols gets no ALPN answer (not an alert).
        context.set_alpn_protocols([args.alpn])
    return context


def main():
    global _scenario_name
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback address to listen on (default 127.0.0.1; 127.0.0.2 … also work)")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate (chain)")
    parser.add_argument("--tls-key", metavar="KEY", help="the private key of --tls-cert")
    parser.add_argument("--tls-client-ca", metavar="PEM",
                        help="require a client certificate signed by this CA (mutual TLS)")
    parser.add_argument("--alpn", choices=("h2", "http/1.1", "none"), default="h2",
                        help="the protocol selected by ALPN over TLS (default h2)")
    args = parser.parse_args()
    _scenario_name = args.scenario
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    if args.scenario == "tls-garbage-after-handshake" and not args.tls_cert:
        parser.error(f"--scenario {args.scenario} needs --tls-cert and --tls-key")
    tls_context = make_tls_context(args)

    def on_sigterm(signum, frame):
        log("SIGTERM; exiting")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(128)
    port = listener.getsockname()[1]
    threading.Thread(target=serve, args=(listener, args.scenario, tls_context), name="accept",
                     daemon=True).start()

    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    log(f"listening on {args.host}:{port}" + (f" (TLS, ALPN {args.alpn}"
        + (", client certificate required)" if args.tls_client_ca else ")") if tls_context else ""))

    # Our lifetime is tied to the parent through stdin: EOF means it is gone
    # (or wants us gone).  os._exit skips joining the connection threads.
    try:
        while sys.stdin.buffer.read1(65536):
            pass
    except (OSError, ValueError, AttributeError, KeyboardInterrupt):
        pass  # no usable stdin counts as EOF
    log("stdin closed; exiting")
    os._exit(0)


if __name__ == "__main__":
    main()
