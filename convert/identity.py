"""Who a converted model is: its name, source, licence and chat template.

The chat template comes from :mod:`bayling_local.prompts` (the one source of truth for prompt
formats): the registry's format when the checkpoint is a known BayLing model, otherwise the
format that fits the tokenizer (BayLing for SentencePiece, BayLing-3 for Llama-3's vocabulary).
A checkpoint is recognised by exact names only (an explicit ``--name``/``--repo``, the config's
``_name_or_path``, the directory's name, or a Hugging Face cache path), never by substrings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bayling_local.errors import InputError
from bayling_local.prompts import BAYLING, BAYLING3, PromptFormat, get_format
from bayling_local.registry import KnownModel, lookup

from .checkpoint import LlamaSpec
from .vocab import EOT_TEXT, Vocab

_HF_CACHE_DIR = re.compile(r"^models--(?P<org>[^/]+?)--(?P<name>[^/]+)$")


@dataclass(frozen=True)
class Identity:
    """What the GGUF says about the model it holds."""

    name: str
    prompt_format: PromptFormat
    known: KnownModel | None = None
    repository: str | None = None
    licence: str | None = None


def _candidates(directory: Path, spec: LlamaSpec) -> list[str]:
    names: list[str] = []
    if spec.name_or_path:
        names.append(spec.name_or_path)
    names.append(directory.name)
    # ~/.cache/huggingface/hub/models--ICTNLP--bayling-2-7b/snapshots/<hash>
    for part in directory.parts:
        match = _HF_CACHE_DIR.match(part)
        if match:
            names.append(f"{match['org']}/{match['name']}")
    return names


def resolve_identity(
    directory: Path,
    spec: LlamaSpec,
    vocab: Vocab,
    *,
    name: str | None = None,
    repo: str | None = None,
    has_base: bool = False,
) -> Identity:
    """Recognise the checkpoint and choose the GGUF's identity fields and chat template."""
    explicit = [value for value in (name, repo) if value]
    known = next((m for m in map(lookup, explicit) if m is not None), None)
    if known is None:
        known = next((m for m in map(lookup, _candidates(directory, spec)) if m is not None), None)
    if known is not None:
        if known.tokenizer != vocab.kind:
            raise InputError(
                f"{known.name} has a {known.tokenizer.upper()} tokenizer but {directory} has "
                f"a {vocab.kind.upper()} one: this is not {known.name}"
            )
        if known.is_delta and not has_base:
            raise InputError(
                f"{known.name} is a weight delta over {known.delta_of}: pass --base with the "
                f"{known.delta_of} checkpoint"
            )
        return Identity(
            name=name or known.name,
            prompt_format=get_format(known.prompt_format),
            known=known,
            repository=repo or known.hub_id,
            licence=known.licence,
        )
    fmt = BAYLING3 if vocab.kind == "bpe" and EOT_TEXT in vocab.tokens else BAYLING
    return Identity(name=name or directory.resolve().name, prompt_format=fmt, repository=repo)
