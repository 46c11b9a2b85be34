"""Translate a test set with the batch engine, score it, and keep everything in a run folder.

A run folder holds what is needed to trust and compare a score later:

- ``hypotheses.txt``: the translations, one per source line;
- ``scores.json``: BLEU, chrF++ (and COMET) with sacreBLEU's signatures;
- ``run.json``: the model (name, path, quantization, size), the languages, the test files and
  the references' SHA-256 (so :mod:`.compare` knows which runs share a test set), the decoding
  options (beam, parallel, context, max tokens, instruction wording) and the timing.

``eval score --save DIR`` writes the same layout for hypotheses made elsewhere (BayLing's
published outputs), so they compare with our own runs.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Cancelled, UsageError
from ..languages import Language
from .scoring import Scores
from .textio import new_run_dir, write_json, write_lines

if TYPE_CHECKING:
    from ..engine import Engine
    from ..translate import SegmentResult, Translator

RUN_FILE = "run.json"
SCORES_FILE = "scores.json"
HYPOTHESES_FILE = "hypotheses.txt"


@dataclass(frozen=True)
class DecodeOptions:
    """How a test set was decoded (recorded with every run)."""

    beam: int = 1
    parallel: int = 1
    context: int = 0  # earlier (source, translation) pairs given as conversation context
    max_tokens: int = 1024
    instruction_lang: str = "en"


@dataclass
class Timing:
    """What translating the test set cost, wall clock."""

    seconds: float = 0.0
    segments: int = 0
    generated_tokens: int = 0
    prompt_tokens: int = 0

    @property
    def segments_per_second(self) -> float:
        return self.segments / self.seconds if self.seconds > 0 else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "seconds": round(self.seconds, 3),
            "segments": self.segments,
            "generated_tokens": self.generated_tokens,
            "prompt_tokens": self.prompt_tokens,
            "segments_per_second": round(self.segments_per_second, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


@dataclass
class Translated:
    """A test set's translations and what they cost."""

    hypotheses: list[str]
    timing: Timing
    finish_reasons: dict[str, int] = field(default_factory=dict)


