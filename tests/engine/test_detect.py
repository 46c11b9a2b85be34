"""Offline language detection with py3langid's bundled model (the real model, loaded once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bayling_local import detect as detect_module
from bayling_local.detect import MIN_CONFIDENCE, Detection, detect
from bayling_local.errors import UsageError

DATA = Path(__file__).resolve().parents[1] / "data" / "detect"
WMT22_SOURCES = ["cs", "de", "en", "fr", "ja", "ru", "uk", "zh"]


@pytest.mark.parametrize("code", WMT22_SOURCES)
def test_wmt22_source_lines(code: str) -> None:
    lines = (DATA / f"{code}.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 5
    for line in lines:
        found = detect(line)
        assert found.language.code == code, line
        assert MIN_CONFIDENCE <= found.confidence <= 1.0


@pytest.mark.parametrize("code", WMT22_SOURCES)
def test_wmt22_paragraph(code: str) -> None:
    text = (DATA / f"{code}.txt").read_text(encoding="utf-8")
    found = detect(text)
    assert found.language.code == code
    assert found.confidence > 0.95


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("我们明天早上去图书馆借几本关于历史的书。", "zh"),
        ("我們明天早上去圖書館借幾本關於歷史的書。", "zh-Hant"),
        ("這個問題我們應該怎麼處理？請給我一點時間。", "zh-Hant"),
        ("我哋聽日去咗圖書館，佢話啲書好好睇。", "yue"),
        ("本日は晴天なり。明日の天気はどうでしょうか。", "ja"),
        ("送料無料、1900円以上ご注文で。", "ja"),
        ("오늘은 날씨가 정말 좋아서 공원에 산책하러 갔어요.", "ko"),
        ("الطقس جميل اليوم، لذلك ذهبنا إلى الحديقة للتنزه.", "ar"),
        ("आज मौसम बहुत अच्छा है, इसलिए हम पार्क में घूमने गए।", "hi"),
        ("Hôm nay thời tiết rất đẹp nên chúng tôi đi dạo trong công viên.", "vi"),
        ("Il tempo oggi è bellissimo, quindi siamo andati a fare una passeggiata.", "it"),
        ("Hoy hace muy buen tiempo, así que fuimos a pasear por el parque.", "es"),
    ],
)
def test_other_languages_and_chinese_scripts(text: str, code: str) -> None:
    assert detect(text).language.code == code


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "without letters"),
        ("12345 67.89 !!!", "without letters"),
        ("ok", "too short"),
        ("#URL1#", "pass -s/--source"),
    ],
)
def test_undetectable_input_asks_for_source(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        detect(text)
    assert "-s/--source" in info.value.message
    assert "\n" not in info.value.message
    assert info.value.exit_code == 2


def test_detection_as_dict() -> None:
    found = detect("Die rechte Schublade passt nicht in den Schrank, bitte helfen Sie mir.")
    assert isinstance(found, Detection)
    assert found.as_dict()["language"] == "de"
    assert 0.0 <= found.as_dict()["confidence"] <= 1.0


def test_model_is_loaded_once() -> None:
    detect("Bonjour tout le monde, comment allez-vous aujourd'hui ?")
    assert detect_module._model() is detect_module._model()


def test_model_loads_lazily() -> None:
    """Importing the module (as the CLI does for every command) must not load the model."""
    code = (
        "import sys, bayling_local.detect as d\n"
        "assert 'py3langid' not in sys.modules and d._identifier is None\n"
        "d.detect('Dies ist ein ganz normaler deutscher Satz.')\n"
        "assert d._identifier is not None\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120)


def test_character_tables_are_consistent() -> None:
    assert len(detect_module._PAIRS) % 2 == 0
    assert not detect_module._SIMPLIFIED & detect_module._TRADITIONAL
    assert not detect_module._JAPANESE & (detect_module._SIMPLIFIED | detect_module._TRADITIONAL)
