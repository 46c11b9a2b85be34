"""Batched vs one-at-a-time translation throughput, greedy and with beams, plotted.

Runs ``bayling-local bench translate`` for each case on the first N lines of a file and draws
segments per second side by side:

    python benchmarks/batch_translate.py --gguf bayling_local/demo/bayling-demo.gguf \\
        --input ../shared/data/wmt22/enzh.src --lines 64 --threads 1 --parallel 8 \\
        --beams 1,5 --plot docs/benchmarks/batch_translate_demo.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def run_case(args: argparse.Namespace, beam: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bayling_local",
            "bench",
            "translate",
            "-m",
            str(args.gguf),
            "-i",
            str(args.input),
            "-t",
            args.target,
            "--lines",
            str(args.lines),
            "--threads",
            str(args.threads),
            "--parallel",
            str(args.parallel),
            "--beam",
            str(beam),
            "--max-tokens",
            str(args.max_tokens),
            "-r",
            str(args.repetitions),
            "--json",
            "-q",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"beam {r['beam']}" for r in results]
    x = range(len(results))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([i - 0.2 for i in x], [r["sequential_sps"] for r in results], 0.4, label="one at a time")
    ax.bar(
        [i + 0.2 for i in x],
        [r["batched_sps"] for r in results],
        0.4,
        label=f"--parallel {results[0]['parallel']}",
    )
    for i, r in zip(x, results):
        ax.text(i + 0.2, r["batched_sps"], f"{r['ratio']:.2f}x", ha="center", va="bottom")
    ax.set_xticks(list(x), labels)
    ax.set_ylabel("segments per second (median)")
    ax.set_title(f"{results[0]['model']}: {results[0]['segments']} WMT22 segments")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--target", default="zh")
    parser.add_argument("--lines", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--beams", default="1,5")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    results = [run_case(args, int(beam)) for beam in args.beams.split(",")]
    print(json.dumps(results, indent=2))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
