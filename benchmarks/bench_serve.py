"""Is `textlab serve` safe under load? A bounded load test on loopback.

Starts ``python -m textlab serve`` on 127.0.0.1 (a free port) for the default CharLSTM (random
weights: speed does not depend on them), then, in the same run:
  (a) one client sending requests one after another;
  (b) many concurrent clients (default 64), each sending a fixed number of requests.
Every request is POST /generate with the same prime and settings and its own seed, so the server
may batch them. Reports requests/s, p50/p95/p99 latency, errors (must be 0) and characters/s, and
the ratios (b)/(a): what batching buys. Stops by itself; the server is stopped with SIGTERM.

    python benchmarks/bench_serve.py                # prints a table, appends it to RESULTS.md
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import Parser, append_results, positive, run_main, table

import textlab
from textlab.config import default_configs

PRIME = "ROMEO:\n"
ALPHABET = "\n !',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # tiny Shakespeare's letters


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "textlab", "serve", str(folder), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start:\n{proc.stdout.read()}")


async def load(url: str, clients: int, per_client: int, length: int, timeout: float) -> dict:
    """``clients`` concurrent clients, each sending ``per_client`` requests one after another."""
    import httpx

    latencies, errors, chars, batch_rows = [], [], 0, []

    async def client(c: int, http: httpx.AsyncClient) -> None:
        nonlocal chars
        for i in range(per_client):
            body = {"model": "bench", "prime": PRIME, "length": length, "temperature": 0.8,
                    "seed": c * per_client + i}
            start = time.perf_counter()
            try:
                response = await http.post(url + "generate", json=body)
                ok = response.status_code == 200
            except httpx.HTTPError as err:
                ok, response = False, err
            latencies.append(time.perf_counter() - start)
            if ok:
                answer = response.json()
                chars += sum(len(t) - len(PRIME) for t in answer["texts"])
                batch_rows.append(answer["batch_rows"])
            else:
                errors.append(str(getattr(response, "status_code", response)))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(c, http) for c in range(clients)))
        wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "wall_s": wall,
            "req_per_s": len(latencies) / wall, "p50_ms": 1e3 * q[49], "p95_ms": 1e3 * q[94],
            "p99_ms": 1e3 * q[98], "chars_per_s": chars / wall,
            "mean_batch_rows": statistics.mean(batch_rows) if batch_rows else 0.0,
            "error_kinds": sorted(set(errors))}


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=positive(int), default=64)
    parser.add_argument("--requests", type=positive(int), default=8, help="requests per concurrent client")
    parser.add_argument("--single", type=positive(int), default=40, help="requests of the single client")
    parser.add_argument("--length", type=positive(int), default=200, help="characters per request")
    parser.add_argument("--timeout", type=positive(float), default=30.0, help="seconds per request")
    parser.add_argument("--no-append", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()

    model_cfg, _ = default_configs("cpu")
    vocab = textlab.CharVocab.from_text(ALPHABET)
    model = textlab.build_model(replace(model_cfg, vocab_size=len(vocab)))
    with tempfile.TemporaryDirectory() as folder:
        textlab.save_checkpoint(Path(folder) / "bench.pt", model, vocab)
        port = free_port()
        server = start_server(Path(folder), port)
        url = f"http://127.0.0.1:{port}/"
        try:
            asyncio.run(load(url, 4, 2, args.length, args.timeout))  # warm-up
            single = asyncio.run(load(url, 1, args.single, args.length, args.timeout))
            many = asyncio.run(load(url, args.clients, args.requests, args.length, args.timeout))
        finally:
            server.send_signal(signal.SIGTERM)  # a clean shutdown, as Ctrl-C
            server.wait(timeout=30)

    rows = [[f"{r['clients']} client{'s' if r['clients'] > 1 else ''}", r["requests"], r["errors"],
             f"{r['req_per_s']:.1f}", f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}", f"{r['p99_ms']:.0f}",
             f"{r['chars_per_s']:,.0f}", f"{r['mean_batch_rows']:.1f}", f"{r['wall_s']:.1f}"]
            for r in (single, many)]
    body = table(["load", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "chars/s",
                  "rows/batch", "wall s"], rows)
    ratio = many["chars_per_s"] / single["chars_per_s"]
    body += (f"\n\n{args.length} characters per request, default CharLSTM "
             f"({textlab.count_parameters(model):,} parameters); server exit status {server.returncode} "
             f"after SIGTERM. {args.clients} clients / 1 client: {ratio:.1f}× the characters per second, "
             f"p50 latency {many['p50_ms'] / single['p50_ms']:.1f}× as long.")
    print(body)
    if not args.no_append:
        command = "python benchmarks/bench_serve.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
        append_results("bench_serve: loopback load test", command, body)
    print("RESULT " + json.dumps({"single": single, "concurrent": many, "throughput_ratio": ratio,
                                  "server_exit": server.returncode}))
    if single["errors"] or many["errors"]:
        raise SystemExit(f"errors under load: {many['error_kinds'] or single['error_kinds']}")


if __name__ == "__main__":
    run_main(main)
