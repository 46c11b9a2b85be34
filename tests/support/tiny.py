"""Tiny random LLaMA-family checkpoints, built by the project's own code for the tests.

Two kinds, mirroring the two tokenizer families of the BayLing models:

- ``"spm"``: LLaMA / Llama-2 style. A SentencePiece BPE tokenizer with byte fallback (trained
  here on the WMT22 lines in ``tests/data/wmt22``, LLaMA's trainer settings), saved as
  ``tokenizer.model`` plus a ``tokenizer.json`` shaped like Llama-2's published one.
- ``"bpe"``: Llama-3 style. A byte-level BPE trained with ``tokenizers`` behind Llama-3's
  pre-tokenizer regex, Llama-3's special tokens, grouped-query attention, rope theta 500000.

The weights are random (seeded) and the models are a few hundred kilobytes, so building one
takes about a second. ``make_tiny_gguf`` converts with ``convert/``.

The module also rebuilds Hugging Face tokenizer files from llama.cpp's vocab-only GGUFs (the real
LLaMA and Llama-3 vocabularies), for the tests that prove the conversion path on them.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parents[2]
WMT_DIR = Path(__file__).resolve().parents[1] / "data" / "wmt22"
#: The shared reference folder sits beside the repository (``../shared``).
SHARED_DIR = REPO_ROOT.parent / "shared"
VOCAB_DIR = SHARED_DIR / "vocab"

Kind = Literal["spm", "bpe"]

#: Llama-3's pre-tokenizer split, as in its tokenizer.json.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Llama-3's first special tokens, in its order (ids follow the learned vocabulary).
LLAMA3_SPECIALS: tuple[str, ...] = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>",
    "<|reserved_special_token_3|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|reserved_special_token_4|>",
    "<|eot_id|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(5, 11)),
)

#: Text that stresses tokenizers beyond the WMT lines: whitespace runs, tabs, newlines, emoji,
#: mixed scripts, digits, apostrophes.
EXTRA_LINES: tuple[str, ...] = (
    "Hello world",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "tab\tseparated\tvalues",
    "two\n\nparagraphs\n",
    "\n\nstarts with newlines",
    "many     spaces   between",
    "emoji 😊🎉👋🏻 and 🙏🏻 flags 🇨🇳🇯🇵",
    "数字 1234567 和 3.14159",
    "日本語とEnglishの混在テキスト。",
    "Привет, мир! Как дела?",
    "Добрий день, як справи?",
    "I'm sure they'll say we've done it, didn't they?",
    "naïve café Straße Ærø",
    "   ",
    "a",
    "<s> literal angle text </s>",
)


def wmt_lines() -> list[str]:
    """The WMT22 source lines copied into ``tests/data/wmt22`` (8 languages, 40 each)."""
    lines: list[str] = []
    for path in sorted(WMT_DIR.glob("*.src")):
        lines += path.read_text(encoding="utf-8").splitlines()
    return lines


def sample_lines() -> list[str]:
    """Every line the tokenizer-equality tests check."""
    return wmt_lines() + list(EXTRA_LINES)


# --- tokenizers -------------------------------------------------------------------------------


@cache
def train_spm(vocab_size: int = 1500) -> bytes:
    """A SentencePiece BPE model proto trained on the WMT lines with LLaMA's trainer settings."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(wmt_lines()),
        model_writer=buffer,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        byte_fallback=True,
        character_coverage=0.995,  # rare CJK characters go through the <0xNN> byte tokens
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return buffer.getvalue()


def _spm_merges(vocab: dict[str, int]) -> list[tuple[str, str]]:
    """BPE merges implied by a SentencePiece vocabulary (ranked by the merged piece's id)."""
    ranked: list[tuple[int, int, int, tuple[str, str]]] = []
    for piece, piece_id in vocab.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                ranked.append((piece_id, vocab[left], vocab[right], (left, right)))
    ranked.sort()
    return [merge for *_, merge in ranked]


