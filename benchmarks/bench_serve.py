"""``rexforge serve`` under load over loopback, beside the same forecasts in a plain Python loop.

    python benchmarks/bench_serve.py                       # 1, 8 and 32 clients
    python benchmarks/bench_serve.py --requests-per-client 5 --clients 1 8

Starts ``rexforge serve`` as its own process on 127.0.0.1, then for each number of concurrent
clients sends a fixed number of requests per client (each client one keep-alive connection,
one request after another) and reports requests/s, p50/p99 latency and how many requests
shared a forward pass (the server's /health counters). The baseline forecasts the same
requests one by one with ``load_model(...).forecast`` in this process, after the server has
stopped. Clients are threads of this process and share the machine's cores with the server,
so the numbers are for loopback on one machine, not for a server with cores to itself.
Results go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.results_writer import write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="starter")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests-per-client", type=int, default=10)
    parser.add_argument("--series-per-request", type=int, default=1)
    parser.add_argument("--series-length", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--note", default="", help="a line for the result file (e.g. the load)")
    args = parser.parse_args()

    payloads = make_payloads(args, max(args.clients) * args.requests_per_client)
    port = free_port()
    server = start_server(args, port)
    try:
        run_clients(port, payloads[:1], 1, 1)  # warm-up: the first forecast builds caches
        rows = [
            run_clients(port, payloads, clients, args.requests_per_client)
            for clients in args.clients
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
    baseline = run_python_loop(
        args.model, payloads[: max(args.clients) * args.requests_per_client], args.horizon
    )
    markdown = render(args, rows, baseline)
    payload = {"settings": vars(args), "served": rows, "python_loop": baseline}
    stem = write_result("bench_serve", markdown, payload)
    print(markdown)
    print(f"wrote {stem}.md and .json")


def make_payloads(args, count: int) -> list[bytes]:
    """``count`` request bodies of random-walk series (fixed seed: the same on every run)."""
    rng = np.random.default_rng(0)
    bodies = []
    for _ in range(count):
        series = 100 + rng.normal(size=(args.series_per_request, args.series_length)).cumsum(1)
        body = {"series": series.tolist(), "prediction_length": args.horizon}
        bodies.append(json.dumps(body).encode())
    return bodies


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(args, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "rexforge.cli", "serve", "--model", args.model]
    command += ["--port", str(port), "--max-wait-ms", str(args.max_wait_ms)]
    command += ["--log-level", "warning"]
    process = subprocess.Popen(command, env=dict(os.environ))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"rexforge serve exited with status {process.returncode}")
        try:
            health(port)
            return process
        except OSError:  # still loading the model
            time.sleep(0.2)
    process.kill()
    raise SystemExit("rexforge serve did not start within 120 s")


def health(port: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health")
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


def run_clients(port: int, payloads: list[bytes], clients: int, per_client: int) -> dict:
    """``clients`` threads, each sending ``per_client`` requests on its own connection."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/json"}
        for body in payloads[index * per_client : (index + 1) * per_client]:
            start = time.perf_counter()
            connection.request("POST", "/forecast", body, headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if response.status != 200:
                    failures.append(str(response.status))
        connection.close()

    before = health(port)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    after = health(port)
    passes = after["forward_passes"] - before["forward_passes"]
    return {
        "clients": clients,
        "requests": len(latencies),
        "failures": len(failures),
        "requests_per_s": len(latencies) / wall,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "requests_per_forward_pass": (after["requests_served"] - before["requests_served"])
        / max(passes, 1),
    }


def run_python_loop(model: str, payloads: list[bytes], horizon: int) -> dict:
    """The same requests forecast one by one, in process, after one warm-up call."""
    from rexforge import load_model

    forecaster = load_model(model)
    series = [np.array(json.loads(body)["series"]) for body in payloads]
    forecaster.forecast(series[0], horizon, output_type="numpy")
    latencies = []
    start = time.perf_counter()
    for item in series:
        begin = time.perf_counter()
        forecaster.forecast(item, horizon, output_type="numpy")
        latencies.append(time.perf_counter() - begin)
    wall = time.perf_counter() - start
    return {
        "requests": len(series),
        "requests_per_s": len(series) / wall,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
    }


def render(args, rows: list[dict], baseline: dict) -> str:
    lines = [
        "# rexforge serve: requests/s and latency over loopback",
        "",
        f"Model {args.model}; each request {args.series_per_request} series of "
        f"{args.series_length} steps, horizon {args.horizon}; {args.requests_per_client} "
        f"requests per client; --max-wait-ms {args.max_wait_ms}. Clients are threads on the "
        "same machine as the server (they share its cores).",
        *([f"Note: {args.note}"] if args.note else []),
        "",
        "| clients | requests | failures | requests/s | p50 ms | p99 ms | requests per forward pass |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['clients']} | {row['requests']} | {row['failures']} | "
            f"{row['requests_per_s']:.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{row['requests_per_forward_pass']:.1f} |"
        )
    lines.append(
        f"| plain Python loop | {baseline['requests']} | 0 | {baseline['requests_per_s']:.1f} | "
        f"{baseline['p50_ms']:.1f} | {baseline['p99_ms']:.1f} | 1.0 |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
