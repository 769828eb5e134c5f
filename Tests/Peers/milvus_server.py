#!/usr/bin/env python3
"""Runs one real Milvus standalone server (PyPI `milvus` 2.3.5) for the integration tests.

    milvus_server.py --mode plain|tls|mtls --data DIR [--certs DIR] [--shared-dir DIR]
                     [--parent-pid PID] [--detached] [--max-seconds 5400]
                     [--ready-timeout 180] [--keep-data]

Modes: `plain` (no TLS, no authorization), `tls` (one-way TLS, authorization on: user
`root`, password `Milvus`), `mtls` (mutual TLS: the client must show a certificate signed by
the test CA; authorization on). TLS modes read server.pem, server.key and ca.pem from
--certs (Tests/Peers/make_test_certs.sh writes them).

Every port is chosen here (a free one), so instances can start side by side; the server's
gRPC port is announced as one line `PORT <n>` on stdout once a pymilvus call through that
port, with the mode's TLS settings and credentials, has succeeded. If the server does not
get there within --ready-timeout seconds, or exits, the tail of its log goes to stderr and
this program exits with status 1.

Lifetime: until stdin reaches EOF (like the other peers; --detached: stdin is not watched), or
the --parent-pid process has ended (a zombie counts as ended), or --max-seconds have passed,
or SIGTERM or SIGINT arrives, whichever comes first. On exit
the server gets SIGTERM, then SIGKILL 2 s later, and --data is removed (--keep-data keeps
it). The server also dies with this program (PR_SET_PDEATHSIG).

Why not `milvus-server` itself: its --*-port options are only where a search for a free
port starts (a busy port silently becomes the next one), its management port always starts
at 9091, and its embedded etcd always listens on 2379/2380; three instances started at the
same time would collide. This program uses the same package, config template and binary.
"""

import argparse
import ctypes
import fcntl
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback

import milvus

from peer_log import make_log

MODES = {
    # mode: (tls_mode, authorization_enabled)
    "plain": (0, False),
    "tls": (1, True),
    "mtls": (2, True),
}
ROOT_TOKEN = "root:Milvus"  # Milvus's default superuser and password
PORT_KEYS = (
    "etcd_port", "root_coord_port", "proxy_port", "proxy_internal_port", "query_coord_port",
    "query_node_port", "index_coord_port", "index_node_port", "data_coord_port", "data_node_port",
)
START_ATTEMPTS = 3  # a port taken between our choice and the server's bind: choose again

_mode = "?"
log = make_log(lambda: f"milvus_server {_mode}")


class Stop(Exception):
    """SIGTERM or SIGINT arrived."""


class StartFailed(Exception):
    def __init__(self, message, port_taken=False):
        super().__init__(message)
        self.port_taken = port_taken
        self.log_tail = ""


