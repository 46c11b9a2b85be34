"""The BayLing models this project knows: names, hub ids, bases, prompt formats, contexts.

One table, read by the model store (``models pull``), by ``convert/`` (to stamp the right
metadata into a GGUF) and by :func:`bayling_local.prompts.select_format` (to recognise a model
from its GGUF metadata). Facts come from the field guide, section 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class KnownModel:
    """One published BayLing checkpoint."""

    name: str
    hub_id: str
    base: str
    prompt_format: str
    context: int
    tokenizer: str  # "spm" (LLaMA SentencePiece) or "bpe" (Llama-3)
    params_b: float
    licence: str
    recommended_quant: str = "Q4_K_M"
    delta_of: str | None = None  # v1.0 checkpoints are weight deltas over this base
    aliases: tuple[str, ...] = ()

    @property
    def is_delta(self) -> bool:
        return self.delta_of is not None


MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        name="bayling-2-8b",
        hub_id="ICTNLP/bayling-2-llama-3-8b",
        base="Llama-3-8B-Instruct",
        prompt_format="bayling-3",
        context=8192,
        tokenizer="bpe",
        params_b=8.0,
        licence="llama3",
        aliases=("bayling-2-llama-3-8b", "ICTNLP/bayling-llama-3-8b", "bayling-llama-3-8b"),
    ),
    KnownModel(
        name="bayling-2-7b",
        hub_id="ICTNLP/bayling-2-7b",
        base="Llama-2-7B-Chat",
        prompt_format="bayling",
        context=4096,
        tokenizer="spm",
        params_b=6.7,
        licence="llama2",
    ),
    KnownModel(
        name="bayling-2-13b",
        hub_id="ICTNLP/bayling-2-13b",
        base="Llama-2-13B-Chat",
        prompt_format="bayling",
        context=4096,
        tokenizer="spm",
        params_b=13.0,
        licence="llama2",
    ),
    KnownModel(
        name="bayling-13b-v1.1",
        hub_id="ICTNLP/bayling-13b-v1.1",
        base="LLaMA-13B",
        prompt_format="bayling",
        context=2048,
        tokenizer="spm",
        params_b=13.0,
        licence="gpl-3.0 (LLaMA licence for the weights)",
    ),
    KnownModel(
        name="bayling-7b-v1.0",
        hub_id="ICTNLP/bayling-7b-diff",
        base="LLaMA-7B",
        prompt_format="bayling",
        context=2048,
        tokenizer="spm",
        params_b=6.7,
        licence="gpl-3.0 (LLaMA licence for the weights)",
        delta_of="LLaMA-7B",
    ),
    KnownModel(
        name="bayling-13b-v1.0",
        hub_id="ICTNLP/bayling-13b-diff",
        base="LLaMA-13B",
        prompt_format="bayling",
        context=2048,
        tokenizer="spm",
        params_b=13.0,
        licence="gpl-3.0 (LLaMA licence for the weights)",
        delta_of="LLaMA-13B",
    ),
)


def _keys(model: KnownModel) -> set[str]:
    return {k.lower() for k in (model.name, model.hub_id, *model.aliases)}


def lookup(name: str) -> KnownModel | None:
    """The known model with this short name, hub id or alias (case-insensitive), if any."""
    wanted = name.strip().lower()
    for model in MODELS:
        if wanted in _keys(model):
            return model
    return None


def require(name: str) -> KnownModel:
    """Like :func:`lookup`, but an unknown name is an error that suggests close names."""
    model = lookup(name)
    if model is not None:
        return model
    names = [m.name for m in MODELS]
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(names)}"
    raise UsageError(f"unknown model {name!r}{hint}")


def find_known_model(metadata: Mapping[str, Any]) -> KnownModel | None:
    """Recognise a GGUF as a known BayLing model from the identity fields convert/ writes.

    Matches whole names and hub ids exactly; never a substring of a file name.
    """
    for key in ("general.source.huggingface.repository", "general.source.url", "general.name"):
        value = metadata.get(key)
        if not isinstance(value, str):
            continue
        value = value.strip().removeprefix("https://huggingface.co/")
        model = lookup(value)
        if model is not None:
            return model
    return None