def write_spm_tokenizer(out_dir: Path, model_proto: bytes) -> None:
    """Write ``tokenizer.model`` and Llama-2-shaped ``tokenizer.json`` / ``tokenizer_config.json``."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    processor = spm.SentencePieceProcessor(model_proto=model_proto)
    (out_dir / "tokenizer.model").write_bytes(model_proto)
    vocab = {processor.id_to_piece(i): i for i in range(processor.vocab_size())}
    unk, bos, eos = (processor.id_to_piece(i) for i in (0, 1, 2))
    tokenizer = Tokenizer(
        models.BPE(
            vocab=vocab, merges=_spm_merges(vocab), unk_token=unk, fuse_unk=True, byte_fallback=True
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    tokenizer.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, 1)]
    )
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (unk, bos, eos)]
    )
    tokenizer.save(str(out_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": bos,
        "eos_token": eos,
        "unk_token": unk,
        "legacy": True,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 2048,
    }
    _write_json(out_dir / "tokenizer_config.json", config)
    _write_json(
        out_dir / "special_tokens_map.json", {"bos_token": bos, "eos_token": eos, "unk_token": unk}
    )


@cache
def train_bpe(vocab_size: int = 1500) -> str:
    """A Llama-3-style byte-level BPE (tokenizer.json text) trained on the WMT lines."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE(ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tokenizer.train_from_iterator(wmt_lines(), trainer)
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in LLAMA3_SPECIALS]
    )
    bos = LLAMA3_SPECIALS[0]
    bos_id = tokenizer.token_to_id(bos)
    tokenizer.post_processor = processors.Sequence(
        [
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(
                single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
            ),
        ]
    )
    return tokenizer.to_str()


