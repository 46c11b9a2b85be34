"""Interactive translation on a tiny real model: translate, refine, stop, overflow."""

from __future__ import annotations

import threading

import pytest

from bayling_local.engine import Engine, EngineConfig, SamplingConfig
from bayling_local.errors import ContextOverflowError
from bayling_local.interactive import InteractiveSession, InteractiveTranslator
from bayling_local.languages import resolve
from bayling_local.prompts import Message

GREEDY = SamplingConfig(max_tokens=12, temperature=0.0)


@pytest.fixture(scope="module")
def engine(tiny_spm_gguf):
    with Engine(EngineConfig(model_path=tiny_spm_gguf, threads=1)) as loaded:
        yield loaded


def test_translate_then_refine_continues_the_conversation(engine):
    session = InteractiveSession(source_text="The weather is nice today.", target=resolve("zh"))
    translator = InteractiveTranslator(engine, GREEDY)
    streamed: list[str] = []
    first = translator.translate(session, on_text=streamed.append)
    assert first.text and first.status in ("done", "cut")
    assert "".join(streamed).strip() == first.text
    v1 = session.add_version(first.text, session.instruction, refines=False, status=first.status)

    refine_stream: list[str] = []
    second = translator.refine(session, "more formal", on_text=refine_stream.append)
    assert second.status in ("done", "cut") and second.stats.prompt_tokens > 0
    assert "".join(refine_stream).strip() == second.text
    v2 = session.add_version(second.text, "more formal", refines=True, status=second.status)
    assert session.versions[v2].parent == v1
    # The refinement prompt is the first exchange plus the new turn, in the model's format.
    expected = engine.render(
        [
            Message("user", session.instruction),
            Message("assistant", first.text),
            Message("user", "more formal"),
        ]
    )
    assert second.stats.prompt_tokens == len(engine.tokenize(expected))

    # Greedy decoding: the same request gives the same version again.
    session.restore(v1)
    again = translator.refine(session, "more formal")
    assert again.text == second.text


def test_a_cancelled_translation_is_kept_as_stopped(engine):
    session = InteractiveSession(source_text="Good morning, how are you?", target=resolve("de"))
    translator = InteractiveTranslator(engine, SamplingConfig(max_tokens=60, temperature=0.0))
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(text: str) -> None:
        pieces.append(text)
        cancel.set()  # the user presses Esc after the first piece

    reply = translator.translate(session, on_text=on_text, cancel=cancel)
    assert reply.status == "stopped" and reply.text == "".join(pieces).strip()

    session.add_version("Guten", session.instruction, refines=False)
    cancel = threading.Event()
    cancel.set()
    refined = translator.refine(session, "shorter", cancel=cancel)
    assert refined.status == "stopped"


def test_a_refinement_that_no_longer_fits_the_context_raises_a_clear_error(engine):
    session = InteractiveSession(source_text="word " * 200, target=resolve("en"))
    session.add_version("translation " * 200, session.instruction, refines=False)
    translator = InteractiveTranslator(engine, GREEDY)
    with pytest.raises(ContextOverflowError, match="context holds 512"):
        translator.refine(session, "more formal")
