#!/usr/bin/env python3
"""The search service under load (make bench-service, issue 16 item 4).

    run-service-bench.py --service PATH [--seconds 30] [--connections 64] [--rows 2000]
                         [--writers 4] [--milvus-port PORT]

Starts milvus-lite, two TCP proxies in front of it (Benchmarks/soak_proxy.py: two Milvus
endpoints that see the same data) and the example search service with both as --milvus
endpoints; inserts --rows texts through POST /insert; then runs wrk twice against
GET /search?q=...:

1. steady: --seconds at --connections connections: requests/s, latency p50/p99, non-2xx
   answers and socket errors, and the service's CPU per request (utime + stime of its
   process from /proc, over the run);
2. failover: the same, killing one proxy (SIGKILL, its connections reset) at a third of the
   run and starting it again on the same port at two thirds: failed requests, and how long
   after the proxy is back the service's /health reports that endpoint connected again.
   Beside wrk's reads, --writers threads (default 4) send POST /insert one after another for
   the whole run, each request timed: a write is not retried once sent (it may have been
   applied), so the inserts that may fail are those in flight on the killed endpoint; the
   report counts the failed inserts and how many of them were in flight at the kill.

Bounded: every child is stopped at the end (also on failure); wrk stops by itself.
Needs wrk (Debian package wrk; scripts/install-deps.sh --bench) and the venv's milvus-lite.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[service-bench] {message}", file=sys.stderr, flush=True)


class Child:
    """A process that prints a line telling it is ready; stopped by stop()."""

    def __init__(self, name, argv, ready, stdin=subprocess.PIPE):
        self.name = name
        self.process = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.line = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{name} exited before it was ready")
            if ready(line):
                self.line = line.strip()
                return
        raise RuntimeError(f"{name} was not ready within 120 s")

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def proxy(target_port, listen_port=0):
    child = Child(
        "proxy",
        [sys.executable, os.path.join(HERE, "soak_proxy.py"), "--target-port", str(target_port),
         "--listen-port", str(listen_port)],
        lambda line: line.startswith("PORT "))
    child.port = int(child.line.split()[1])
    return child


def http(url, body=None, timeout=30):
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wrk(url, connections, seconds):
    """Runs wrk; returns its figures."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", url],
        capture_output=True, text=True, timeout=seconds + 60).stdout

    def number(pattern, default=0.0):
        match = re.search(pattern, out)
        return float(match.group(1)) if match else default

    def millis(label):
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(number(r"(\d+) requests in")),
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "p50_ms": millis("50"),
        "p99_ms": millis("99"),
        "non2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", required=True, help="the milvex-search-service binary")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=4,
                        help="threads sending inserts during the failover run (0: none)")
    parser.add_argument(
        "--milvus-port", type=int,
        help="use this running Milvus on 127.0.0.1 (for example a real one from "
             "scripts/milvus-peers.sh) instead of starting milvus-lite")
    args = parser.parse_args()

    children = []
    try:
        if args.milvus_port:
            lite_port = args.milvus_port
        else:
            lite_port = int(subprocess.run(
                [sys.executable, "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0));"
                 "print(s.getsockname()[1])"], capture_output=True, text=True).stdout)
            data = f"/tmp/service-bench-{os.getpid()}"
            lite = Child(
                "milvus-lite",
                [os.path.join(ROOT, ".venv/bin/milvus-lite"), "server", "--data-dir", data,
                 "--host", "127.0.0.1", "--port", str(lite_port)],
                lambda line: "listening on" in line)
            children.append(lite)
        proxies = [proxy(lite_port), proxy(lite_port)]
        children += proxies
        service = Child(
            "service",
            [args.service, "--listen", "127.0.0.1:0",
             "--milvus", f"milvus://127.0.0.1:{proxies[0].port}",
             "--milvus", f"milvus://127.0.0.1:{proxies[1].port}"],
            lambda line: "listening on http://" in line)
        children.append(service)
        base = service.line.split()[-1]
        deadline = time.monotonic() + 120
        while http(f"{base}/health")[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not healthy within 120 s: {http(f'{base}/health')}")
            time.sleep(0.1)
        words = ["vector", "search", "milvus", "swift", "libev", "reactor", "proxy", "endpoint",
                 "channel", "latency", "throughput", "failover", "health", "insert", "query"]
        for start in range(0, args.rows, 500):
            texts = [" ".join(words[(i * k) % len(words)] for k in (1, 3, 7, 11))
                     for i in range(start, min(args.rows, start + 500))]
            status, answer = http(f"{base}/insert", json.dumps({"texts": texts}).encode())
            if status != 200:
                raise RuntimeError(f"insert failed: {status} {answer}")
        url = f"{base}/search?q=milvus+swift+failover&limit=10"
        if http(url)[0] != 200:
            raise RuntimeError("a search failed before the load")

        log(f"steady: {args.connections} connections, {args.seconds} s")
        cpu_before = cpu_seconds(service.process.pid)
        steady = wrk(url, args.connections, args.seconds)
        steady["cpu_us_per_request"] = (
            (cpu_seconds(service.process.pid) - cpu_before) * 1e6 / max(1, steady["requests"]))

        log("failover: one proxy killed at 1/3 of the run, back at 2/3")
        endpoint = f"127.0.0.1:{proxies[0].port}"
        third = args.seconds / 3
        killer_done = {}

        def fault():
            time.sleep(third)
            proxies[0].stop(signal.SIGKILL)
            killer_done["killed"] = time.monotonic()
            time.sleep(third)
            back = proxy(lite_port, listen_port=int(endpoint.split(":")[1]))
            children.append(back)
            killer_done["restarted"] = time.monotonic()
            while time.monotonic() < killer_done["restarted"] + 30:
                status, answer = http(f"{base}/health", timeout=5)
                if answer.get("endpoints", {}).get(endpoint) == "connected":
                    killer_done["back"] = time.monotonic()
                    return
                time.sleep(0.02)

        inserts = []  # (start, end, status) of every insert sent during the run
        inserts_lock = threading.Lock()
        run_ends = time.monotonic() + args.seconds

        def writer(number):
            sequence = 0
            while time.monotonic() < run_ends:
                sequence += 1
                texts = [f"writer {number} insert {sequence} row {row} failover" for row in range(5)]
                started = time.monotonic()
                try:
                    status, _ = http(f"{base}/insert", json.dumps({"texts": texts}).encode(),
                                     timeout=15)
                except OSError:
                    status = 0
                with inserts_lock:
                    inserts.append((started, time.monotonic(), status))

        threads = [threading.Thread(target=fault)] + [
            threading.Thread(target=writer, args=(n,)) for n in range(args.writers)]
        for thread in threads:
            thread.start()
        failover = wrk(url, args.connections, args.seconds)
        for thread in threads:
            thread.join()
        failover["back_in_rotation_s"] = (
            killer_done["back"] - killer_done["restarted"] if "back" in killer_done else None)
        killed = killer_done.get("killed", 0)
        in_flight = [i for i in inserts if i[0] <= killed <= i[1]]
        failed = [i for i in inserts if i[2] != 200]
        failover["inserts"] = len(inserts)
        failover["inserts_failed"] = len(failed)
        failover["inserts_in_flight_at_kill"] = len(in_flight)
        failover["failed_inserts_in_flight_at_kill"] = sum(1 for i in failed if i in in_flight)

        print(json.dumps({"steady": steady, "failover": failover}, indent=2))
        print(
            f"steady:   {steady['rps']:.0f} req/s, p50 {steady['p50_ms']:.2f} ms, "
            f"p99 {steady['p99_ms']:.2f} ms, {steady['cpu_us_per_request']:.0f} us service CPU "
            f"per request, {steady['non2xx']} non-2xx, {steady['socket_errors']} socket errors")
        print(
            f"failover: {failover['rps']:.0f} req/s, p50 {failover['p50_ms']:.2f} ms, "
            f"p99 {failover['p99_ms']:.2f} ms, {failover['non2xx']} failed requests "
            f"(non-2xx) of {failover['requests']}, {failover['socket_errors']} socket errors; "
            f"endpoint back in rotation {failover['back_in_rotation_s']} s after its proxy returned")
        print(
            f"inserts:  {failover['inserts_failed']} failed of {failover['inserts']} sent by "
            f"{args.writers} writers; {failover['inserts_in_flight_at_kill']} were in flight at "
            f"the kill, and {failover['failed_inserts_in_flight_at_kill']} of the failed ones "
            f"were among them")
    finally:
        for child in reversed(children):
            child.stop()


if __name__ == "__main__":
    main()