def write_bpe_tokenizer(out_dir: Path, tokenizer_json: str) -> None:
    """Write ``tokenizer.json`` and a ``tokenizer_config.json`` as Llama-3-Instruct has them."""
    (out_dir / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    data = json.loads(tokenizer_json)
    added = {
        str(tok["id"]): {
            "content": tok["content"],
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for tok in data["added_tokens"]
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "clean_up_tokenization_spaces": True,
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 8192,
        "added_tokens_decoder": added,
    }
    _write_json(out_dir / "tokenizer_config.json", config)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def tokenizer_size(tokenizer_dir: Path) -> int:
    """The number of ids a tokenizer directory uses (SentencePiece pieces or tokenizer.json ids)."""
    if (tokenizer_dir / "tokenizer.model").is_file():
        import sentencepiece as spm

        return spm.SentencePieceProcessor(
            model_file=str(tokenizer_dir / "tokenizer.model")
        ).vocab_size()
    data = json.loads((tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))
    ids = list(data["model"]["vocab"].values()) + [t["id"] for t in data["added_tokens"]]
    return max(ids) + 1


def special_ids(tokenizer_dir: Path) -> tuple[int, int]:
    """(bos, eos) ids as a model config states them."""
    if (tokenizer_dir / "tokenizer.model").is_file():
        return 1, 2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    # Like BayLing-2-Llama-3-8B: the model config's eos is <|end_of_text|>, not <|eot_id|>.
    return tokenizer.token_to_id("<|begin_of_text|>"), tokenizer.token_to_id("<|end_of_text|>")


# --- models -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TinyShape:
    """Model dimensions; defaults give a ~0.5 MB model that llama.cpp loads in milliseconds."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int | None = None  # None: 4 for spm; 2 (grouped-query) for bpe
    intermediate_size: int = 128
    context_length: int = 512
    initializer_range: float = 0.1  # larger than LLaMA's 0.02 so greedy choices are not near-ties


def write_tokenizer(out_dir: Path, kind: Kind, vocab_size: int = 1500) -> None:
    """Train (once per process) and write the tokenizer files of a tiny model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "spm":
        write_spm_tokenizer(out_dir, train_spm(vocab_size))
    elif kind == "bpe":
        write_bpe_tokenizer(out_dir, train_bpe(vocab_size))
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")


def make_tiny_checkpoint(
    out_dir: Path,
    kind: Kind,
    *,
    seed: int = 0,
    shape: TinyShape = TinyShape(),
    dtype: Literal["float32", "float16", "bfloat16"] = "float32",
    max_shard_size: str | None = None,
    tokenizer_dir: Path | None = None,
) -> Path:
    """Build a random LLaMA-architecture Hugging Face checkpoint in ``out_dir``.

    ``tokenizer_dir`` takes tokenizer files from elsewhere (e.g. a real vocabulary rebuilt by
    :func:`rebuild_hf_tokenizer`); otherwise a tokenizer of ``kind`` is trained on WMT22 lines.
    ``max_shard_size`` (e.g. ``"200KB"``) saves the weights as shards with an index.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is not None:
        for name in (
            "tokenizer.model",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
        ):
            if (tokenizer_dir / name).is_file():
                shutil.copy(tokenizer_dir / name, out_dir / name)
    else:
        write_tokenizer(out_dir, kind)
    n_vocab = tokenizer_size(out_dir)
    bos, eos = special_ids(out_dir)
    kv_heads = shape.num_kv_heads or (
        shape.num_heads if kind == "spm" else max(1, shape.num_heads // 2)
    )
    config = LlamaConfig(
        vocab_size=n_vocab,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=shape.context_length,
        rms_norm_eps=1e-5 if kind == "bpe" else 1e-6,
        rope_theta=500000.0 if kind == "bpe" else 10000.0,
        initializer_range=shape.initializer_range,
        bos_token_id=bos,
        eos_token_id=eos,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # Norm weights are ones at init; perturb them so a converter that drops them is caught.
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.add_(torch.randn_like(param) * 0.1)
    model = model.to(getattr(torch, dtype))
    kwargs: dict[str, object] = {}
    if max_shard_size is not None:
        kwargs["max_shard_size"] = max_shard_size
    model.save_pretrained(out_dir, **kwargs)  # safetensors
    return out_dir


def make_tiny_gguf(
    tmp_dir: Path,
    kind: Kind,
    outtype: str = "f32",
    name: str | None = None,
    *,
    checkpoint: Path | None = None,
    seed: int = 0,
) -> Path:
    """A tiny checkpoint of ``kind`` (built in ``tmp_dir`` unless given) converted to GGUF."""
    from bayling_convert import convert_checkpoint

    tmp_dir = Path(tmp_dir)
    hf_dir = checkpoint or make_tiny_checkpoint(tmp_dir / f"tiny-{kind}-hf", kind, seed=seed)
    out = tmp_dir / f"tiny-{kind}-{outtype}.gguf"
    return convert_checkpoint(
        hf_dir, out, outtype=outtype, name=name, force=True, show_progress=False
    )


# --- real vocabularies from llama.cpp's vocab-only GGUFs --------------------------------------


def read_gguf_kv(path: Path) -> dict[str, object]:
    """Every key/value of a GGUF header, long arrays included (gguf-py's reader takes tens of
    seconds over a 128k-token vocabulary; this takes a fraction of one)."""
    import struct

    from bayling_local.gguf_file import SCALAR_FORMATS as scalars

    with open(path, "rb") as handle:
        data = handle.read()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal pos
        length = take("<Q")
        text = data[pos : pos + length].decode("utf-8")
        pos += length
        return text

    def value(kind: int):
        if kind == 8:
            return string()
        if kind == 9:
            item, count = take("<I"), take("<Q")
            return [value(item) for _ in range(count)]
        return take(scalars[kind])

    if data[:4] != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file")
    pos = 4
    take("<I")  # version
    take("<Q")  # tensor count
    kv_count = take("<Q")
    result: dict[str, object] = {}
    for _ in range(kv_count):
        key = string()
        result[key] = value(take("<I"))
    return result


def rebuild_hf_tokenizer(vocab_gguf: Path, out_dir: Path) -> Kind:
    """Rebuild Hugging Face tokenizer files from a llama.cpp vocab-only GGUF.

    A ``llama`` (SentencePiece) vocabulary becomes a ``tokenizer.model`` protobuf built from the
    GGUF's tokens, scores and types, with LLaMA's trainer and normalizer settings; a ``gpt2``
    (byte-level BPE) vocabulary becomes a Llama-3-shaped ``tokenizer.json`` with its merges.
    """
    fields = read_gguf_kv(vocab_gguf)

    model = fields["tokenizer.ggml.model"]
    tokens: list[str] = fields["tokenizer.ggml.tokens"]  # type: ignore[assignment]
    types: list[int] = fields["tokenizer.ggml.token_type"]  # type: ignore[assignment]
    out_dir.mkdir(parents=True, exist_ok=True)
    if model == "llama":
        from sentencepiece import sentencepiece_model_pb2 as pb

        scores: list[float] = fields["tokenizer.ggml.scores"]  # type: ignore[assignment]
        proto = pb.ModelProto()
        for text, score, kind in zip(tokens, scores, types, strict=True):
            piece = proto.pieces.add()
            piece.piece, piece.score, piece.type = text, float(score), int(kind)
        spec = proto.trainer_spec
        spec.model_type = pb.TrainerSpec.BPE
        spec.vocab_size = len(tokens)
        spec.byte_fallback = True
        spec.split_digits = True
        spec.allow_whitespace_only_pieces = True
        spec.pad_id = -1
        spec.unk_id = int(fields["tokenizer.ggml.unknown_token_id"])
        spec.bos_id = int(fields["tokenizer.ggml.bos_token_id"])
        spec.eos_id = int(fields["tokenizer.ggml.eos_token_id"])
        norm = proto.normalizer_spec
        norm.name = "identity"
        norm.add_dummy_prefix = True
        norm.remove_extra_whitespaces = False
        norm.escape_whitespaces = True
        write_spm_tokenizer(out_dir, proto.SerializeToString())
        return "spm"
    if model == "gpt2":
        from tokenizers import (
            AddedToken,
            Regex,
            Tokenizer,
            decoders,
            models,
            pre_tokenizers,
            processors,
        )

        merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]]  # type: ignore[union-attr]
        control = [i for i, t in enumerate(types) if t == 3]
        control_ids = set(control)
        vocab = {t: i for i, t in enumerate(tokens) if i not in control_ids}
        tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(
                    add_prefix_space=False, trim_offsets=True, use_regex=False
                ),
            ]
        )
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens(
            [AddedToken(tokens[i], special=True, normalized=False) for i in control]
        )
        bos = tokens[int(fields["tokenizer.ggml.bos_token_id"])]
        tokenizer.post_processor = processors.Sequence(
            [
                processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
                processors.TemplateProcessing(
                    single=f"{bos} $A",
                    pair=f"{bos} $A {bos} $B",
                    special_tokens=[(bos, tokenizer.token_to_id(bos))],
                ),
            ]
        )
        write_bpe_tokenizer(out_dir, tokenizer.to_str())
        return "bpe"
    raise ValueError(f"{vocab_gguf}: unsupported tokenizer model {model!r}")


def read_vocab_test_vectors(vocab_gguf: Path) -> list[tuple[str, list[int]]]:
    """llama.cpp's tokenizer test vectors: ``.inp`` texts, each followed by a marker line, and
    ``.out`` lines of expected ids (tokenized without BOS)."""
    marker = "\n__ggml_vocab_test__\n"
    texts = Path(f"{vocab_gguf}.inp").read_text(encoding="utf-8").split(marker)
    if texts and texts[-1] == "":
        texts.pop()
    outputs = Path(f"{vocab_gguf}.out").read_text(encoding="utf-8").split("\n")
    outputs = outputs[: len(texts)]
    if len(outputs) != len(texts):
        raise ValueError(f"{vocab_gguf}: {len(texts)} test inputs but {len(outputs)} outputs")
    return [(text, [int(x) for x in out.split()]) for text, out in zip(texts, outputs, strict=True)]


def hf_token_ids(hf_dir: Path, texts: Sequence[str]) -> list[list[int]]:
    """Token ids (with BOS) from the checkpoint's own tokenizer files, as the model was trained.

    SentencePiece checkpoints use ``tokenizer.model`` through sentencepiece (the original LLaMA
    tokenizer); Llama-3 checkpoints use ``tokenizer.json`` through ``tokenizers``.
    """
    from bayling_convert.verify import reference_tokenizer

    encode = reference_tokenizer(hf_dir)
    return [encode(text) for text in texts]
