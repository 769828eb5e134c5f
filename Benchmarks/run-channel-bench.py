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
    return parser.parse_args()


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

    def __init__(self, path, cpu):
        self.process = subprocess.Popen(
            pinned(cpu, [path, "0"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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


def h2load_command(args, port, concurrency, calls, data_path, log_path=None):
    command = [args.h2load, "-n", str(calls), "-c", "1", "-t", "1", "-m", str(concurrency),
               "-d", data_path,
               "-H", "content-type: application/grpc", "-H", "te: trailers"]
    if log_path:
        command.append(f"--log-file={log_path}")
    command.append(f"http://127.0.0.1:{port}{METHOD_PATH}")
    return pinned(args.client_cpu, command)


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
    if len(latencies_us) != calls:
        raise RuntimeError(f"h2load logged {len(latencies_us)} requests, expected {calls}")
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    latencies_us.sort()
    user, system = user_after - user_before, sys_after - sys_before
    return {
        "client": "h2load", "concurrency": concurrency, "calls": calls,
        "seconds": seconds, "calls_per_s": float(finished.group(3)),
        "p50_us": float(nearest_rank(latencies_us, 0.50)),
        "p99_us": float(nearest_rank(latencies_us, 0.99)),
        "cpu_user_s": round(user, 6), "cpu_sys_s": round(system, 6),
        "cpu_us_per_call": round((user + system) * 1e6 / calls, 3),
    }


def run_contract_client(args, name, path, port, concurrency, calls, warmup):
    """A client that follows the README's contract: flags in, one JSON line out."""
    completed = subprocess.run(
        pinned(args.client_cpu, [path, "--port", str(port), "--concurrency", str(concurrency),
                                 "--calls", str(calls), "--warmup", str(warmup)]),
        capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    if completed.returncode != 0:
        raise RuntimeError(f"{name} exited with {completed.returncode}: "
                           f"{completed.stderr.strip()[-2000:]}")
    lines = completed.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{name} printed nothing on stdout")
    record = json.loads(lines[-1])
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
    for key in ("seconds", "calls_per_s", "p50_us", "p99_us", "cpu_user_s", "cpu_sys_s",
                "cpu_us_per_call"):
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
    return (f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
            f"{h2load_version}")


def ratio(numerator, denominator):
    return numerator / denominator if denominator else float("nan")


def print_report(args, tcp, results, skipped, milvex_ran):
    print(f"Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  ")
    print(f"Machine: {machine_description()}  ")
    print(f"Command: `{' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])}`  ")
    print(f"Server: {os.path.basename(args.server)} (gRPC C++) on CPU {args.server_cpu}; "
          f"clients on CPU {args.client_cpu}; one connection; {PAYLOAD_BYTES}-byte unary echo"
          + (f"; median of {args.repeat} runs" if args.repeat > 1 else ""))
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


def main():
    args = parse_arguments()
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    wanted = set(args.clients.split(","))
    for path, what in ((args.server, "generic_server"), (args.tcp_rtt, "tcp_rtt")):
        if not os.access(path, os.X_OK):
            sys.exit(f"{what} not found at {path}: run `make -C Benchmarks/cpp-server` first.")
    if shutil.which("taskset") is None:
        sys.exit("taskset not found (Debian package util-linux).")

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

    server = EchoServer(args.server, args.server_cpu)
    records = []
    results = []
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
                    repeats = []
                    try:
                        for attempt in range(args.repeat):
                            note(f"c={concurrency} {name} run {attempt + 1}/{args.repeat}: "
                                 f"{calls:,} calls after {warmup:,} warm-up ...")
                            started = time.monotonic()
                            if path is None:
                                record = run_h2load(args, server.port, concurrency, calls,
                                                    warmup, data.name)
                            else:
                                record = run_contract_client(args, name, path, server.port,
                                                             concurrency, calls, warmup)
                            note(f"  {time.monotonic() - started:.1f} s: {json.dumps(record)}")
                            records.append(record)
                            repeats.append(record)
                        results.append(median_record(repeats))
                    except (RuntimeError, subprocess.SubprocessError, ValueError) as error:
                        note(f"  {name} failed: {error}")
                        results.append({"client": name, "concurrency": concurrency,
                                        "error": str(error).splitlines()[0]})
    finally:
        server.stop()

    if args.json_out:
        with open(args.json_out, "w") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")
    milvex_ran = any(record["client"] == "milvex" and "error" not in record
                     for record in results)
    print_report(args, tcp, results, skipped, milvex_ran)


if __name__ == "__main__":
    main()
