"""convert/: tiny checkpoints -> GGUF that llama.cpp loads, with the right metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFReader

from bayling_local.prompts import BAYLING, BAYLING3


def _field(reader: GGUFReader, key: str):
    field = reader.fields[key]
    value = field.parts[field.data[0]]
    return bytes(value).decode() if field.types[0].name == "STRING" else value.tolist()[0]


@pytest.mark.parametrize("kind", ["spm", "bpe"])
def test_tiny_gguf_loads_and_generates(kind: str, request: pytest.FixtureRequest) -> None:
    from llama_cpp import Llama

    path: Path = request.getfixturevalue(f"tiny_{kind}_gguf")
    llm = Llama(model_path=str(path), n_ctx=128, verbose=False, n_threads=1)
    try:
        out = llm.create_completion("Hello world", max_tokens=8, temperature=0.0)
        assert out["usage"]["completion_tokens"] >= 1
    finally:
        llm.close()


def test_metadata_spm(tiny_spm_gguf: Path) -> None:
    reader = GGUFReader(tiny_spm_gguf)
    assert _field(reader, "general.architecture") == "llama"
    assert _field(reader, "tokenizer.ggml.model") == "llama"
    assert _field(reader, "tokenizer.chat_template") == BAYLING.jinja_template
    assert _field(reader, "tokenizer.ggml.bos_token_id") == 1
    assert _field(reader, "tokenizer.ggml.eos_token_id") == 2
    assert _field(reader, "tokenizer.ggml.unknown_token_id") == 0
    assert _field(reader, "llama.rope.freq_base") == 10000.0


def test_metadata_bpe(tiny_bpe_gguf: Path) -> None:
    reader = GGUFReader(tiny_bpe_gguf)
    assert _field(reader, "tokenizer.ggml.model") == "gpt2"
    assert _field(reader, "tokenizer.ggml.pre") == "llama-bpe"
    assert _field(reader, "tokenizer.chat_template") == BAYLING3.jinja_template
    assert _field(reader, "llama.attention.head_count_kv") == 2
    assert _field(reader, "llama.rope.freq_base") == 500000.0
    tokens = reader.fields["tokenizer.ggml.tokens"]
    texts = [bytes(tokens.parts[i]).decode() for i in tokens.data]
    assert _field(reader, "tokenizer.ggml.eot_token_id") == texts.index("<|eot_id|>")
    assert texts[_field(reader, "tokenizer.ggml.bos_token_id")] == "<|begin_of_text|>"
