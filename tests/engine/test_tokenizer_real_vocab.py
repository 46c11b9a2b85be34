"""The conversion path on the real BayLing vocabularies, checked with llama.cpp's own vectors.

From llama.cpp's vocab-only GGUFs of LLaMA/Llama-2 (SentencePiece, 32,000 tokens: BayLing-7B/13B,
BayLing-2-7B/13B) and Llama-3 (BPE, 128,256 tokens: BayLing-2-8B) the tests rebuild Hugging Face
tokenizer files, put them in a tiny checkpoint, convert it with convert/, and require that
llama.cpp, running the converted GGUF, and the rebuilt Hugging Face tokenizer both produce the
expected ids of llama.cpp's test vectors (``*.gguf.inp`` / ``*.gguf.out``).
"""

from __future__ import annotations

import pytest

from bayling_convert import convert_checkpoint
from tests.support.tiny import (
    VOCAB_DIR,
    TinyShape,
    make_tiny_checkpoint,
    read_gguf_kv,
    read_vocab_test_vectors,
    rebuild_hf_tokenizer,
)

pytestmark = pytest.mark.skipif(
    not VOCAB_DIR.is_dir(), reason=f"the shared vocabularies are not at {VOCAB_DIR}"
)

VOCABS = {"spm": "ggml-vocab-llama-spm.gguf", "bpe": "ggml-vocab-llama-bpe.gguf"}


@pytest.fixture(scope="module", params=["spm", "bpe"])
def real_vocab_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    kind = request.param
    vocab_gguf = VOCAB_DIR / VOCABS[kind]
    if not vocab_gguf.is_file():
        pytest.skip(f"{vocab_gguf} is missing")
    root = tmp_path_factory.mktemp(f"real-{kind}")
    assert rebuild_hf_tokenizer(vocab_gguf, root / "tokenizer") == kind
    shape = TinyShape(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    checkpoint = make_tiny_checkpoint(
        root / "hf", kind, shape=shape, dtype="float16", tokenizer_dir=root / "tokenizer"
    )
    gguf = convert_checkpoint(checkpoint, root / "model.gguf", outtype="f16", show_progress=False)
    return kind, vocab_gguf, checkpoint, gguf


def test_vocabulary_round_trips(real_vocab_model) -> None:
    """The converted GGUF carries exactly llama.cpp's own vocabulary."""
    kind, vocab_gguf, _, gguf = real_vocab_model
    original, converted = read_gguf_kv(vocab_gguf), read_gguf_kv(gguf)
    keys = ["tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type"]
    keys += ["tokenizer.ggml.bos_token_id"]
    keys += (
        ["tokenizer.ggml.scores"]
        if kind == "spm"
        else ["tokenizer.ggml.merges", "tokenizer.ggml.pre"]
    )
    for key in keys:
        assert converted[key] == original[key], key
    assert converted["tokenizer.ggml.add_bos_token"] is True
    if kind == "spm":
        assert converted["tokenizer.ggml.eos_token_id"] == original["tokenizer.ggml.eos_token_id"]
    else:  # the rebuilt config ends turns as Llama-3-Instruct does; both ids stop generation
        assert converted["tokenizer.ggml.eos_token_id"] in (128001, 128009)
        assert converted["tokenizer.ggml.eot_token_id"] == 128009
    assert len(converted["tokenizer.ggml.tokens"]) == {"spm": 32000, "bpe": 128256}[kind]


def test_llama_cpp_passes_test_vectors(real_vocab_model) -> None:
    from llama_cpp import Llama

    _, vocab_gguf, _, gguf = real_vocab_model
    vectors = read_vocab_test_vectors(vocab_gguf)
    assert len(vectors) > 30
    llm = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        failed = [
            text
            for text, expected in vectors
            if list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) != expected
        ]
    finally:
        llm.close()
    assert failed == []


def test_hf_tokenizer_passes_test_vectors(real_vocab_model) -> None:
    kind, vocab_gguf, checkpoint, _ = real_vocab_model
    if kind == "spm":
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor(model_file=str(checkpoint / "tokenizer.model"))

        def encode(text: str) -> list[int]:
            return processor.encode(text)
    else:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))

        def encode(text: str) -> list[int]:
            return tokenizer.encode(text, add_special_tokens=False).ids

    failed = [
        text for text, expected in read_vocab_test_vectors(vocab_gguf) if encode(text) != expected
    ]
    assert failed == []


def test_transformers_tokenizer_passes_test_vectors(real_vocab_model) -> None:
    """transformers' AutoTokenizer too, except (LLaMA only) for text that starts with a space,
    where transformers 5's LlamaTokenizer drops SentencePiece's dummy prefix (docs/CONVERT.md)."""
    from transformers import AutoTokenizer

    kind, vocab_gguf, checkpoint, _ = real_vocab_model
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    failed = [
        text
        for text, expected in read_vocab_test_vectors(vocab_gguf)
        if tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True) != expected
    ]
    if kind == "bpe":
        assert failed == []
    else:
        assert all(text.startswith(" ") for text in failed), failed
