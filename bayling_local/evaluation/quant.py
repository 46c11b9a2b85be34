"""The report card: what each quantization of a model costs each language.

The same model at several quantizations translates the same test sets. Each quantization is
scored against the references and against the unquantized (F16) model's own translations:
per language direction, the score drop against F16, the share of segments whose translation
changed, the mean KL divergence of next-token distributions on the source texts (:mod:`.kl`),
the file size and the decoding speed. A direction whose score drops by more than the threshold
is flagged; each direction gets the smallest quantization that stays within it.

Quantization is known to hurt some languages far more than English (arXiv 2407.03211,
2508.20893) and GGUF publishers do not measure it per language: this does, on the user's
machine and test sets.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..languages import Language
from .runs import DecodeOptions, translate_test_set
from .scoring import score
from .textio import write_lines

UNQUANTIZED = ("F32", "F16", "BF16")
METRICS = ("chrf", "bleu")


@dataclass(frozen=True)
class TestSet:
    """One language direction's test set."""

    source: Language
    target: Language
    sources: list[str]
    references: list[str]

    @property
    def direction(self) -> str:
        return f"{self.source.code}-{self.target.code}"


@dataclass
class Cell:
    """One quantization on one direction."""

    quant: str
    direction: str
    bleu: float
    chrf: float
    bleu_vs_f16: float  # BLEU of this quantization's output against F16's output
    changed: float  # share of segments whose translation differs from F16's
    kl: float  # mean KL(F16 || quant) of next-token distributions on the sources, nats
    tokens_per_second: float
    bleu_drop: float = 0.0
    chrf_drop: float = 0.0
    flagged: bool = False


@dataclass
class ReportCard:
    """Everything the card shows, in the order it shows it."""

    model: str
    baseline: str  # the unquantized type the others are compared with
    quants: list[str]  # baseline first
    sizes: dict[str, int]  # bytes per quantization
    directions: list[str]
    cells: list[Cell]
    metric: str
    threshold: float
    recommended: dict[str, str]  # direction -> quantization
    decoding: dict[str, Any]
    segments: dict[str, int]
    tokenizers: dict[str, str]
    signatures: dict[str, str] = field(default_factory=dict)

    def cell(self, quant: str, direction: str) -> Cell:
        return next(c for c in self.cells if c.quant == quant and c.direction == direction)

    def flagged(self) -> list[Cell]:
        return [c for c in self.cells if c.flagged]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cells"] = [asdict(c) for c in self.cells]
        return data


def parse_quants(text: str) -> list[str]:
    """``Q4_K_M,Q8_0`` -> checked names, in the order given, without repeats."""
    from bayling_convert.quantize import resolve_quant_type

    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("give at least one quantization with --quants, e.g. Q4_K_M,Q8_0")
    return list(dict.fromkeys(resolve_quant_type(name).name for name in names))


def prepare_models(
    model: Path,
    quants: Sequence[str],
    workdir: Path,
    *,
    threads: int = 0,
    show_progress: bool = True,
    notify: Callable[[str], None] = lambda _m: None,
) -> tuple[str, dict[str, Path]]:
    """The unquantized baseline and one GGUF per quantization, made in ``workdir``.

    A Hugging Face folder is converted to F16 first (``convert/``); a GGUF is the baseline
    itself (if it is already quantized the card compares against it and says so).
    """
    from bayling_convert import convert_checkpoint, quantize_gguf
    from bayling_local.gguf_file import inspect_gguf

    model = Path(model).expanduser()
    if model.is_dir():
        baseline_path = workdir / "F16.gguf"
        notify(f"converting {model} to F16")
        convert_checkpoint(model, baseline_path, outtype="f16", show_progress=show_progress)
        baseline = "F16"
    elif model.is_file():
        baseline_path = model
        baseline = inspect_gguf(model).quantization
        if baseline not in UNQUANTIZED:
            notify(
                f"note: {model.name} is already quantized ({baseline}); the card compares "
                "against it, not against the unquantized model"
            )
    else:
        raise UsageError(f"model not found: {model} (give a Hugging Face folder or a GGUF file)")
    paths = {baseline: baseline_path}
    for quant in quants:
        if quant in paths:
            continue
        notify(f"quantizing to {quant}")
        paths[quant] = quantize_gguf(
            baseline_path, workdir / f"{quant}.gguf", quant, threads=threads,
            show_progress=show_progress,
        )  # fmt: skip
    return baseline, paths


