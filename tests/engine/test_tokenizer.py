"""llama.cpp tokenizes exactly as the checkpoint's own tokenizer, on every test line.

The reference is the tokenizer the model was trained with: ``tokenizer.model`` through
sentencepiece for LLaMA-style checkpoints, ``tokenizer.json`` through ``tokenizers`` for
Llama-3. The lines are WMT22 sources in eight languages (Chinese, Japanese, Russian, Ukrainian,
Czech, German, French, English) plus whitespace runs, tabs, newlines and emoji.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tiny import EXTRA_LINES, hf_token_ids, sample_lines


def _llama_ids(gguf: Path, texts: list[str]) -> list[list[int]]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        return [list(llm.tokenize(t.encode("utf-8"), add_bos=True, special=False)) for t in texts]
    finally:
        llm.close()


@pytest.mark.parametrize("kind", ["spm", "bpe"])
def test_llama_cpp_ids_equal_reference_tokenizer(kind: str, request: pytest.FixtureRequest) -> None:
    checkpoint: Path = request.getfixturevalue(f"tiny_{kind}_checkpoint")
    gguf: Path = request.getfixturevalue(f"tiny_{kind}_gguf")
    lines = sample_lines()
    expected = hf_token_ids(checkpoint, lines)
    got = _llama_ids(gguf, lines)
    mismatches = [line for line, a, b in zip(lines, expected, got, strict=True) if a != b]
    assert mismatches == []
    # The lines really exercise byte fallback / multi-byte pieces, not just ASCII.
    assert any("😊" in line for line in lines) and any("日本" in line for line in lines)


def test_transformers_tokenizers_agree(
    tiny_spm_checkpoint: Path, tiny_bpe_checkpoint: Path
) -> None:
    """transformers' AutoTokenizer gives the same ids (special-token text read as text, as
    llama.cpp does without parse_special), with one known exception: since
    transformers 5, its LlamaTokenizer (Metaspace pre-tokenizer) drops SentencePiece's dummy
    prefix before text that already starts with a space, where sentencepiece, the original
    LLaMA tokenizer and llama.cpp keep it."""
    from transformers import AutoTokenizer

    lines = sample_lines()
    for checkpoint in (tiny_spm_checkpoint, tiny_bpe_checkpoint):
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        reference = hf_token_ids(checkpoint, lines)
        differ = [
            line
            for line, ids in zip(lines, reference, strict=True)
            if tokenizer.encode(line, split_special_tokens=True) != ids
        ]
        if checkpoint == tiny_bpe_checkpoint:
            assert differ == []
        else:
            assert all(line.startswith(" ") for line in differ), differ


def test_llama3_stops_at_eot(tiny_bpe_gguf: Path) -> None:
    """<|eot_id|> and <|end_of_text|> both end generation (BayLing-2-8B's config names the
    latter as eos; its chat turns end with the former)."""
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=str(tiny_bpe_gguf), vocab_only=True, verbose=False)
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        for text in ("<|eot_id|>", "<|end_of_text|>"):
            (token,) = llm.tokenize(text.encode(), add_bos=False, special=True)
            assert llama_cpp.llama_vocab_is_eog(vocab, token), text
        assert llm.token_bos() == llm.tokenize(b"<|begin_of_text|>", add_bos=False, special=True)[0]
    finally:
        llm.close()


def test_edge_lines_are_in_the_set() -> None:
    assert set(EXTRA_LINES) <= set(sample_lines())
