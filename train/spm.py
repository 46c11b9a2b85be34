"""A small SentencePiece tokenizer for models trained from scratch (the demo, the CPU tests).

It is built the way LLaMA's is -- BPE pieces, byte fallback, no normalization, a dummy prefix
space, ``<unk>`` ``<s>`` ``</s>`` as ids 0, 1, 2 -- so that ``convert/`` writes it as an ordinary
``llama`` vocabulary and llama.cpp tokenizes exactly as the Hugging Face tokenizer does.
Newlines are left to byte fallback (as in LLaMA), which keeps every prompt boundary of the
BayLing format a token boundary.
"""

from __future__ import annotations

import io
import json
import random
import shutil
from collections.abc import Iterable
from pathlib import Path

from bayling_local.errors import UsageError

TOKENIZER_MODEL = "tokenizer.model"


def train_sentencepiece(
    texts: Iterable[str],
    out_dir: Path,
    *,
    vocab_size: int,
    max_lines: int = 200_000,
    seed: int = 0,
    delimiter: str | None = None,
):
    """Train on ``texts`` and save an HF tokenizer (``tokenizer.model`` + ``tokenizer.json``).

    ``delimiter`` marks boundaries no piece may cross (it is removed before training).
    """
    import sentencepiece as spm
    from transformers import AutoTokenizer, LlamaTokenizer

    lines = [line for text in texts for line in text.split("\n") if line.strip()]
    if not lines:
        raise UsageError("no text to train the tokenizer on")
    if len(lines) > max_lines:
        lines = random.Random(seed).sample(lines, max_lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        hard_vocab_limit=False,
        num_threads=2,
        minloglevel=2,
        **({"pretokenization_delimiter": delimiter} if delimiter else {}),
    )
    (out_dir / TOKENIZER_MODEL).write_bytes(model.getvalue())
    # legacy=True: a space is prefixed after special tokens too, which is what llama.cpp's
    # SentencePiece tokenizer does; the two then agree on multi-turn prompts.
    tokenizer = LlamaTokenizer.from_pretrained(
        str(out_dir), legacy=True, add_prefix_space=True, add_bos_token=True, add_eos_token=False
    )
    save_tokenizer(tokenizer, out_dir, str(out_dir))
    return AutoTokenizer.from_pretrained(str(out_dir))


def find_tokenizer_model(source: str) -> Path | None:
    """The SentencePiece ``tokenizer.model`` of a directory or of a hub id in the local cache."""
    local = Path(source) / TOKENIZER_MODEL
    if local.is_file():
        return local
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, TOKENIZER_MODEL)
    except Exception:  # not a hub id, or no cache: nothing to copy
        return None
    return Path(cached) if isinstance(cached, str) else None


def save_tokenizer(tokenizer, dest: Path, source: str) -> None:
    """Save the tokenizer with its ``tokenizer.model``: transformers 5 no longer writes that file,
    and ``convert/`` reads LLaMA vocabularies from it."""
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(dest))
    if getattr(tokenizer, "legacy", None) is True:
        # transformers does not write `legacy` back; a reload would then drop the space that
        # llama.cpp (and the tokenizer as trained) puts after special tokens.
        config_path = dest / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["legacy"] = True
        config_path.write_text(
            json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    model_file = find_tokenizer_model(source)
    if model_file is not None and model_file.resolve() != (dest / TOKENIZER_MODEL).resolve():
        shutil.copyfile(model_file, dest / TOKENIZER_MODEL)
