"""Translation quality of a GGUF, measured the way the app runs it.

Each test sentence goes through :class:`bayling_local.engine.Engine` with BayLing's own
translation instruction and greedy decoding -- llama.cpp, the prompt format chosen from the
GGUF, the same stop tokens -- and BLEU is computed with sacrebleu per target language, with
that language's tokenizer (``zh`` for Chinese, ``ja-mecab`` for Japanese, ``13a`` otherwise).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bayling_local.errors import InputError

_TOKENIZERS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}


@dataclass(frozen=True)
class EvalItem:
    source_lang: str
    target_lang: str
    source: str
    reference: str
    instruction_lang: str = "en"


def write_eval_set(path: Path, items: Sequence[EvalItem]) -> None:
    from bayling_local.atomic import write_text_atomic

    write_text_atomic(
        path, "".join(json.dumps(asdict(item), ensure_ascii=False) + "\n" for item in items)
    )


def read_eval_set(path: Path | str) -> list[EvalItem]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(EvalItem(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"{path}:{number}: not a test item ({exc})") from None
    return items


def bleu_tokenizer(lang: str) -> str:
    """sacrebleu's tokenizer for a target language (character-level where mecab is missing)."""
    name = _TOKENIZERS.get(lang, "13a")
    if name.endswith("mecab"):
        try:
            from sacrebleu.metrics import BLEU

            BLEU(tokenize=name).corpus_score(["a"], [["a"]])
        except Exception:  # sacrebleu[ja] / [ko] not installed
            return "char"
    return name


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], lang: str) -> float:
    from sacrebleu.metrics import BLEU

    return (
        BLEU(tokenize=bleu_tokenizer(lang)).corpus_score(list(hypotheses), [list(references)]).score
    )


@dataclass
class BleuReport:
    """BLEU per target language, their mean, and every output."""

    by_target: dict[str, float] = field(default_factory=dict)
    tokenizers: dict[str, str] = field(default_factory=dict)
    exact: float = 0.0  # share of outputs equal to the reference
    outputs: list[dict[str, str]] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return sum(self.by_target.values()) / len(self.by_target) if self.by_target else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "bleu_mean": round(self.mean, 2),
            "bleu_by_target": {k: round(v, 2) for k, v in sorted(self.by_target.items())},
            "tokenizers": self.tokenizers,
            "exact_match": round(self.exact, 4),
            "sentences": len(self.outputs),
            "outputs": self.outputs,
        }

    def text(self) -> str:
        per = ", ".join(f"{lang} {score:.1f}" for lang, score in sorted(self.by_target.items()))
        return (
            f"BLEU {self.mean:.1f} (mean over target languages: {per}); "
            f"{self.exact:.0%} of {len(self.outputs)} outputs match the reference exactly"
        )


def evaluate_gguf(
    model: Path | str, items: Sequence[EvalItem], *, threads: int | None = None
) -> BleuReport:
    """Translate every item greedily with the app's engine and score it."""
    from bayling_local.languages import resolve
    from bayling_local.runtime import load_runtime
    from bayling_local.settings import Settings
    from bayling_local.translate import translation_messages

    # The built-in defaults, not the user's settings file: scores must not depend on it.
    settings = Settings(threads=threads, max_tokens=128)
    report = BleuReport()
    grouped: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    with load_runtime(settings, model=Path(model)) as runtime:
        engine, sampling = runtime.engine, runtime.sampling.translation
        for item in items:
            messages = translation_messages(
                item.source,
                resolve(item.target_lang),
                instruction_lang=item.instruction_lang,  # type: ignore[arg-type]
            )
            output = engine.chat(messages, sampling).result().strip()
            hyps, refs = grouped[item.target_lang]
            hyps.append(output)
            refs.append(item.reference)
            report.outputs.append({**asdict(item), "output": output})
    for lang, (hyps, refs) in grouped.items():
        report.by_target[lang] = corpus_bleu(hyps, refs, lang)
        report.tokenizers[lang] = bleu_tokenizer(lang)
    if report.outputs:
        report.exact = sum(o["output"] == o["reference"] for o in report.outputs) / len(
            report.outputs
        )
    return report