def free_ports(count):
    """`count` distinct free TCP ports (all held until chosen, so never the same one twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("0.0.0.0", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def unpack_binaries(shared_dir):
    """The wheel ships the server as .lzma files; unpack them once into shared_dir/bin."""
    os.makedirs(shared_dir, exist_ok=True)
    with open(os.path.join(shared_dir, ".unpack.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # The package's own (private) unpacker, as milvus-server uses it: it skips files whose
        # checksum file says they are unpacked already.
        milvus._initialize_data_files(shared_dir)
    return os.path.join(shared_dir, "bin")


def die_with_parent():
    """Runs in the child before exec: SIGKILL when this program dies, however it dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Instance:
    def __init__(self, args):
        self.args = args
        self.data = os.path.abspath(args.data)
        self.certs = os.path.abspath(args.certs) if args.certs else None
        self.process = None
        self.port = None
        self.log_path = os.path.join(self.data, "logs", "milvus-stdout.log")

    # ------------------------------------------------------------- starting
    def start(self, bin_dir, deadline):
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self.launch(bin_dir)
                self.wait_until_ready(deadline)
                return
            except StartFailed as failure:
                failure.log_tail = self.log_tail()  # before stopping: a stopped server panics
                self.stop_server()
                if (attempt == START_ATTEMPTS or time.monotonic() >= deadline
                        or not (failure.port_taken or self.port_conflict())):
                    raise
                log(f"attempt {attempt} failed ({failure}); trying again with other ports")

    def launch(self, bin_dir):
        shutil.rmtree(self.data, ignore_errors=True)
        os.makedirs(self.data)

        *chosen, etcd_peer_port, metrics_port = free_ports(len(PORT_KEYS) + 2)
        ports = dict(zip(PORT_KEYS, chosen))
        self.port = ports["proxy_port"]

        # Ports given to the config's constructor are taken as they are (bind failure = error).
        config = milvus.MilvusServerConfig(data_dir=self.data, **ports)
        tls_mode, authorization = MODES[self.args.mode]
        config.set("tls_mode", tls_mode)
        config.set("authorization_enabled", authorization)
        if tls_mode:
            config.set("server_pem_path", os.path.join(self.certs, "server.pem"))
            config.set("server_key_path", os.path.join(self.certs, "server.key"))
            config.set("ca_pem_path", os.path.join(self.certs, "ca.pem"))
        try:
            config.resolve()  # writes DATA/configs/milvus.yaml
        except RuntimeError as e:  # "set proxy_port=N, but bind failed"
            raise StartFailed(str(e), port_taken=True) from e

        # The embedded etcd ignores etcd.endpoints; it reads its own config file.
        etcd_config = os.path.join(self.data, "configs", "embed-etcd.yaml")
        client_url = f"http://127.0.0.1:{ports['etcd_port']}"
        peer_url = f"http://127.0.0.1:{etcd_peer_port}"
        with open(etcd_config, "w") as f:
            f.write(f"name: default\n"
                    f"listen-client-urls: {client_url}\n"
                    f"advertise-client-urls: {client_url}\n"
                    f"listen-peer-urls: {peer_url}\n"
                    f"initial-advertise-peer-urls: {peer_url}\n"
                    f"initial-cluster: default={peer_url}\n")

        env = dict(os.environ)
        env.update({
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(metrics_port),
            "MILVUS_RUN_DIR": os.path.join(self.data, "run"),
            "ETCD_CONFIG_PATH": etcd_config,  # milvus.yaml etcd.config.path, from the environment
            "LD_LIBRARY_PATH": ":".join(filter(None, [bin_dir, os.environ.get("LD_LIBRARY_PATH")])),
        })
        os.makedirs(os.path.join(self.data, "logs"), exist_ok=True)
        with open(self.log_path, "ab") as out:
            # cwd: the server reads configs/milvus.yaml relative to it.
            self.process = subprocess.Popen(
                [os.path.join(bin_dir, "milvus"), "run", "standalone"], cwd=self.data, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent)
        log(f"started pid {self.process.pid}: gRPC port {self.port}, etcd {ports['etcd_port']}/"
            f"{etcd_peer_port}, metrics {metrics_port}, data {self.data}")

    def wait_until_ready(self, deadline):
        # pymilvus runs in a child: it costs ~140 MB and starts gRPC threads, which this
        # long-lived process should not keep (nor a retry's fork inherit).
        started = time.monotonic()
        command = [sys.executable, os.path.abspath(__file__), "--probe", str(self.port),
                   "--mode", self.args.mode, "--probe-seconds", f"{deadline - started:.1f}"]
        if self.certs:
            command += ["--certs", self.certs]
        probe_log = os.path.join(self.data, "logs", "probe.log")
        with open(probe_log, "wb") as errors:
            prober = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=errors, preexec_fn=die_with_parent)
        try:
            while prober.poll() is None:
                if self.process.poll() is not None:
                    raise StartFailed(f"the server exited with status {self.process.returncode}")
                time.sleep(0.1)
        finally:
            if prober.poll() is None:
                prober.kill()
            prober.wait()
        if prober.returncode != 0:
            with open(probe_log, "rb") as errors:
                lines = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise StartFailed(f"not ready after {time.monotonic() - started:.0f} s; "
                              f"last: {lines[-1] if lines else 'probe status ' + str(prober.returncode)}")
        log(f"ready after {time.monotonic() - started:.1f} s")

    # ------------------------------------------------------------- stopping
    def stop_server(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()  # a graceful stop waits for its clients; the data is throwaway
            self.process.wait(timeout=10)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            return [f"(no log: {e})"]

    def log_tail(self):
        """The server's error lines (a panic ends in pages of goroutine stacks), then its last lines."""
        lines = self.read_log()
        errors = [line[:400] for line in lines
                  if "[ERROR]" in line or "[FATAL]" in line or line.startswith("panic:")]
        return "\n".join(["errors:"] + errors[:12] + ["last lines:"] + lines[-12:])

    def port_conflict(self):
        return any("address already in use" in line for line in self.read_log())


def client_options(mode, certs):
    """pymilvus connection options for a mode (the same a test's reference client uses)."""
    if mode == "plain":
        return {}
    options = {"secure": True, "server_name": "localhost", "token": ROOT_TOKEN}
    if mode == "tls":
        # pymilvus uses server_pem_path as the trusted root: the CA that signed server.pem.
        options["server_pem_path"] = os.path.join(certs, "ca.pem")
    else:
        options.update(ca_pem_path=os.path.join(certs, "ca.pem"),
                       client_pem_path=os.path.join(certs, "client.pem"),
                       client_key_path=os.path.join(certs, "client.key"))
    return options


def probe(port, mode, certs, seconds):
    """Until one authenticated pymilvus call through the gRPC port succeeds, with the mode's
    TLS settings; exit status 0 then, 1 with the last error on stderr after `seconds`."""
    from pymilvus import MilvusClient

    deadline = time.monotonic() + seconds
    last_error = "no connection yet"
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError as e:
            last_error = f"TCP connect: {e}"
            time.sleep(0.25)
            continue
        try:
            client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=5, dedicated=True,
                                  **client_options(mode, certs))
            try:
                client.list_collections(timeout=5)
            finally:
                client.close()
            return 0
        except Exception as e:  # pymilvus raises many kinds while the server comes up
            last_error = f"pymilvus: {type(e).__name__}: {e}"
            time.sleep(0.5)
    sys.stderr.write(last_error + "\n")
    return 1


