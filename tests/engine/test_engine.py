"""The engine on real llama.cpp: loading, streaming, stopping, cancelling, statistics."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bayling_local.engine import Engine, EngineConfig, SamplingConfig, physical_cores
from bayling_local.errors import ContextOverflowError, ModelError
from bayling_local.gguf_file import inspect_gguf
from bayling_local.prompts import BAYLING, BAYLING3, Message
from tests.support.scripted import Scripted, build_scripted

QUESTION = [Message("user", "Provide the German translation for this sentence: Hello world!")]


def test_context_comes_from_the_model(tiny_spm_gguf: Path) -> None:
    engine = Engine(EngineConfig(tiny_spm_gguf))
    assert engine.n_ctx == inspect_gguf(tiny_spm_gguf).context_length
    assert engine.n_ctx != 512 or inspect_gguf(tiny_spm_gguf).context_length == 512
    assert engine.threads == physical_cores()
    capped = Engine(EngineConfig(tiny_spm_gguf, context=128, threads=1))
    assert capped.n_ctx == 128 and capped.threads == 1


def test_format_is_chosen_from_the_model(tiny_spm_gguf: Path, tiny_bpe_gguf: Path) -> None:
    assert Engine(EngineConfig(tiny_spm_gguf, threads=1)).prompt_format.name == BAYLING.name
    bpe = Engine(EngineConfig(tiny_bpe_gguf, threads=1))
    assert bpe.prompt_format.name == BAYLING3.name
    eot = bpe.tokenize("<|eot_id|>", add_bos=False)
    assert len(eot) == 1 and eot[0] in bpe.stop_token_ids
    forced = Engine(EngineConfig(tiny_bpe_gguf, prompt_format="bayling", threads=1))
    assert forced.prompt_format is BAYLING


def test_streaming_greedy_is_deterministic(tiny_spm_gguf: Path) -> None:
    engine = Engine(EngineConfig(tiny_spm_gguf, threads=1))
    sampling = SamplingConfig(max_tokens=24)
    first = engine.chat(QUESTION, sampling)
    pieces = list(first)
    assert "".join(pieces) == first.text
    assert len(pieces) > 1
    stats = first.stats
    assert stats.prompt_tokens == len(engine.tokenize(engine.render(QUESTION)))
    assert 0 < stats.generated_tokens <= 24
    assert stats.prefill_tps > 0 and stats.finish_reason in ("length", "stop")
    again = engine.chat(QUESTION, sampling)
    assert again.result() == first.text
    assert again.stats.cached_tokens > 0  # the KV cache of the same prompt is reused


def test_sampling_with_seed_is_reproducible(tiny_spm_gguf: Path) -> None:
    engine = Engine(EngineConfig(tiny_spm_gguf, threads=1))
    sampling = SamplingConfig(max_tokens=16, temperature=1.0, top_p=0.95, top_k=50, seed=42)
    assert engine.chat(QUESTION, sampling).result() == engine.chat(QUESTION, sampling).result()


def test_max_tokens_is_respected(tiny_spm_gguf: Path) -> None:
    engine = Engine(EngineConfig(tiny_spm_gguf, threads=1))
    generation = engine.chat(QUESTION, SamplingConfig(max_tokens=3))
    generation.result()
    assert generation.stats.generated_tokens <= 3


def test_stops_on_eos(scripted_spm: Scripted) -> None:
    engine = Engine(EngineConfig(scripted_spm.gguf, threads=1))
    generation = engine.chat(QUESTION, SamplingConfig(max_tokens=50))
    assert generation.result().strip() == scripted_spm.text
    assert generation.stats.finish_reason == "stop"
    assert generation.stats.generated_tokens == scripted_spm.tokens


@pytest.mark.parametrize("end_token", ["<|eot_id|>", "<|end_of_text|>"])
def test_stops_on_llama3_end_tokens(
    tmp_path_factory, tiny_bpe_checkpoint: Path, end_token: str
) -> None:
    scripted = build_scripted(tmp_path_factory, tiny_bpe_checkpoint, "Hallo Welt!", end_token)
    engine = Engine(EngineConfig(scripted.gguf, threads=1))
    generation = engine.chat(QUESTION, SamplingConfig(max_tokens=50))
    assert generation.result().strip() == scripted.text
    assert generation.stats.finish_reason == "stop"


def test_stops_on_stop_strings(scripted_spm: Scripted) -> None:
    engine = Engine(EngineConfig(scripted_spm.gguf, threads=1))
    generation = engine.chat(QUESTION, SamplingConfig(max_tokens=50, stop=("Welt",)))
    assert generation.result().strip() == "Hallo"
    assert generation.stats.finish_reason == "stop"
    # a stop string split across tokens is still caught, and nothing of it leaks out
    pieces = list(engine.chat(QUESTION, SamplingConfig(max_tokens=50, stop=("lo We",))))
    assert "".join(pieces).strip() == "Hal"


def test_cancel_in_the_middle(scripted_spm: Scripted) -> None:
    engine = Engine(EngineConfig(scripted_spm.gguf, threads=1))
    cancel = threading.Event()
    generation = engine.chat(QUESTION, SamplingConfig(max_tokens=50), cancel=cancel)
    for _piece in generation:
        cancel.set()
    assert generation.stats.finish_reason == "cancelled"
    assert generation.stats.generated_tokens == 1


def test_prompt_longer_than_context(tiny_spm_gguf: Path) -> None:
    engine = Engine(EngineConfig(tiny_spm_gguf, context=64, threads=1))
    with pytest.raises(ContextOverflowError):
        engine.chat([Message("user", "word " * 200)]).result()


def test_generation_stops_at_the_context_end(tiny_spm_gguf: Path) -> None:
    engine = Engine(EngineConfig(tiny_spm_gguf, context=200, threads=1))
    prompt_tokens = len(engine.tokenize(engine.render(QUESTION)))
    generation = engine.chat(QUESTION, SamplingConfig(max_tokens=1000, stop=()))
    generation.result()
    assert prompt_tokens + generation.stats.generated_tokens <= 200
    assert generation.stats.finish_reason in ("context", "stop")


def test_bad_model_files(tmp_path: Path, tiny_spm_gguf: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Engine(EngineConfig(tmp_path / "missing.gguf", threads=1))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello, I am text")
    with pytest.raises(ModelError, match="not a GGUF"):
        Engine(EngineConfig(not_gguf, threads=1))
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(tiny_spm_gguf.read_bytes()[: tiny_spm_gguf.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated"):
        Engine(EngineConfig(truncated, threads=1))
    with pytest.raises(ModelError, match="directory"):
        Engine(EngineConfig(tmp_path, threads=1))
