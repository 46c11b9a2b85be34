"""Several runs side by side: a Markdown table and a bar chart.

Runs are grouped by test set (direction plus the references' fingerprint), so two
quantizations, beam against greedy, context on against off, or our model against BayLing's
published outputs line up on the same segments. A run's label is its ``label`` (default: the
folder's name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .runs import RunRecord


@dataclass
class Comparison:
    records: list[RecordRow]
    test_sets: list[str]
    labels: list[str]
    notes: list[str]


@dataclass
class RecordRow:
    record: RunRecord
    test_set: str


def _direction(test_set: str) -> str:
    return test_set.split(":", 1)[0]


def build(records: Sequence[RunRecord]) -> Comparison:
    if not records:
        raise UsageError("give at least one run folder to compare")
    test_sets = list(dict.fromkeys(r.test_set for r in records))
    # Directions are enough to tell test sets apart unless two share a direction.
    directions = [_direction(t) for t in test_sets]
    short = {t: (_direction(t) if directions.count(_direction(t)) == 1 else t) for t in test_sets}
    labels = list(dict.fromkeys(r.label for r in records))
    notes = []
    for test_set in test_sets:
        tokenizers = {r.scores.get("tokenizer") for r in records if r.test_set == test_set}
        if len(tokenizers) > 1:
            notes.append(
                f"{short[test_set]}: BLEU was computed with different tokenizers "
                f"({', '.join(sorted(str(t) for t in tokenizers))}); those BLEU scores are not comparable"
            )
    seen: dict[tuple[str, str], Path] = {}
    for r in records:
        key = (r.label, r.test_set)
        if key in seen:
            raise UsageError(
                f"{seen[key]} and {r.path} have the same label {r.label!r} on the same test set; "
                'rename one (its run.json "label")'
            )
        seen[key] = r.path
    rows = [RecordRow(r, short[r.test_set]) for r in records]
    return Comparison(rows, [short[t] for t in test_sets], labels, notes)


def _fmt(value: object, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, (int, float)) else "–"


def pivot(comparison: Comparison) -> str:
    """Test sets down, runs across (BLEU / chrF++), for runs over several test sets."""
    cells = {(r.record.label, r.test_set): r.record.scores for r in comparison.records}
    head = (
        "| test set | "
        + " | ".join(f"{label} BLEU | {label} chrF++" for label in comparison.labels)
        + " |"
    )
    rule = "| --- |" + " ---: | ---: |" * len(comparison.labels)
    lines = [head, rule]
    for test_set in comparison.test_sets:
        row = [test_set]
        for label in comparison.labels:
            scores = cells.get((label, test_set), {})
            row += [_fmt(scores.get("bleu"), "{:.2f}"), _fmt(scores.get("chrf"), "{:.2f}")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def markdown(comparison: Comparison) -> str:
    """One row per run (what it was and what it scored); a pivot first over several test sets."""
    if len(comparison.test_sets) > 1 and len(comparison.labels) > 1:
        return pivot(comparison) + "\n" + details(comparison)
    return details(comparison)


def details(comparison: Comparison) -> str:
    """One row per run: what it was and what it scored."""
    lines = [
        "| run | test set | model | quant | beam | context | BLEU | chrF++ | COMET | segments/s |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in comparison.records:
        run, scores = row.record.run, row.record.scores
        model = run.get("model") or {}
        decoding = run.get("decoding") or {}
        timing = run.get("timing") or {}
        lines.append(
            f"| {row.record.label} | {row.test_set} | {model.get('name', '–')} | "
            f"{model.get('quantization', '–')} | {decoding.get('beam', '–')} | "
            f"{decoding.get('context', '–')} | {_fmt(scores.get('bleu'), '{:.2f}')} | "
            f"{_fmt(scores.get('chrf'), '{:.2f}')} | {_fmt(scores.get('comet'), '{:.4f}')} | "
            f"{_fmt(timing.get('segments_per_second'), '{:.2f}')} |"
        )
    text = "\n".join(lines) + "\n"
    if comparison.notes:
        text += "\n" + "\n".join(f"Note: {n}." for n in comparison.notes) + "\n"
    return text


def chart(comparison: Comparison, path: Path, title: str = "Runs compared") -> Path:
    from .plots import runs_chart

    metrics: dict[str, dict[tuple[str, str], float | None]] = {
        "BLEU": {},
        "chrF++": {},
        "COMET": {},
    }
    for row in comparison.records:
        key = (row.record.label, row.test_set)
        metrics["BLEU"][key] = row.record.scores.get("bleu")
        metrics["chrF++"][key] = row.record.scores.get("chrf")
        metrics["COMET"][key] = row.record.scores.get("comet")
    return runs_chart(comparison.test_sets, comparison.labels, metrics, path, title)