def translate_test_set(
    translator: Translator,
    sources: Sequence[str],
    target: Language,
    *,
    source: Language | None = None,
    beam: int = 1,
    context: int = 0,
    on_progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Translated:
    """Translate every line of ``sources`` (one segment each) on the translator's batch engine.

    With ``context`` N > 0 each segment is translated after the N segments before it and their
    translations, as a conversation. To keep several sequences decoding at once the test set is
    cut into ``parallel`` consecutive blocks that advance together, one segment per block per
    step, so each block's context is its own earlier output.
    """
    done_count = 0

    def tick(_index: int, _result: SegmentResult) -> None:
        nonlocal done_count
        done_count += 1
        if on_progress is not None:
            on_progress(done_count)

    start = time.perf_counter()
    if context <= 0:
        results = translator.translate_segments(
            list(sources), target, source=source, beam=beam, on_done=tick, cancel=cancel
        )
    else:
        results = _translate_with_context(
            translator, list(sources), target, source, beam, context, tick, cancel
        )
    seconds = time.perf_counter() - start
    reasons = Counter(r.finish_reason for r in results)
    if reasons.get("cancelled") or (cancel is not None and cancel.is_set()):
        raise Cancelled("translation cancelled")
    timing = Timing(
        seconds=seconds,
        segments=len(results),
        generated_tokens=sum(r.stats.generated_tokens for r in results),
        prompt_tokens=sum(r.stats.prompt_tokens for r in results),
    )
    hypotheses = [" ".join(r.text.split("\n")).strip() for r in results]
    return Translated(hypotheses, timing, dict(reasons))


def _translate_with_context(
    translator: Translator,
    sources: list[str],
    target: Language,
    source: Language | None,
    beam: int,
    context: int,
    tick: Callable[[int, SegmentResult], None],
    cancel: threading.Event | None,
) -> list[SegmentResult]:
    blocks = max(1, min(translator.batch.parallel, len(sources)))
    size = -(-len(sources) // blocks)
    starts = list(range(0, len(sources), size))
    results: list[SegmentResult | None] = [None] * len(sources)
    for step in range(size):
        indices = [s + step for s in starts if s + step < min(s + size, len(sources))]
        histories = []
        for index in indices:
            block_start = index - (index % size) if size else 0
            earlier = range(max(block_start, index - context), index)
            histories.append([(sources[i], results[i].text) for i in earlier])  # type: ignore[union-attr]
        batch = translator.translate_segments(
            [sources[i] for i in indices],
            target,
            source=source,
            beam=beam,
            history=histories,
            on_done=_shifted(tick, indices),
            cancel=cancel,
        )
        for index, result in zip(indices, batch):
            results[index] = result
        if cancel is not None and cancel.is_set():
            break
    return [r for r in results if r is not None]


def _shifted(
    tick: Callable[[int, SegmentResult], None], indices: list[int]
) -> Callable[[int, SegmentResult], None]:
    """``on_done`` for a sub-batch: its k-th segment is test-set segment ``indices[k]``."""

    def done(k: int, result: SegmentResult) -> None:
        tick(indices[k], result)

    return done


def sha256_lines(lines: Sequence[str]) -> str:
    """A fingerprint of a test set's references (the same test set has the same one)."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def model_facts(engine: Engine) -> dict[str, Any]:
    """What identifies the model a run used."""
    info = engine.info
    return {
        "name": engine.model_name,
        "path": str(info.path),
        "quantization": info.quantization,
        "size_bytes": info.size_bytes,
        "prompt_format": engine.prompt_format.name,
    }


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def write_run(
    out: Path | str,
    *,
    kind: str,
    label: str | None,
    source: Language | None,
    target: Language,
    src_file: Path | None,
    ref_file: Path,
    references: Sequence[str],
    hypotheses: Sequence[str],
    scores: Scores,
    model: dict[str, Any] | None = None,
    decoding: DecodeOptions | None = None,
    timing: Timing | None = None,
    extra: dict[str, Any] | None = None,
    folder: Path | None = None,
) -> Path:
    """Write a run folder (``out`` must not exist, unless ``folder`` was already made for it)."""
    from .. import __version__

    folder = folder or new_run_dir(out)
    write_lines(folder / HYPOTHESES_FILE, list(hypotheses))
    write_json(folder / SCORES_FILE, scores.as_dict())
    record: dict[str, Any] = {
        "kind": kind,
        "label": label or folder.name,
        "created": now_iso(),
        "bayling_local": __version__,
        "source": source.code if source else None,
        "target": target.code,
        "direction": f"{source.code if source else '?'}-{target.code}",
        "src_file": str(src_file) if src_file else None,
        "ref_file": str(ref_file),
        "ref_sha256": sha256_lines(references),
        "segments": len(hypotheses),
        "model": model,
        "decoding": asdict(decoding) if decoding else None,
        "timing": timing.as_dict() if timing else None,
    }
    record.update(extra or {})
    write_json(folder / RUN_FILE, record)
    return folder


@dataclass
class RunRecord:
    """A run folder read back for comparison."""

    path: Path
    run: dict[str, Any]
    scores: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.run.get("label") or self.path.name)

    @property
    def test_set(self) -> str:
        """Which test set: the direction plus the first characters of the references' hash."""
        return f"{self.run.get('direction', '?')}:{str(self.run.get('ref_sha256', ''))[:8]}"


def load_run(path: Path | str) -> RunRecord:
    """Read a run folder; anything else is one clear line."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UsageError(
            f"{path} is not a run folder (written by eval translate or eval score --save)"
        )
    records = []
    for name in (RUN_FILE, SCORES_FILE):
        file = path / name
        try:
            records.append(json.loads(file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise UsageError(f"{path} is not a run folder: {name} is missing") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UsageError(f"{file} is damaged (not valid JSON)") from None
    run, scores = records
    if not isinstance(run, dict) or not isinstance(scores, dict) or "bleu" not in scores:
        raise UsageError(f"{path} is not a run folder: its JSON files lack the scores")
    return RunRecord(path, run, scores)
