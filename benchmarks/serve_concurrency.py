"""Throughput and latency of ``bayling-local serve``: N clients at once against one at a time.

Starts the server in a subprocess on a free loopback port (translation memory off, so every
request is decoded), then, for each round, sends the same N mixed requests (half OpenAI chat,
half LibreTranslate /translate, greedy) once from a single client one after another and once
from N client threads all at once; the two modes alternate round by round so machine noise
hits both alike. Reports medians over rounds of requests/s, generated tokens/s (from the chat
answers' usage) and p50/p99 latency, the speedup, and draws a PNG.

    python benchmarks/serve_concurrency.py --requests 64 --parallel 8 --rounds 3 \
        --plot docs/serve_concurrency.png
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "bayling_local" / "demo" / "bayling-demo.gguf"
SUBJECTS = ("the happy cat", "the old dog", "the teacher", "the small bird")
OBJECTS = ("the red apple", "the blue ball", "the green book", "the yellow hat")
TARGETS = {"zh": "Chinese", "de": "German", "fr": "French", "ja": "Japanese"}


def jobs(count: int, model: str, max_tokens: int) -> list[dict]:
    out = []
    codes = list(TARGETS)
    for i in range(count):
        sentence = f"{SUBJECTS[i % 4].capitalize()} finds {OBJECTS[(i // 4) % 4]} in the garden."
        target = codes[(i // 16) % 4]
        if i % 2:
            out.append(
                {"path": "/translate", "body": {"q": sentence, "source": "en", "target": target}}
            )
        else:
            prompt = f"Provide the {TARGETS[target]} translation for this sentence: {sentence}"
            out.append(
                {
                    "path": "/v1/chat/completions",
                    "body": {
                        "model": model,
                        "temperature": 0,
                        "max_tokens": max_tokens,
                        "messages": [{"role": "user", "content": prompt}],
                    },
                }
            )
    return out


def send(client: httpx.Client, url: str, job: dict) -> tuple[float, int]:
    """(latency in seconds, generated tokens or 0 where the API does not say)."""
    start = time.perf_counter()
    response = client.post(url + job["path"], json=job["body"])
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    usage = response.json().get("usage") or {}
    return elapsed, int(usage.get("completion_tokens", 0))


def sequential(url: str, work: list[dict]) -> tuple[float, list[float], int]:
    with httpx.Client(timeout=600) as client:
        start = time.perf_counter()
        results = [send(client, url, job) for job in work]
        return time.perf_counter() - start, [r[0] for r in results], sum(r[1] for r in results)


def concurrent(url: str, work: list[dict], clients: int) -> tuple[float, list[float], int]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    with httpx.Client(timeout=600, limits=limits) as client, ThreadPoolExecutor(clients) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda job: send(client, url, job), work))
        return time.perf_counter() - start, [r[0] for r in results], sum(r[1] for r in results)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "BAYLING_LOCAL_CONFIG_DIR": str(home / "config"),
        "BAYLING_LOCAL_DATA_DIR": str(home / "data"),
        "BAYLING_LOCAL_THREADS": str(args.threads),
    }
    command = [
        sys.executable, "-m", "bayling_local", "serve", "--model", str(args.model),
        "--port", str(port), "--parallel", str(args.parallel), "--queue", str(args.requests),
        "--no-memory", "-q",
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not start")


def plot(path: Path, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = ["one client, sequential", f"{summary['requests']} clients at once"]
    keys = ["sequential", "concurrent"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    rps = [summary[k]["requests_per_s"] for k in keys]
    left.bar(modes, rps, color=["#999999", "#3b7dd8"])
    left.set_ylabel("requests / s (median of rounds)")
    left.set_title(f"throughput: {summary['speedup']:.2f}x")
    for x, value in enumerate(rps):
        left.text(x, value, f"{value:.1f}", ha="center", va="bottom")
    width = 0.35
    for offset, (name, key) in enumerate((("p50", "p50_s"), ("p99", "p99_s"))):
        values = [summary[k][key] for k in keys]
        xs = [x + (offset - 0.5) * width for x in range(2)]
        right.bar(xs, values, width, label=name)
    right.set_xticks(range(2), modes)
    right.set_ylabel("latency per request (s)")
    right.set_title("latency")
    right.legend()
    fig.suptitle(
        f"bayling-local serve, {summary['model']}, --parallel {summary['parallel']}, "
        f"{summary['requests']} mixed requests",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEMO), help="GGUF path or store name")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads of the server")
    parser.add_argument("--max-tokens", type=int, default=32, help="chat replies' token cap")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plot", type=Path, help="write a PNG here")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        proc, url = start_server(args, Path(home))
        try:
            model = httpx.get(url + "/v1/models").json()["data"][0]["id"]
            work = jobs(args.requests, model, args.max_tokens)
            sequential(url, work[:4])  # warm-up: page the model in, load the detector
            runs: dict[str, list[tuple[float, list[float], int]]] = {
                "sequential": [],
                "concurrent": [],
            }
            for _ in range(args.rounds):
                runs["sequential"].append(sequential(url, work))
                runs["concurrent"].append(concurrent(url, work, args.requests))
        finally:
            proc.terminate()
            proc.wait(60)

    summary: dict = {
        "model": Path(str(args.model)).name,
        "requests": args.requests,
        "parallel": args.parallel,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
    }
    for mode, results in runs.items():
        walls = [r[0] for r in results]
        summary[mode] = {
            "wall_s": round(statistics.median(walls), 3),
            "requests_per_s": round(statistics.median(args.requests / w for w in walls), 2),
            "chat_tokens_per_s": round(statistics.median(r[2] / r[0] for r in results), 1),
            "p50_s": round(statistics.median(percentile(r[1], 50) for r in results), 3),
            "p99_s": round(statistics.median(percentile(r[1], 99) for r in results), 3),
        }
    summary["speedup"] = round(
        summary["concurrent"]["requests_per_s"] / summary["sequential"]["requests_per_s"], 2
    )
    if args.plot:
        plot(args.plot, summary)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"model {summary['model']}, --parallel {args.parallel}, {args.requests} requests, "
          f"median of {args.rounds} rounds")  # fmt: skip
    print(f"{'mode':<28}{'req/s':>8}{'chat tok/s':>12}{'p50 s':>9}{'p99 s':>9}")
    for mode, label in (
        ("sequential", "one client, sequential"),
        ("concurrent", f"{args.requests} at once"),
    ):
        row = summary[mode]
        print(f"{label:<28}{row['requests_per_s']:>8}{row['chat_tokens_per_s']:>12}"
              f"{row['p50_s']:>9}{row['p99_s']:>9}")  # fmt: skip
    print(f"speedup {summary['speedup']}x")


if __name__ == "__main__":
    main()