def parent_alive(pid):
    # A zombie still answers kill(pid, 0); its parent may be waiting for our stderr to close.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def serve_until_stopped(instance, args, end):
    """Returns when stdin closes (or the parent goes), the time is up or the server dies."""
    watch_stdin = not args.detached
    while True:
        if time.monotonic() >= end:
            log(f"--max-seconds ({args.max_seconds:.0f}) reached; exiting")
            return 0
        if instance.process.poll() is not None:
            log(f"the server exited with status {instance.process.returncode}; from its log:\n"
                + instance.log_tail())
            return 1
        if args.parent_pid is not None and not parent_alive(args.parent_pid):
            log(f"parent {args.parent_pid} is gone; exiting")
            return 0
        if not watch_stdin:
            time.sleep(1)
            continue
        ready, _, _ = select.select([sys.stdin.buffer], [], [], 1.0)
        if ready:
            try:
                data = os.read(sys.stdin.fileno(), 65536)
            except OSError:
                data = b""
            if not data:
                log("stdin closed; exiting")
                return 0


def main():
    global _mode
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", required=True, choices=sorted(MODES))
    parser.add_argument("--data", help="this instance's directory (removed at exit)")
    parser.add_argument("--certs", help="directory written by make_test_certs.sh (TLS modes)")
    parser.add_argument("--shared-dir", help="where the unpacked binaries go (DIR/bin), shared "
                        "by instances started side by side; default: DATA.bin, removed at exit")
    parser.add_argument("--parent-pid", type=int, help="stop when this process has ended")
    parser.add_argument("--detached", action="store_true", help="do not stop at stdin EOF")
    parser.add_argument("--max-seconds", type=float, default=5400)
    parser.add_argument("--ready-timeout", type=float, default=180)
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--probe", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--probe-seconds", type=float, default=180, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _mode = args.mode
    if args.probe:
        sys.stdout.flush()
        os._exit(probe(args.probe, args.mode, args.certs, args.probe_seconds))
    if not args.data:
        parser.error("--data is required")
    if args.mode != "plain":
        missing = [name for name in ("server.pem", "server.key", "ca.pem", "client.pem", "client.key")
                   if not args.certs or not os.path.isfile(os.path.join(args.certs, name))]
        if missing:
            parser.error(f"--mode {args.mode} needs --certs with {', '.join(missing)}")

    started = time.monotonic()
    end = started + args.max_seconds

    def on_signal(signum, frame):
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    instance = Instance(args)
    status = 1
    try:
        shared = os.path.abspath(args.shared_dir or args.data + ".bin")
        bin_dir = unpack_binaries(shared)
        instance.start(bin_dir, min(end, started + args.ready_timeout))
        sys.stdout.write(f"PORT {instance.port}\n")
        sys.stdout.flush()
        status = serve_until_stopped(instance, args, end)
    except StartFailed as failure:
        log(f"FAILED to start: {failure}; from {instance.log_path}:\n{failure.log_tail}")
    except Stop as stop:
        log(f"{stop}; exiting")
        status = 0
    except Exception:
        log("crashed:\n" + traceback.format_exc())
    finally:
        # The cleanup below must not be cut short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        instance.stop_server()
        if not args.keep_data:
            shutil.rmtree(instance.data, ignore_errors=True)
            if not args.shared_dir:
                shutil.rmtree(args.data + ".bin", ignore_errors=True)
        log(f"stopped after {time.monotonic() - started:.1f} s")
    os._exit(status)  # pymilvus's gRPC threads must not keep us alive


if __name__ == "__main__":
    main()