def report_card(
    model: Path,
    quants: Sequence[str],
    tests: Sequence[TestSet],
    workdir: Path,
    *,
    beam: int = 1,
    parallel: int = 1,
    threads: int | None = None,
    context: int | None = None,
    max_tokens: int = 256,
    metric: str = "chrf",
    threshold: float = 1.0,
    tokenize: str | None = None,
    show_progress: bool = True,
    notify: Callable[[str], None] = lambda _m: None,
    cancel: threading.Event | None = None,
) -> ReportCard:
    """Build the report card of ``model`` at ``quants`` on ``tests`` (GGUFs kept in ``workdir``)."""
    from dataclasses import replace

    from ..engine import Engine, EngineConfig
    from ..progress import progress
    from ..settings import clamp_threads
    from ..translate import TRANSLATION_SAMPLING, Translator
    from .kl import mean_kl, save_reference
    from .scoring import bleu_scorer

    if metric not in METRICS:
        raise UsageError(f"--metric must be one of {', '.join(METRICS)}")
    if not tests:
        raise UsageError("give at least one test set (--test DIRECTION SRC REF)")
    tokenizers = {t.direction: tokenize or _tokenizer(t.target) for t in tests}
    for name in set(tokenizers.values()):
        bleu_scorer(name)  # a missing tokenizer fails now, before hours of translating
    baseline, paths = prepare_models(
        model, quants, workdir, threads=threads or 0, show_progress=show_progress, notify=notify
    )
    order = [baseline, *[q for q in quants if q != baseline]]
    sampling = replace(TRANSLATION_SAMPLING, max_tokens=max_tokens)
    outputs: dict[tuple[str, str], list[str]] = {}
    speeds: dict[tuple[str, str], float] = {}
    kls: dict[tuple[str, str], float] = {}
    scores = {}
    kl_dir = Path(tempfile.mkdtemp(prefix="kl-", dir=workdir))
    total = len(order) * sum(len(t.sources) for t in tests)
    try:
        with progress("Report card", total, quiet=not show_progress) as bar:
            for quant in order:
                bar.update(description=f"Translating ({quant})")
                engine = Engine(
                    EngineConfig(
                        model_path=paths[quant],
                        context=context,
                        threads=clamp_threads(threads)[0],  # never above the cores (#15)
                    )
                )
                translator = Translator(engine, sampling, parallel=parallel)
                try:
                    for test in tests:
                        done = translate_test_set(
                            translator, test.sources, test.target, source=test.source,
                            beam=beam, on_progress=lambda _n: bar.advance(), cancel=cancel,
                        )  # fmt: skip
                        outputs[quant, test.direction] = done.hypotheses
                        write_lines(workdir / f"{quant}.{test.direction}.txt", done.hypotheses)
                        speeds[quant, test.direction] = done.timing.tokens_per_second
                finally:
                    translator.close()
                    engine.close()
                for test in tests:
                    ref_dir = kl_dir / test.direction
                    if quant == baseline:
                        save_reference(paths[quant], test.sources, ref_dir, threads=threads)
                        kls[quant, test.direction] = 0.0
                    else:
                        kls[quant, test.direction] = mean_kl(
                            paths[quant], test.sources, ref_dir, threads=threads
                        )
    finally:
        shutil.rmtree(kl_dir, ignore_errors=True)

    cells = []
    signatures = {}
    for test in tests:
        tok = tokenizers[test.direction]
        base_hyps = outputs[baseline, test.direction]
        for quant in order:
            hyps = outputs[quant, test.direction]
            result = score(hyps, test.references, test.target, tokenize=tok)
            scores[quant, test.direction] = result
            signatures[test.direction] = result.signature
            agreement = score(hyps, base_hyps, test.target, tokenize=tok)
            changed = sum(a != b for a, b in zip(hyps, base_hyps)) / len(hyps)
            cells.append(
                Cell(
                    quant=quant,
                    direction=test.direction,
                    bleu=result.bleu,
                    chrf=result.chrf,
                    bleu_vs_f16=agreement.bleu,
                    changed=round(changed, 4),
                    kl=round(kls[quant, test.direction], 6),
                    tokens_per_second=round(speeds[quant, test.direction], 2),
                )
            )
    for c in cells:
        base = scores[baseline, c.direction]
        c.bleu_drop = round(base.bleu - c.bleu, 4)
        c.chrf_drop = round(base.chrf - c.chrf, 4)
        c.flagged = (c.chrf_drop if metric == "chrf" else c.bleu_drop) > threshold
    sizes = {q: paths[q].stat().st_size for q in order}
    recommended = {}
    for test in tests:
        fitting = [
            q for q in order if not next(c for c in cells if c.quant == q and c.direction == test.direction).flagged
        ]  # fmt: skip
        recommended[test.direction] = min(fitting, key=lambda q: sizes[q]) if fitting else baseline
    from .. import __version__

    return ReportCard(
        model=str(model),
        baseline=baseline,
        quants=order,
        sizes=sizes,
        directions=[t.direction for t in tests],
        cells=cells,
        metric=metric,
        threshold=threshold,
        recommended=recommended,
        decoding={
            **asdict(DecodeOptions(beam=beam, parallel=parallel, max_tokens=max_tokens)),
            "threads": threads,
            "bayling_local": __version__,
        },
        segments={t.direction: len(t.sources) for t in tests},
        tokenizers=tokenizers,
        signatures=signatures,
    )


