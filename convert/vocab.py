"""Tokenizer metadata for the GGUF: tokens, scores, types, merges and special ids.

Two tokenizer families cover the BayLing models:

- LLaMA / Llama-2: SentencePiece BPE with byte fallback (``tokenizer.model``), written as
  llama.cpp's ``llama`` tokenizer. Special ids come from the SentencePiece model itself, not
  from ``special_tokens_map.json`` (bayling-7b-diff's map names ``</s>`` as its bos and unk).
- Llama-3: byte-level BPE (``tokenizer.json``) behind Llama-3's pre-tokenizer split, written as
  llama.cpp's ``gpt2`` tokenizer with pre-tokenizer ``llama-bpe``. Its end-of-turn token
  ``<|eot_id|>`` is recorded as the EOT id so llama.cpp stops there as well as at eos.

Anything else is refused: a tokenizer llama.cpp would split differently from the original gives
a model that is silently wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

from bayling_local.errors import InputError

from .checkpoint import LlamaSpec, read_json

TokenizerKind = Literal["spm", "bpe"]


class TokenType(IntEnum):
    """GGUF token types (the same numbers as SentencePiece's piece types)."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


#: Llama-3's pre-tokenizer regex (``tokenizer.json``); llama.cpp implements it as ``llama-bpe``.
LLAMA3_PRETOKENIZER = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

EOT_TEXT = "<|eot_id|>"


@dataclass
class Vocab:
    """Everything the GGUF's ``tokenizer.*`` keys hold."""

    kind: TokenizerKind
    tokens: list[str]
    types: list[int]
    scores: list[float] | None = None
    merges: list[str] = field(default_factory=list)
    bos_id: int | None = None
    eos_id: int | None = None
    unk_id: int | None = None
    pad_id: int | None = None
    eot_id: int | None = None
    add_bos: bool = True
    add_eos: bool = False
    add_space_prefix: bool | None = None
    remove_extra_whitespaces: bool | None = None

    @property
    def ggml_model(self) -> str:
        return "llama" if self.kind == "spm" else "gpt2"

    @property
    def pre(self) -> str | None:
        return "llama-bpe" if self.kind == "bpe" else None

    def pad_to(self, size: int) -> None:
        """Fill ids the tokenizer does not use (embedding rows beyond it) with unused tokens."""
        if len(self.tokens) > size:
            raise InputError(
                f"the tokenizer has {len(self.tokens)} tokens but the model's embedding has only "
                f"{size} rows: tokenizer and weights do not belong together"
            )
        for index in range(len(self.tokens), size):
            self.tokens.append(f"[PAD{index}]")
            self.types.append(TokenType.UNUSED)
            if self.scores is not None:
                self.scores.append(-1000.0)

    def token_id(self, text: str) -> int | None:
        try:
            return self.tokens.index(text)
        except ValueError:
            return None


def detect_kind(directory: Path) -> TokenizerKind:
    """Which tokenizer a checkpoint directory carries; a missing tokenizer is an input error."""
    if (directory / "tokenizer.model").is_file():
        return "spm"
    if (directory / "tokenizer.json").is_file():
        return "bpe"
    raise InputError(
        f"{directory} has no tokenizer (expected tokenizer.model for LLaMA/Llama-2 "
        "or tokenizer.json for Llama-3)"
    )


def read_vocab(directory: Path, spec: LlamaSpec) -> Vocab:
    """Read the tokenizer of a checkpoint directory, padded to the model's vocabulary size."""
    kind = detect_kind(directory)
    vocab = _read_spm(directory, spec) if kind == "spm" else _read_bpe(directory, spec)
    vocab.pad_to(spec.vocab_size)
    return vocab


def _tokenizer_config(directory: Path) -> dict[str, Any]:
    path = directory / "tokenizer_config.json"
    return read_json(path) if path.is_file() else {}


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


# --- SentencePiece ----------------------------------------------------------------------------


def _read_spm(directory: Path, spec: LlamaSpec) -> Vocab:
    from google.protobuf.message import DecodeError
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    path = directory / "tokenizer.model"
    proto = model_pb2.ModelProto()  # type: ignore[attr-defined]
    try:
        proto.ParseFromString(path.read_bytes())
    except (OSError, DecodeError):
        raise InputError(f"{path} is not a SentencePiece model") from None
    if not proto.pieces:
        raise InputError(f"{path} is not a SentencePiece model (no pieces)")
    if proto.trainer_spec.model_type != model_pb2.TrainerSpec.BPE:  # type: ignore[attr-defined]
        raise InputError(
            f"{path} is not a BPE SentencePiece model as LLaMA's is; llama.cpp cannot run it"
        )
    if proto.normalizer_spec.name not in ("", "identity"):
        raise InputError(
            f"{path} normalizes text ({proto.normalizer_spec.name}); LLaMA's tokenizer does not, "
            "and llama.cpp would tokenize differently"
        )
    tokens = [piece.piece for piece in proto.pieces]
    scores = [float(piece.score) for piece in proto.pieces]
    types = [int(piece.type) or TokenType.NORMAL for piece in proto.pieces]
    _add_extra_tokens(directory, tokens, types, scores)

    trainer = proto.trainer_spec

    def valid(index: int) -> int | None:
        return index if 0 <= index < len(tokens) else None

    config = _tokenizer_config(directory)
    pad = spec.pad_token_id
    pad_text = _token_text(config.get("pad_token"))
    if pad_text is not None and pad_text in tokens:
        pad = tokens.index(pad_text)
    return Vocab(
        kind="spm",
        tokens=tokens,
        types=types,
        scores=scores,
        bos_id=valid(trainer.bos_id),
        eos_id=valid(trainer.eos_id),
        unk_id=valid(trainer.unk_id),
        pad_id=valid(pad) if pad is not None else None,
        add_bos=bool(config.get("add_bos_token", True)),
        add_eos=bool(config.get("add_eos_token", False)),
        add_space_prefix=bool(proto.normalizer_spec.add_dummy_prefix),
        remove_extra_whitespaces=bool(proto.normalizer_spec.remove_extra_whitespaces),
    )


def _add_extra_tokens(
    directory: Path, tokens: list[str], types: list[int], scores: list[float]
) -> None:
    """Tokens a fine-tune added beyond the SentencePiece model (``added_tokens.json`` and
    ``added_tokens_decoder``), at their ids."""
    added: dict[int, tuple[str, bool]] = {}
    path = directory / "added_tokens.json"
    if path.is_file():
        for text, index in read_json(path).items():
            added[int(index)] = (text, False)
    for index, data in (_tokenizer_config(directory).get("added_tokens_decoder") or {}).items():
        token_text = _token_text(data)
        if token_text is not None:
            added[int(index)] = (token_text, bool(data.get("special", False)))
    for index in sorted(added):
        text, special = added[index]
        if index < len(tokens):
            if tokens[index] != text:
                raise InputError(f"added token {text!r} clashes with tokenizer.model's id {index}")
            continue
        while len(tokens) < index:
            tokens.append(f"[PAD{len(tokens)}]")
            types.append(TokenType.UNUSED)
            scores.append(-1000.0)
        tokens.append(text)
        types.append(TokenType.CONTROL if special else TokenType.USER_DEFINED)
        scores.append(-1000.0)


# --- byte-level BPE (Llama-3) -----------------------------------------------------------------


def _read_bpe(directory: Path, spec: LlamaSpec) -> Vocab:
    path = directory / "tokenizer.json"
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise InputError(f"{path} is not a BPE tokenizer")
    if not _is_llama3_pretokenizer(data.get("pre_tokenizer")):
        raise InputError(
            f"{path} is a BPE tokenizer without Llama-3's pre-tokenizer; only LLaMA-family "
            "tokenizers are supported"
        )
    by_id: dict[int, tuple[str, TokenType]] = {
        int(index): (text, TokenType.NORMAL) for text, index in model["vocab"].items()
    }
    for token in data.get("added_tokens") or []:
        kind = TokenType.CONTROL if token.get("special") else TokenType.USER_DEFINED
        by_id[int(token["id"])] = (str(token["content"]), kind)
    size = max(by_id) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types: list[int] = [TokenType.UNUSED] * size
    for index, (text, kind) in by_id.items():
        tokens[index], types[index] = text, kind
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]

    config = _tokenizer_config(directory)
    ids = {text: index for index, text in enumerate(tokens)}

    def special(name: str, fallback: int | None) -> int | None:
        text = _token_text(config.get(name))
        return ids.get(text, fallback) if text is not None else fallback

    eos_fallback = spec.eos_token_ids[0] if spec.eos_token_ids else None
    bos = special("bos_token", spec.bos_token_id)
    add_bos = config.get("add_bos_token")
    if add_bos is None:
        add_bos = bos is not None and _post_processor_adds(data.get("post_processor"), tokens[bos])
    return Vocab(
        kind="bpe",
        tokens=tokens,
        types=types,
        merges=merges,
        bos_id=bos,
        eos_id=special("eos_token", eos_fallback),
        unk_id=None,
        pad_id=special("pad_token", spec.pad_token_id),
        eot_id=ids.get(EOT_TEXT),
        add_bos=bool(add_bos),
        add_eos=bool(config.get("add_eos_token", False)),
    )


def _is_llama3_pretokenizer(pre: Any) -> bool:
    return LLAMA3_PRETOKENIZER in _regexes(pre)


def _regexes(node: Any) -> list[str]:
    """Every ``Split`` regex in a (possibly nested) pre-tokenizer description."""
    found: list[str] = []
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if node.get("type") == "Split" and isinstance(pattern, dict) and "Regex" in pattern:
            found.append(pattern["Regex"])
        for value in node.values():
            found += _regexes(value)
    elif isinstance(node, list):
        for value in node:
            found += _regexes(value)
    return found


def _post_processor_adds(post: Any, bos_text: str) -> bool:
    return bos_text in json.dumps(post, ensure_ascii=False) if post else False
