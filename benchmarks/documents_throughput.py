"""A document's throughput and peak memory: sequential vs batched decoding, and a cached re-run.

Translates one generated Markdown document (N paragraphs of sentences the bundled demo model
knows, so it translates them and stops on its own) from English into German with
``bayling_local.documents.translate_document``, each configuration in a fresh process:

- ``sequential``: the batch engine with ``parallel=1`` (one segment at a time);
- ``batched``: ``parallel=P`` segments decoded together;
- ``cached``: the batched run again on the translation memory it filled (nothing to decode).

Runs alternate (sequential, batched, sequential, ...) so machine noise hits both alike; the
medians of segments/s and their ratio are printed, with each process's peak RSS against the
goal *model file + KV cache + 300 MB*. ``--plot FILE.png`` draws both.

    python benchmarks/documents_throughput.py --paragraphs 48 --parallel 8 --runs 3 \
        --plot docs/benchmarks/documents_throughput.png
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SUBJECTS = ["the cat", "the doctor", "the teacher", "the child", "the dog", "the farmer"]
ADJECTIVES = ["happy", "old", "young", "tired"]
VERBS = ["finds", "sees", "buys", "carries"]
OBJECTS = ["apple", "ball", "book", "hat"]
COLOURS = ["red", "blue", "green", "yellow"]
PLACES = ["in the garden", "at the market", "in the house", "at school"]


def make_document(paragraphs: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    out = ["# The small world", ""]
    for _ in range(paragraphs):
        subject = rng.choice(SUBJECTS).replace("the ", f"the {rng.choice(ADJECTIVES)} ")
        sentence = (
            f"{subject.capitalize()} {rng.choice(VERBS)} the {rng.choice(COLOURS)} "
            f"{rng.choice(OBJECTS)} {rng.choice(PLACES)}."
        )
        out += [sentence, ""]
    return "\n".join(out)


def worker(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from bayling_local.documents import DocumentOptions, TranslationMemory, translate_document
    from bayling_local.engine import Engine, EngineConfig
    from bayling_local.languages import resolve
    from bayling_local.translate import TRANSLATION_SAMPLING, Translator

    engine = Engine(EngineConfig(model_path=Path(args.gguf), threads=args.threads))
    translator = Translator(
        engine, replace(TRANSLATION_SAMPLING, max_tokens=64), parallel=args.worker_parallel
    )
    memory = TranslationMemory(args.memory) if args.memory else None
    options = DocumentOptions(target=resolve("de"), source=resolve("en"), memory=memory)
    started = time.perf_counter()
    summary, _ = translate_document(args.document, args.output, translator, options)
    seconds = time.perf_counter() - started
    decoder = engine.decoder
    result = {
        "seconds": seconds,
        "segments": summary.segments,
        "translated": summary.translated,
        "cached": summary.cached,
        "generated_tokens": summary.generated_tokens,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "model_bytes": Path(args.gguf).stat().st_size,
        "kv_bytes": engine.kv_bytes_per_cell() * decoder.cells,
        "kv_cells": decoder.cells,
    }
    translator.close()
    print(json.dumps(result))


def run_worker(args, document: Path, parallel: int, memory: Path | None) -> dict:
    command = [
        sys.executable, __file__, "--worker", "--gguf", str(args.gguf),
        "--threads", str(args.threads), "--worker-parallel", str(parallel),
        "--document", str(document), "--output", str(document.with_suffix(".de.md")),
    ]  # fmt: skip
    if memory is not None:
        command += ["--memory", str(memory)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--gguf", default=str(REPO / "bayling_local" / "demo" / "bayling-demo.gguf")
    )
    parser.add_argument("--paragraphs", type=int, default=48)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--plot")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-parallel", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--document", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        document = Path(tmp) / "world.md"
        document.write_text(make_document(args.paragraphs), encoding="utf-8")
        rows: dict[str, list[dict]] = {"sequential": [], "batched": [], "cached": []}
        for run in range(args.runs):
            rows["sequential"].append(run_worker(args, document, 1, None))
            memory = Path(tmp) / f"tm{run}.sqlite3"
            rows["batched"].append(run_worker(args, document, args.parallel, memory))
            rows["cached"].append(run_worker(args, document, args.parallel, memory))
            assert rows["cached"][-1]["translated"] == 0
    report = {}
    for name, results in rows.items():
        seconds = statistics.median(r["seconds"] for r in results)
        segments = results[0]["segments"]
        rss = max(r["peak_rss_bytes"] for r in results)
        goal = results[0]["model_bytes"] + max(r["kv_bytes"] for r in results) + 300 * 2**20
        report[name] = {
            "segments": segments,
            "median_seconds": round(seconds, 3),
            "segments_per_s": round(segments / seconds, 2),
            "tokens_per_s": round(
                statistics.median(r["generated_tokens"] / r["seconds"] for r in results), 1
            ),
            "peak_rss_mb": round(rss / 2**20, 1),
            "model_mb": round(results[0]["model_bytes"] / 2**20, 1),
            "kv_mb": round(max(r["kv_bytes"] for r in results) / 2**20, 1),
            "goal_mb": round(goal / 2**20, 1),
        }
    report["batched_over_sequential"] = round(
        report["batched"]["segments_per_s"] / report["sequential"]["segments_per_s"], 2
    )
    print(json.dumps(report, indent=2))
    if args.plot:
        plot(report, Path(args.plot), args)


def plot(report: dict, path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["sequential", "batched", "cached"]
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(10, 4))
    values = [report[n]["segments_per_s"] for n in names]
    bars = speed.bar(names, values, color=["#888", "#3a7", "#37a"])
    speed.bar_label(bars, fmt="%.1f")
    speed.set_ylabel("segments / s")
    speed.set_title(
        f"{Path(args.gguf).name}: {report['batched']['segments']} segments, "
        f"parallel {args.parallel}, {args.threads} thread(s)",
        fontsize=10,
    )
    used = [report[n]["peak_rss_mb"] for n in names]
    goal = report["batched"]["goal_mb"]
    bars = memory.bar(names, used, color="#a73")
    memory.bar_label(bars, fmt="%.0f")
    memory.axhline(
        goal, color="k", linestyle="--", label=f"goal: model + KV + 300 MB = {goal:.0f} MB"
    )
    memory.set_ylabel("peak RSS (MB)")
    memory.set_ylim(0, goal * 1.25)
    memory.legend(loc="upper left")
    memory.set_title("peak memory of the process")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