def _tokenizer(lang: Language) -> str:
    from .scoring import tokenizer_for

    return tokenizer_for(lang)


def format_markdown(card: ReportCard) -> str:
    """The card as Markdown: one row per direction and quantization, then the advice."""
    metric_name = "chrF++" if card.metric == "chrf" else "BLEU"
    lines = [
        f"Model: `{card.model}`; baseline {card.baseline}; flag: {metric_name} drop > "
        f"{card.threshold:g} points; decoding: beam {card.decoding['beam']}, "
        f"parallel {card.decoding['parallel']}.",
        "",
        "| direction | quant | size MiB | BLEU | ΔBLEU | chrF++ | ΔchrF++ | changed | "
        "BLEU vs F16 | KL (nats) | tokens/s | flag |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for direction in card.directions:
        for quant in card.quants:
            c = card.cell(quant, direction)
            lines.append(
                f"| {direction} | {quant} | {card.sizes[quant] / 2**20:.2f} | {c.bleu:.2f} | "
                f"{_signed(-c.bleu_drop)} | {c.chrf:.2f} | {_signed(-c.chrf_drop)} | {c.changed:.0%} | "
                f"{c.bleu_vs_f16:.1f} | {c.kl:.4f} | {c.tokens_per_second:.0f} | "
                f"{'**over**' if c.flagged else ''} |"
            )
    lines += ["", "| direction | use | why |", "| --- | --- | --- |"]
    for direction in card.directions:
        pick = card.recommended[direction]
        over = [c.quant for c in card.cells if c.direction == direction and c.flagged]
        why = (
            f"smallest within {card.threshold:g} {metric_name}"
            + (f"; {', '.join(over)} lose more" if over else "")
            if pick != card.baseline or not over
            else f"every quantization loses more than {card.threshold:g} {metric_name}"
        )
        lines.append(f"| {direction} | {pick} | {why} |")
    return "\n".join(lines) + "\n"


def _signed(value: float) -> str:
    """``+1.05``, ``-0.40``; a zero change is ``0.00`` (never ``-0.00``)."""
    return "0.00" if round(value, 2) == 0 else f"{value:+.2f}"


def load_card(path: Path) -> ReportCard:
    """A card read back from its ``report.json`` (to redraw or re-tabulate it)."""
    import json

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data["cells"] = [Cell(**cell) for cell in data["cells"]]
    return ReportCard(**data)
