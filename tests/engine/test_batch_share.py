"""One batch engine per engine, shared: Translator(batch=...), the server's way to translate on
its own batch engine, and a clear error for a second batch engine on the same engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling_local.batch import BatchEngine
from bayling_local.engine import Engine, EngineConfig
from bayling_local.languages import resolve
from bayling_local.translate import Translator
from tests.support.tiny import wmt_lines


@pytest.fixture(scope="module")
def engine(tiny_spm_gguf: Path):
    with Engine(EngineConfig(tiny_spm_gguf, threads=1)) as loaded:
        yield loaded


def test_a_second_batch_engine_is_refused_until_the_first_closes(engine: Engine) -> None:
    first = BatchEngine(engine, parallel=2)
    try:
        assert engine.batch_engine is first
        with pytest.raises(RuntimeError, match="already has a batch engine.*share it"):
            BatchEngine(engine, parallel=4, beam=3)
        assert engine.batch_engine is first  # the refused one changed nothing
        assert engine.decoder.max_seqs == 2 and not engine.decoder.unified
    finally:
        first.close()
    assert engine.batch_engine is None
    with BatchEngine(engine, parallel=3) as second:
        assert engine.batch_engine is second


def test_translator_decodes_on_a_given_batch_engine(engine: Engine) -> None:
    lines = wmt_lines()[:5]
    target = resolve("de")
    with BatchEngine(engine, parallel=2) as batch:
        translator = Translator(engine, batch=batch)
        assert translator.batch is batch and translator.parallel == 2
        given = [r.text for r in translator.translate_segments(lines, target)]
        with_beams = translator.translate_segments(lines[:2], target, beam=3, n_best=2)
        translator.close()
        assert not batch.closed and engine.batch_engine is batch  # its owner closes it
        # a translator made without one shares the engine's open batch engine
        other = Translator(engine, parallel=4)
        assert other.batch is batch
        other.close()
        assert not batch.closed
    assert all(len(r.alternatives) <= 2 and r.text for r in with_beams)
    alone = Translator(engine, parallel=2)  # starts (and closes) its own
    try:
        assert [r.text for r in alone.translate_segments(lines, target)] == given
        assert engine.batch_engine is alone.batch
    finally:
        alone.close()
    assert engine.batch_engine is None


def test_a_batch_engine_of_another_engine_is_refused(engine: Engine, tiny_spm_gguf: Path) -> None:
    with (
        Engine(EngineConfig(tiny_spm_gguf, threads=1)) as other,
        BatchEngine(other, 1) as batch,
        pytest.raises(ValueError, match="another engine"),
    ):
        Translator(engine, batch=batch)
