"""PNG charts (matplotlib, drawn off-screen): run comparisons and the report card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .textio import require

if TYPE_CHECKING:
    from .quant import ReportCard

_COLOURS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed), or one line naming the extra."""
    matplotlib = require("matplotlib", "charts")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    from ..atomic import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    pyplot().close(fig)
    return path


def grouped_bars(
    ax: Any,
    groups: Sequence[str],
    series: Sequence[str],
    values: Mapping[tuple[str, str], float | None],
    *,
    ylabel: str,
    title: str,
    fmt: str = "{:.1f}",
) -> None:
    """Bars of ``values[(series, group)]``: one cluster per group, one colour per series."""
    width = 0.8 / max(1, len(series))
    for k, name in enumerate(series):
        xs, ys = [], []
        for g, group in enumerate(groups):
            value = values.get((name, group))
            if value is not None:
                xs.append(g - 0.4 + width * (k + 0.5))
                ys.append(value)
        bars = ax.bar(xs, ys, width, label=name, color=_COLOURS[k % len(_COLOURS)])
        if len(groups) * len(series) <= 24:
            ax.bar_label(
                bars,
                labels=[_label(fmt, v) for v in ys],
                fontsize=7,
                padding=1,
                rotation=90 if len(series) >= 3 else 0,
            )
    low, high = ax.get_ylim()
    if high > 0:  # room above the tallest bar for its label
        ax.set_ylim(low, high + 0.14 * (high - low))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(
        groups, rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center"
    )
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def runs_chart(
    groups: Sequence[str],
    series: Sequence[str],
    metrics: dict[str, dict[tuple[str, str], float | None]],
    path: Path,
    title: str,
) -> Path:
    """One panel per metric (BLEU, chrF++, COMET where any run has it)."""
    plt = pyplot()
    panels = [m for m, values in metrics.items() if any(v is not None for v in values.values())]
    width = max(6.0, 2.0 + 0.42 * len(groups) * max(1, len(series)))
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(min(width, 16), 3.2 * len(panels)), squeeze=False
    )
    for ax, metric in zip(axes[:, 0], panels):
        fmt = "{:.3f}" if metric == "COMET" else "{:.1f}"
        grouped_bars(ax, groups, series, metrics[metric], ylabel=metric, title=metric, fmt=fmt)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def report_card_chart(card: ReportCard, path: Path) -> Path:
    """Three panels per direction and quantization: score drop, changed segments, KL."""
    plt = pyplot()
    quants = [q for q in card.quants if q != card.baseline] or list(card.quants)
    metric = "chrF++" if card.metric == "chrf" else "BLEU"
    delta = {
        (c.quant, c.direction): -(c.chrf_drop if card.metric == "chrf" else c.bleu_drop)
        for c in card.cells
    }
    changed = {(c.quant, c.direction): 100 * c.changed for c in card.cells}
    kl = {(c.quant, c.direction): c.kl for c in card.cells}
    fig, axes = plt.subplots(
        3, 1, figsize=(max(6.5, 1.2 * len(card.directions) * len(quants) / 2 + 3), 9)
    )
    grouped_bars(
        axes[0],
        card.directions,
        quants,
        delta,
        ylabel=f"{metric} change vs {card.baseline}",
        title=f"{metric} against {card.baseline} (below 0: lost; dashed: flag threshold)",
        fmt="{:+.1f}",
    )
    axes[0].axhline(-card.threshold, color="#C44E52", linestyle="--", linewidth=1)
    low, high = axes[0].get_ylim()
    axes[0].set_ylim(
        min(low, -1.15 * card.threshold), max(high + 0.1 * card.threshold, 0.3 * card.threshold)
    )
    axes[0].axhline(0, color="black", linewidth=0.6)
    grouped_bars(
        axes[1],
        card.directions,
        quants,
        changed,
        ylabel="% segments",
        title=f"Segments translated differently from {card.baseline}",
        fmt="{:.1f}",
    )
    grouped_bars(
        axes[2],
        card.directions,
        quants,
        kl,
        ylabel="nats",
        title=f"Mean KL({card.baseline} || quant) of next-token distributions on the sources",
        fmt="{:.2g}",
    )
    labels = [f"{q} ({card.sizes[q] / 2**20:.1f} MiB)" for q in quants]
    handles = axes[0].get_legend_handles_labels()[0]
    axes[0].legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"Report card: {Path(card.model).name}", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _label(fmt: str, value: float) -> str:
    """A bar's label; a zero is ``0`` (not ``-0.0`` or ``+0.0``)."""
    text = fmt.format(value)
    return "0" if float(text.replace("%", "")) == 0 else text
