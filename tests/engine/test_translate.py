"""Translation: instructions, layout kept, long input split to fit, never truncated silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling_local.engine import Engine, EngineConfig
from bayling_local.errors import InputError
from bayling_local.languages import resolve
from bayling_local.segment import split_to_fit
from bayling_local.translate import Translator, build_instruction, validate_text
from tests.support.scripted import Scripted

GERMAN = resolve("de")


def test_bayling_instructions() -> None:
    assert (
        build_instruction("你好", resolve("en"))
        == "Provide the English translation for this sentence: 你好"
    )
    assert (
        build_instruction("Hello", resolve("zh"), instruction_lang="zh")
        == "提供这句话的中文翻译：Hello"
    )
    constrained = build_instruction("金球奖", resolve("en"), constraints=["Ballon d'Or", "award"])
    assert constrained.endswith("\nMake sure to include these words: Ballon d'Or, award")
    assert build_instruction("x", GERMAN, instruction_lang="zh", constraints=["a"]).endswith(
        "\n确保包含这些词：a"
    )


def test_validate_text() -> None:
    assert validate_text("\ufeffhello\r\nworld".encode()) == "hello\nworld"
    for bad, message in [
        (b"", "empty"),
        (b" \n\t", "empty"),
        (b"\x00\x01bin", "binary"),
        (b"caf\xe9", "UTF-8"),
    ]:
        with pytest.raises(InputError, match=message):
            validate_text(bad)


def test_split_to_fit_keeps_every_character() -> None:
    text = "First sentence here. Second one!  第三句。第四句？ A very long clause, with commas, that goes on and on."
    for limit in (10, 25, 60, 1000):
        pieces = split_to_fit(text, lambda s, limit=limit: len(s) <= limit)
        assert "".join(pieces) == text
        assert all(len(p) <= limit for p in pieces)


def test_layout_is_kept(scripted_spm: Scripted) -> None:
    translator = Translator(Engine(EngineConfig(scripted_spm.gguf, threads=1)))
    streamed: list[str] = []
    source = "First line.\n\n    Indented line.\nLast line.\n"
    result = translator.translate(source, GERMAN, on_text=streamed.append)
    hallo = scripted_spm.text
    assert result.text == f"{hallo}\n\n    {hallo}\n{hallo}\n"
    assert "".join(streamed) == result.text
    assert result.pieces == 3 and result.truncated_pieces == 0


def test_long_input_is_split_not_truncated(scripted_spm: Scripted) -> None:
    engine = Engine(EngineConfig(scripted_spm.gguf, context=160, threads=1))
    translator = Translator(engine)
    sentence = "This sentence is part of a long paragraph that will not fit. "
    paragraph = sentence * 12
    lines, pieces = translator.plan(paragraph, GERMAN)
    assert len(lines) == 1 and len(pieces) > 1
    assert "".join(p.text for p in pieces) == paragraph.strip()
    result = translator.translate(paragraph, GERMAN)
    assert result.text.count(scripted_spm.text) == len(pieces)


def test_truncated_piece_is_reported(tiny_spm_gguf: Path) -> None:
    from bayling_local.engine import SamplingConfig

    translator = Translator(
        Engine(EngineConfig(tiny_spm_gguf, threads=1)), SamplingConfig(max_tokens=2)
    )
    result = translator.translate("Hello there, how are you today?", GERMAN)
    assert result.truncated_pieces in (0, 1)  # a random model may stop, but never silently beyond
