"""Decode speed as a share of the memory-bandwidth bound.

A decode step of one sequence reads every weight once (the token embedding excepted: one row of
it), so tokens/s can be at most ``bandwidth / bytes read per token``. This script measures the
read bandwidth of this machine with 1 and 2 threads (NumPy sums over a buffer far larger than
the caches, one buffer per thread) and, for each GGUF given with its measured tg tokens/s,
prints the bytes per token and the share of the bound reached:

    python benchmarks/batch_bandwidth.py --model M.gguf:THREADS:TPS [--model ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np

BUFFER = 512 * 2**20  # bytes per thread: well beyond any last-level cache


def read_bandwidth(threads: int, repeats: int = 5) -> float:
    """Bytes/s read by ``threads`` threads summing their own buffers at once (median)."""
    buffers = [np.ones(BUFFER // 8, dtype=np.float64) for _ in range(threads)]
    for buf in buffers:
        buf.sum()  # touch every page first
    rates = []
    for _ in range(repeats):
        barrier = threading.Barrier(threads + 1)

        def work(buf: np.ndarray, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            buf.sum()  # NumPy releases the GIL in the reduction

        workers = [threading.Thread(target=work, args=(b,)) for b in buffers]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        rates.append(threads * BUFFER / (time.perf_counter() - start))
    return statistics.median(rates)


def bytes_per_token(gguf_path: Path) -> int:
    """Weight bytes one decode step reads: every tensor but the token embedding (one row)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    return sum(int(t.n_bytes) for t in reader.tensors if t.name != "token_embd.weight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="GGUF:THREADS:TOKENS_PER_S (a measured single-sequence decode speed)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bandwidth = {n: read_bandwidth(n) for n in (1, 2)}
    rows = []
    for spec in args.model:
        path, threads, tps = spec.rsplit(":", 2)
        size = bytes_per_token(Path(path))
        bound = bandwidth[int(threads)] / size
        rows.append(
            {
                "model": Path(path).name,
                "threads": int(threads),
                "bytes_per_token": size,
                "tg_tps": float(tps),
                "bound_tps": round(bound, 1),
                "share": round(float(tps) / bound, 3),
            }
        )
    result = {"bandwidth_gb_s": {n: round(b / 1e9, 2) for n, b in bandwidth.items()}, "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"read bandwidth: 1 thread {result['bandwidth_gb_s'][1]} GB/s, 2 threads "
        f"{result['bandwidth_gb_s'][2]} GB/s"
    )
    for row in rows:
        print(
            f"{row['model']}, {row['threads']} thread(s): {row['bytes_per_token'] / 1e6:.1f} MB "
            f"per token, bound {row['bound_tps']} t/s, measured {row['tg_tps']} t/s: "
            f"{row['share']:.0%}"
        )


if __name__ == "__main__":
    main()
