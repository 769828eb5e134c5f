#!/usr/bin/env python3
"""Side-by-side unary gRPC benchmark: one echo server, several clients, one run.

Starts ONE Benchmarks/.build-cpp/generic_server pinned to the server CPU, then at each
concurrency runs, in turn and against that same server process:

  tcp-rtt       a 32-byte TCP ping-pong on loopback (once; the latency floor)
  h2load        nghttp2's load generator sending raw gRPC frames (the ceiling for this design)
  grpc-swift-2  Benchmarks/.build/release/GRPCSwiftClientBench
  milvex        the executable given by --milvex-client (skipped, and said so, when absent)

every client pinned to the client CPU, one HTTP/2 connection each, the same 32-byte unary call
(/bench.Echo/Call). Prints a Markdown table (and ratios against the issue's targets when milvex
ran). Builds nothing: see Benchmarks/README.md for the build commands.

With --tls, the server speaks TLS (a test CA and a certificate for localhost, made by
Tests/Peers/make_test_certs.sh in a temporary directory), every client connects over TLS 1.3
with ALPN h2, and after the calls each client opens --setup-connections fresh connections one
after another to measure connection set-up (TCP + TLS + HTTP/2 + the first echo).

Python 3 standard library only.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_CERTS = os.path.join(HERE, "..", "Tests", "Peers", "make_test_certs.sh")
# The name on the test server certificate; clients dial 127.0.0.1 and verify this name.
TLS_SERVER_NAME = "localhost"
# OpenSSL 3's default TLS 1.3 suites, in its order: what milvex (OpenSSL, defaults) offers.
# h2load's own default puts AES-128-GCM first, and the server takes the client's first choice;
# with this list h2load negotiates the same suite as milvex (TLS_AES_256_GCM_SHA384).
OPENSSL_DEFAULT_TLS13_CIPHERS = (
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256")
METHOD_PATH = "/bench.Echo/Call"
PAYLOAD_BYTES = 32
# A gRPC message on the wire: compressed flag 0, big-endian length, payload.
GRPC_REQUEST = b"\x00" + struct.pack(">I", PAYLOAD_BYTES) + b"\x5a" * PAYLOAD_BYTES
CLIENT_TIMEOUT_S = 900


def parse_arguments():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--milvex-client", metavar="PATH",
                        help="the milvex client executable (same CLI and JSON as "
                             "GRPCSwiftClientBench); skipped when absent")
    parser.add_argument("--milvex-async-client", metavar="PATH",
                        help="MilvexReactor's channel through its async API (same contract)")
    parser.add_argument("--grpc-swift-client", metavar="PATH",
                        default=os.path.join(HERE, ".build/release/GRPCSwiftClientBench"))
    parser.add_argument("--server", metavar="PATH",
                        default=os.path.join(HERE, ".build-cpp/generic_server"),
                        help="the echo server: generic_server (callback API, the default) or "
                             "async_generic_server (completion queue, faster at c >= 16)")
    parser.add_argument("--tcp-rtt", metavar="PATH",
                        default=os.path.join(HERE, ".build-cpp/tcp_rtt"))
    parser.add_argument("--h2load", metavar="PATH", default=shutil.which("h2load") or "h2load")
    parser.add_argument("--concurrency", default="1,16,128",
                        help="comma-separated concurrencies (default: 1,16,128)")
    parser.add_argument("--calls-scale", type=float, default=1.0,
                        help="multiplies the calls per run: 20,000 at c=1 and 100,000 above "
                             "(default: 1.0)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per client and concurrency; the table shows each figure's "
                             "median (default: 1)")
    parser.add_argument("--clients", default="h2load,grpc-swift-2,milvex",
                        help="comma-separated subset of h2load,grpc-swift-2,milvex")
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--json-out", metavar="FILE",
                        help="also write every run's JSON record to FILE, one per line")
    parser.add_argument("--tls", action="store_true",
                        help="TLS for the server and every client (certificates from "
                             "Tests/Peers/make_test_certs.sh), plus the connection set-up "
                             "measurement")
    parser.add_argument("--setup-connections", type=int, metavar="N",
                        help="fresh connections per client and run for the set-up measurement "
                             "(default: 100 with --tls, 0 = none without)")
    parser.add_argument("--setup-interval-ms", type=int, default=20,
                        help="connection i of the set-up measurement starts i times this after "
                             "the first (h2load --rate 1 --rate-period; default: 20)")
    arguments = parser.parse_args()
    if arguments.setup_connections is None:
        arguments.setup_connections = 100 if arguments.tls else 0
    return arguments


def calls_for(concurrency, scale):
    base = 20_000 if concurrency == 1 else 100_000
    return max(concurrency, int(base * scale))


def warmup_for(calls):
    return max(1_000, calls // 10)


def pinned(cpu, command):
    return ["taskset", "-c", str(cpu)] + command


def note(message):
    print(message, file=sys.stderr, flush=True)


def nearest_rank(sorted_values, fraction):
    """The percentile the Swift clients and tcp_rtt.c compute: nearest rank."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


