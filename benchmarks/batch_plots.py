"""Plots of the issue-10 measurements from the JSON that the benchmarks print.

python benchmarks/batch_plots.py single OUT.png NAME=RESULT.json [NAME=RESULT.json ...]
    # vs_llama_bench.py single-sequence results: pp and tg ratios per model and threads
python benchmarks/batch_plots.py translate OUT.png NAME=RESULT.json [...]
    # bayling-local bench translate --json results (or batch_translate.py lists)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(specs: list[str]) -> list[tuple[str, object]]:
    out = []
    for spec in specs:
        name, path = spec.split("=", 1)
        out.append((name, json.loads(Path(path).read_text())))
    return out


def single(out: Path, specs: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = _load(specs)
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [name.replace(", ", ",\n") for name, _ in runs]
    x = range(len(runs))
    pp = [r["pp_ratio"] for _, r in runs]  # type: ignore[index]
    tg = [r["tg_ratio"] for _, r in runs]  # type: ignore[index]
    ax.bar([i - 0.2 for i in x], pp, 0.4, label="pp512 ratio")
    ax.bar([i + 0.2 for i in x], tg, 0.4, label="tg128 ratio")
    for i in x:
        ax.text(i - 0.2, pp[i], f"{pp[i]:.2f}", ha="center", va="bottom", fontsize=8)
        ax.text(i + 0.2, tg[i], f"{tg[i]:.2f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(0.97, color="grey", linestyle="--", label="goal 0.97")
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylim(0, max(1.15, max(pp + tg) + 0.1))
    ax.set_ylabel("bayling-local bench / llama-bench (medians)")
    ax.set_title("One sequence: ours vs llama-bench, same GGUF and threads")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def translate(out: Path, specs: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for name, data in _load(specs):
        for case in data if isinstance(data, list) else [data]:
            label = f"{name}\nbeam {case['beam']}" if case["beam"] > 1 else name
            rows.append((label, case))
    fig, ax = plt.subplots(figsize=(9, 4))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [c["sequential_sps"] for _, c in rows], 0.4, label="one at a time")
    ax.bar([i + 0.2 for i in x], [c["batched_sps"] for _, c in rows], 0.4, label="batched")
    for i, (_, c) in zip(x, rows):
        ax.text(
            i + 0.2,
            c["batched_sps"],
            f"{c['ratio']:.2f}x\n(N={c['parallel']})",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(list(x), [label for label, _ in rows], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("segments per second (median, log scale)")
    ax.set_title("WMT22 en→zh translation: batched vs one at a time")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main() -> None:
    kind, out, *specs = sys.argv[1:]
    {"single": single, "translate": translate}[kind](Path(out), specs)


if __name__ == "__main__":
    main()