class EchoServer:
    """generic_server on 127.0.0.1, pinned; stops when its stdin is closed."""

    def __init__(self, path, cpu, tls_files=None):
        tls_arguments = []
        if tls_files:
            tls_arguments = ["--tls-cert", tls_files["cert"], "--tls-key", tls_files["key"]]
        self.process = subprocess.Popen(
            pinned(cpu, [path] + tls_arguments + ["0"]), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        match = re.fullmatch(r"PORT (\d+)\n", line)
        if not match:
            self.stop()
            sys.exit(f"generic_server did not print 'PORT <n>' (got {line!r}); "
                     f"is {path} built? See Benchmarks/README.md.")
        self.port = int(match.group(1))

    def stop(self):
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_tcp_rtt(args, round_trips):
    output = subprocess.run(
        [args.tcp_rtt, "--round-trips", str(round_trips), "--warmup", "2000",
         "--client-cpu", str(args.client_cpu), "--server-cpu", str(args.server_cpu)],
        check=True, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S).stdout
    return json.loads(output.strip().splitlines()[-1])


def h2load_url(args, port):
    """https://localhost (ALPN h2, no certificate verification: h2load has none) or h2c."""
    if args.tls:
        return f"https://{TLS_SERVER_NAME}:{port}{METHOD_PATH}"
    return f"http://127.0.0.1:{port}{METHOD_PATH}"


def h2load_command(args, port, concurrency, calls, data_path, log_path=None, clients=1,
                   extra=()):
    command = [args.h2load, "-n", str(calls), "-c", str(clients), "-t", "1",
               "-m", str(concurrency), "-d", data_path,
               "-H", "content-type: application/grpc", "-H", "te: trailers"]
    if args.tls:
        command.append(f"--tls13-ciphers={OPENSSL_DEFAULT_TLS13_CIPHERS}")
    if log_path:
        command.append(f"--log-file={log_path}")
    command += list(extra)
    command.append(h2load_url(args, port))
    return pinned(args.client_cpu, command)


def h2load_tls_details(output):
    """What h2load says it negotiated, e.g. 'TLSv1.3, TLS_AES_256_GCM_SHA384, ECDH P-256'."""
    found = [re.search(pattern, output) for pattern in
             (r"TLS Protocol: (\S+)", r"Cipher: (\S+)", r"Server Temp Key: ([^\n]+)")]
    return ", ".join(match.group(1).strip() for match in found if match)


def check_h2load_summary(output, calls):
    """The summary's request counts and body bytes; returns (seconds, calls/s)."""
    done = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed, (\d+) errored", output)
    finished = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s", output)
    data = re.search(r"traffic: .*?, ([\d.]+\w*B) \((\d+)\) data", output)
    if not (done and finished and data):
        raise RuntimeError(f"cannot read h2load's summary:\n{output}")
    if int(done.group(1)) != calls or int(done.group(2)) or int(done.group(3)):
        raise RuntimeError(f"h2load calls did not all succeed:\n{output}")
    # HTTP 200 says nothing of grpc-status; a full echo body per call says the server answered.
    if int(data.group(2)) != calls * len(GRPC_REQUEST):
        raise RuntimeError(f"h2load received {data.group(2)} body bytes, expected "
                           f"{calls * len(GRPC_REQUEST)}: the server did not echo every call")
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    return seconds, float(finished.group(3))


def microseconds(text):
    """h2load's durations: '956us', '1.27ms', '2.1s'."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise RuntimeError(f"cannot read h2load's duration {text!r}")
    return float(match.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[match.group(2)]


def run_h2load(args, port, concurrency, calls, warmup, data_path):
    """One measured h2load run; CPU is the whole h2load process, from RUSAGE_CHILDREN."""
    subprocess.run(h2load_command(args, port, concurrency, warmup, data_path),
                   check=True, capture_output=True, timeout=CLIENT_TIMEOUT_S)
    with tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log") as log:
        user_before, sys_before = children_cpu_seconds()
        completed = subprocess.run(
            h2load_command(args, port, concurrency, calls, data_path, log.name),
            check=True, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
        user_after, sys_after = children_cpu_seconds()
        latencies_us = []
        for row in open(log.name):
            columns = row.split("\t")
            if columns[1] != "200":
                raise RuntimeError(f"h2load logged a failed request: {row.strip()}")
            latencies_us.append(int(columns[2]))
    output = completed.stdout
    seconds, calls_per_s = check_h2load_summary(output, calls)
    if len(latencies_us) != calls:
        raise RuntimeError(f"h2load logged {len(latencies_us)} requests, expected {calls}")
    latencies_us.sort()
    user, system = user_after - user_before, sys_after - sys_before
    record = {
        "client": "h2load", "concurrency": concurrency, "calls": calls,
        "seconds": seconds, "calls_per_s": calls_per_s,
        "p50_us": float(nearest_rank(latencies_us, 0.50)),
        "p99_us": float(nearest_rank(latencies_us, 0.99)),
        "cpu_user_s": round(user, 6), "cpu_sys_s": round(system, 6),
        "cpu_us_per_call": round((user + system) * 1e6 / calls, 3),
    }
    if args.tls:
        record["tls"] = h2load_tls_details(output)
    return record


def run_h2load_setup(args, port, data_path):
    """Set-up of --setup-connections fresh connections from ONE h2load process, one after
    another (`--rate 1 --rate-period`), one call each; h2load's own per-connection statistics.

    "time for connect": from just before the socket is created to the TLS handshake completing
    (SSL_do_handshake returned 1) and the HTTP/2 session being set up: TCP + TLS, no HTTP/2
    round trip. "time to 1st byte": from the same start to the first DATA bytes of a response
    (the echo) arriving; h2load sends its request right after the handshake, without waiting
    for the server's SETTINGS. CPU is the whole process (start-up included) ÷ connections.
    """
    count = args.setup_connections
    user_before, sys_before = children_cpu_seconds()
    completed = subprocess.run(
        h2load_command(args, port, 1, count, data_path, clients=count,
                       extra=("--rate=1", f"--rate-period={args.setup_interval_ms}ms")),
        check=True, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    user_after, sys_after = children_cpu_seconds()
    output = completed.stdout
    check_h2load_summary(output, count)
    record = {"client": "h2load", "mode": "setup", "connections": count,
              "interval_ms": args.setup_interval_ms}
    for prefix, label in (("ready", "time for connect"), ("setup", "time to 1st byte")):
        row = re.search(label + r":\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", output)
        if not row:
            raise RuntimeError(f"cannot read h2load's {label!r}:\n{output}")
        for key, text in zip(("min", "max", "mean", "sd"), row.groups()):
            record[f"{prefix}_{key}_us"] = round(microseconds(text), 1)
    cpu = (user_after - user_before) + (sys_after - sys_before)
    record["cpu_us_per_connection"] = round(cpu * 1e6 / count, 1)
    if args.tls:
        record["tls"] = h2load_tls_details(output)
    return record


def contract_command(args, path, port, options):
    command = [path, "--port", str(port)] + options
    if args.tls:
        command += ["--tls-ca", args.tls_files["ca"]]
    return pinned(args.client_cpu, command)


def run_contract_json(args, name, command):
    """Runs a client; its last stdout line, parsed."""
    completed = subprocess.run(command, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    if completed.returncode != 0:
        raise RuntimeError(f"{name} exited with {completed.returncode}: "
                           f"{completed.stderr.strip()[-2000:]}")
    lines = completed.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{name} printed nothing on stdout")
    return json.loads(lines[-1])


def run_contract_setup(args, name, path, port):
    """The client's --connections mode: the same pacing and count as h2load's."""
    count = args.setup_connections
    record = run_contract_json(args, name, contract_command(args, path, port, [
        "--connections", str(count), "--connection-interval-ms", str(args.setup_interval_ms)]))
    missing = {"connections", "setup_median_us", "setup_mean_us", "setup_min_us",
               "cpu_us_per_connection"} - record.keys()
    if missing:
        raise RuntimeError(f"{name}'s set-up JSON lacks {sorted(missing)}: {record}")
    if record["connections"] != count:
        raise RuntimeError(f"{name} opened {record['connections']} connections, asked {count}")
    record["client"] = name
    return record


def run_contract_client(args, name, path, port, concurrency, calls, warmup):
    """A client that follows the README's contract: flags in, one JSON line out."""
    record = run_contract_json(args, name, contract_command(args, path, port, [
        "--concurrency", str(concurrency), "--calls", str(calls), "--warmup", str(warmup)]))
    missing = {"concurrency", "calls", "calls_per_s", "p50_us", "p99_us",
               "cpu_us_per_call"} - record.keys()
    if missing:
        raise RuntimeError(f"{name}'s JSON lacks {sorted(missing)}: {lines[-1]}")
    if record["calls"] != calls or record["concurrency"] != concurrency:
        raise RuntimeError(f"{name} measured {record['calls']} calls at concurrency "
                           f"{record['concurrency']}, asked for {calls} at {concurrency}")
    record["client"] = name
    return record


def median_record(records):
    """Each figure's median over repeated runs (a single run is returned as it is)."""
    if len(records) == 1:
        return records[0]
    merged = dict(records[0])
    numeric = [key for key, value in records[0].items()
               if isinstance(value, float) and all(key in record for record in records)]
    for key in numeric:
        merged[key] = statistics.median(record[key] for record in records)
    merged["runs"] = len(records)
    return merged


def machine_description():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    h2load_version = subprocess.run(["h2load", "--version"], capture_output=True,
                                    text=True).stdout.strip()
    openssl_version = subprocess.run(["openssl", "version"], capture_output=True,
                                     text=True).stdout.strip()
    return (f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
            f"{h2load_version}, {openssl_version}, load average "
            f"{' '.join(f'{value:.2f}' for value in os.getloadavg())} at the end")


def ratio(numerator, denominator):
    return numerator / denominator if denominator else float("nan")


def print_report(args, tcp, results, skipped, milvex_ran, setups):
    print(f"Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  ")
    print(f"Machine: {machine_description()}  ")
    print(f"Command: `{' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])}`  ")
    print(f"Server: {os.path.basename(args.server)} (gRPC C++) on CPU {args.server_cpu}; "
          f"clients on CPU {args.client_cpu}; one connection; {PAYLOAD_BYTES}-byte unary echo"
          + (f"; median of {args.repeat} runs" if args.repeat > 1 else ""))
    if args.tls:
        negotiated = sorted({record["tls"] for record in results + setups if record.get("tls")})
        print(f"TLS: server certificate for {TLS_SERVER_NAME} (EC P-256) from a test CA; "
              f"h2load negotiated {'; '.join(negotiated) or 'unknown'}; milvex and grpc-swift-2 "
              f"verify chain and name, h2load verifies nothing")
    print()
    print(f"Loopback TCP round trip ({tcp['round_trips']} × {PAYLOAD_BYTES} B, "
          f"TCP_NODELAY, CPU {args.client_cpu} ↔ CPU {args.server_cpu}): "
          f"p50 {tcp['p50_us']:.1f} µs, p99 {tcp['p99_us']:.1f} µs")
    print()
    if not results:
        print("No client ran.")
    print("| client | concurrency | calls | calls/s | p50 µs | p99 µs | CPU µs/call |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for record in results:
        if "error" in record:
            print(f"| {record['client']} | {record['concurrency']} | — | failed: "
                  f"{record['error'][:80]} | | | |")
            continue
        print(f"| {record['client']} | {record['concurrency']} | {record['calls']:,} | "
              f"{record['calls_per_s']:,.0f} | {record['p50_us']:.1f} | "
              f"{record['p99_us']:.1f} | {record['cpu_us_per_call']:.2f} |")
    for line in skipped:
        print(f"\n{line}")
    if not milvex_ran:
        return

    def find(client, concurrency):
        for record in results:
            if (record["client"], record["concurrency"]) == (client, concurrency) \
                    and "error" not in record:
                return record
        return None

    print()
    print("| ratio | concurrency | value | target | met |")
    print("|---|---:|---:|---|---|")
    for concurrency in sorted({record["concurrency"] for record in results}):
        milvex = find("milvex", concurrency)
        if not milvex:
            continue
        for other, target, met in (("h2load", "≤ 1.5", lambda value: value <= 1.5),
                                   ("grpc-swift-2", "< 0.5", lambda value: value < 0.5)):
            baseline = find(other, concurrency)
            if baseline:
                value = ratio(milvex["cpu_us_per_call"], baseline["cpu_us_per_call"])
                print(f"| milvex CPU/call ÷ {other} | {concurrency} | {value:.2f} | {target} | "
                      f"{'yes' if met(value) else 'NO'} |")
    milvex = find("milvex", 1)
    if milvex:
        value = ratio(milvex["p50_us"], tcp["p50_us"])
        print(f"| milvex p50 ÷ TCP round-trip p50 | 1 | {value:.2f} | ≤ 2 | "
              f"{'yes' if value <= 2 else 'NO'} |")


def print_setup_report(args, setups):
    """The connection set-up table: one row per client, each figure the median over runs."""
    if not setups:
        return
    print()
    print(f"Connection set-up: {args.setup_connections} fresh connections per run, one after "
          f"another, connection i started i × {args.setup_interval_ms} ms after the first, one "
          f"echo each; times in µs from just before the socket is created")
    print()
    print("| client | first echo: median | mean | min | max | sd | ready: mean | "
          "CPU µs/connection |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")

    def show(record, key):
        value = record.get(key)
        return "—" if value is None else f"{value:,.0f}"

    for record in setups:
        if "error" in record:
            print(f"| {record['client']} | failed: {record['error'][:80]} | | | | | | |")
            continue
        print(f"| {record['client']} | {show(record, 'setup_median_us')} | "
              f"{show(record, 'setup_mean_us')} | {show(record, 'setup_min_us')} | "
              f"{show(record, 'setup_max_us')} | {show(record, 'setup_sd_us')} | "
              f"{show(record, 'ready_mean_us')} | {show(record, 'cpu_us_per_connection')} |")
    print()
    print("first echo: until the first echo's reply reached the caller (h2load: its 'time to "
          "1st byte', the first response DATA). ready: h2load's 'time for connect' (TCP "
          "connected and, with TLS, its handshake done; h2load then sends at once, without "
          "waiting for the server's SETTINGS); milvex's channel ready (the server's SETTINGS "
          "arrived); — where the client cannot tell. h2load reports no median. h2load's CPU "
          "includes its process start-up and exit.")
    baseline = next((record for record in setups
                     if record["client"] == "h2load" and "error" not in record), None)
    milvex = next((record for record in setups
                   if record["client"] == "milvex" and "error" not in record), None)
    if baseline and milvex:
        print()
        print(f"milvex ÷ h2load, mean time to the first echo: "
              f"{ratio(milvex['setup_mean_us'], baseline['setup_mean_us']):.2f}; "
              f"CPU per connection: "
              f"{ratio(milvex['cpu_us_per_connection'], baseline['cpu_us_per_connection']):.2f}")


def make_certificates(directory):
    """The test CA and a server certificate for localhost (Tests/Peers/make_test_certs.sh)."""
    subprocess.run([MAKE_CERTS, directory], check=True, capture_output=True, timeout=120)
    return {"ca": os.path.join(directory, "ca.pem"),
            "cert": os.path.join(directory, "server.pem"),
            "key": os.path.join(directory, "server.key")}


def measure_repeatedly(args, name, what, measure, records, failed_row):
    """`measure()` --repeat times, each record logged and kept in `records`; returns the
    median record, or `failed_row` with the first line of the error if a run failed."""
    repeats = []
    try:
        for attempt in range(args.repeat):
            note(f"{what} {name} run {attempt + 1}/{args.repeat} ...")
            started = time.monotonic()
            record = measure()
            note(f"  {time.monotonic() - started:.1f} s: {json.dumps(record)}")
            records.append(record)
            repeats.append(record)
        return median_record(repeats)
    except (RuntimeError, subprocess.SubprocessError, ValueError) as error:
        note(f"  {name} failed: {error}")
        return dict(failed_row, client=name, error=str(error).splitlines()[0])


def run_setups(args, port, data_path, runs, records):
    """Every client's set-up measurement, --repeat times each; the rows, medians of runs."""
    setups = []
    for name, path in runs:
        if path is None:
            def measure():
                return run_h2load_setup(args, port, data_path)
        else:
            def measure(name=name, path=path):
                return run_contract_setup(args, name, path, port)
        setups.append(measure_repeatedly(
            args, name, f"set-up ({args.setup_connections} connections):", measure, records,
            {"mode": "setup"}))
    return setups


def main():
    args = parse_arguments()
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    wanted = set(args.clients.split(","))
    for path, what in ((args.server, "generic_server"), (args.tcp_rtt, "tcp_rtt")):
        if not os.access(path, os.X_OK):
            sys.exit(f"{what} not found at {path}: run `make -C Benchmarks/cpp-server` first.")
    if shutil.which("taskset") is None:
        sys.exit("taskset not found (Debian package util-linux).")
    certificates_directory = None
    args.tls_files = None
    if args.tls:
        certificates_directory = tempfile.TemporaryDirectory(prefix="channel-bench-tls-")
        args.tls_files = make_certificates(certificates_directory.name)

    contract_clients = []  # (name, path)
    skipped = []
    if "grpc-swift-2" in wanted:
        if os.access(args.grpc_swift_client, os.X_OK):
            contract_clients.append(("grpc-swift-2", args.grpc_swift_client))
        else:
            skipped.append(f"Skipped grpc-swift-2: no executable at {args.grpc_swift_client} "
                           f"(`cd Benchmarks && swift build -c release`).")
    if "milvex" in wanted:
        if args.milvex_client and os.access(args.milvex_client, os.X_OK):
            contract_clients.append(("milvex", args.milvex_client))
        elif args.milvex_client:
            skipped.append(f"Skipped milvex: no executable at {args.milvex_client}.")
        else:
            skipped.append("Skipped milvex: no --milvex-client PATH given.")
    if args.milvex_async_client:
        if os.access(args.milvex_async_client, os.X_OK):
            contract_clients.append(("milvex-async", args.milvex_async_client))
        else:
            skipped.append(f"Skipped milvex-async: no executable at {args.milvex_async_client}.")
    run_h2load_client = "h2load" in wanted
    if run_h2load_client and shutil.which(args.h2load) is None:
        skipped.append(f"Skipped h2load: {args.h2load} not found (Debian package "
                       f"nghttp2-client).")
        run_h2load_client = False
    for line in skipped:
        note(line)

    server = EchoServer(args.server, args.server_cpu, args.tls_files)
    records = []
    results = []
    setups = []
    try:
        with tempfile.NamedTemporaryFile(prefix="grpc-request-", suffix=".bin") as data:
            data.write(GRPC_REQUEST)
            data.flush()
            note(f"server on port {server.port}; tcp-rtt ...")
            tcp = run_tcp_rtt(args, 20_000)
            records.append(tcp)
            for concurrency in concurrencies:
                calls = calls_for(concurrency, args.calls_scale)
                warmup = warmup_for(calls)
                runs = ([("h2load", None)] if run_h2load_client else []) + contract_clients
                for name, path in runs:
                    if path is None:
                        def measure():
                            return run_h2load(args, server.port, concurrency, calls, warmup,
                                              data.name)
                    else:
                        def measure(name=name, path=path):
                            return run_contract_client(args, name, path, server.port,
                                                       concurrency, calls, warmup)
                    results.append(measure_repeatedly(
                        args, name,
                        f"c={concurrency} ({calls:,} calls after {warmup:,} warm-up):",
                        measure, records, {"concurrency": concurrency}))
            if args.setup_connections > 0:
                runs = ([("h2load", None)] if run_h2load_client else []) + contract_clients
                setups = run_setups(args, server.port, data.name, runs, records)
    finally:
        server.stop()
        if certificates_directory:
            certificates_directory.cleanup()

    if args.json_out:
        with open(args.json_out, "w") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")
    milvex_ran = any(record["client"] == "milvex" and "error" not in record
                     for record in results)
    print_report(args, tcp, results, skipped, milvex_ran, setups)
    print_setup_report(args, setups)


if __name__ == "__main__":
    main()
