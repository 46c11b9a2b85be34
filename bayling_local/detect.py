"""Offline language identification, the default of ``translate -s/--source``.

py3langid ships its naive-Bayes model inside the package, so detection needs no network and no
download. Its labels are ISO 639-1/3 codes folded onto :mod:`bayling_local.languages`. Text in
Han characters is decided here rather than by the model: the model cannot tell the two Chinese
scripts apart, splits plain Mandarin between ``zh``, ``wuu`` and ``yue`` and takes kanji-only
Japanese headlines for Chinese. So kana or Japanese-only kanji make it Japanese,
Cantonese-only characters Cantonese, and traditional-only characters outnumbering
simplified-only ones Traditional Chinese.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .languages import Language, lookup, resolve

# Below this probability the guess is not worth acting on; tuned on WMT22 sentences.
MIN_CONFIDENCE = 0.5
# Only the head of a long text is read: the DFA walk is per byte in Python.
MAX_CHARS = 4000
# Fewer letters than this makes for a "too short" message instead of "unsure".
SHORT_TEXT_LETTERS = 12

# Model labels with no entry of their own, and the entry they count towards.
_FOLD = {"wuu": "zho_Hans", "gug": "grn_Latn", "uzs": "uzn_Latn", "hbo": "heb_Hebr"}

# Common characters written differently in the two scripts, as simplified/traditional pairs.
# Characters both scripts use (后, 里, 台, 干, 云, 几, 么 ...) are left out on purpose.
_PAIRS = (
    "这這个個们們来來时時说說为為国國会會学學对對过過发發经經还還没沒现現开開关關样樣进進"
    "种種长長动動问問点點让讓头頭见見话話从從间間应應东東体體当當给給实實无無业業车車听聽"
    "记記钱錢电電门門书書马馬鱼魚鸟鳥语語认認识識觉覺边邊万萬与與两兩买買卖賣写寫农農华華"
    "单單区區员員场場报報机機热熱爱愛战戰历歷变變欢歡乐樂儿兒请請谢謝读讀谁誰该該论論设設"
    "计計许許讲講总總结結线線级級红紅绿綠纸紙统統网網气氣汉漢湾灣广廣产產亲親观觀规規视視"
    "轻輕较較运運达達选選飞飛风風鸡雞难難题題须須顾顧预預领領颜顏页頁项項义義乡鄉师師岁歲"
    "处處复復备備尔爾导導层層岛島庆慶医醫验驗钟鐘铁鐵银銀错錯闻聞阳陽阴陰际際陆陸随隨众眾"
    "优優传傳伤傷价價务務团團园園图圖块塊坏壞声聲宝寶将將专專带帶帮幫"
)
_SIMPLIFIED = frozenset(_PAIRS[0::2])
_TRADITIONAL = frozenset(_PAIRS[1::2])
# Characters of written Cantonese that standard written Chinese does not use.
_CANTONESE = frozenset("嘅咗喺唔佢冇啲嘢嚟嗰哋搵睇噉咩啱攞嘥冚")
# Kanji of Japanese only (shinjitai and kokuji), found in kana-less headlines and product names.
_JAPANESE = frozenset(
    "込売読発楽円気広図変関駅実様単県帰鉄歳薬戦険検験権継続総営桜両圧価労働払渋畑峠辻匂枠栃"
)
# The bucket of the Han-script languages while scores are summed.
_HAN = "<han>"
_HAN_ISO3 = frozenset({"zho", "yue", "jpn"})


@dataclass(frozen=True)
class Detection:
    """The detected language and the model's probability for it (0..1)."""

    language: Language
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return {"language": self.language.code, "confidence": round(self.confidence, 4)}


_lock = threading.Lock()
_identifier: Any = None


def _model() -> Any:
    """py3langid's identifier with normalised probabilities, loaded once (about a second)."""
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


def _table_language(label: str) -> Language | None:
    folded = _FOLD.get(label)
    return resolve(folded) if folded else lookup(label)


def _is_han(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


def _is_kana(char: str) -> bool:
    # Hiragana and katakana letters; not the middle dot or long-vowel mark Chinese also uses.
    return "\u3041" <= char <= "\u309f" or "\u30a1" <= char <= "\u30fa"


def _han_language(text: str, model_says_japanese: bool) -> Language:
    """Japanese, Cantonese, Traditional or Simplified Chinese, from the characters themselves.

    The model's own choice between Chinese and Japanese is kept when it is Japanese; when it is
    Chinese, kana or Japanese-only kanji still make it Japanese: the model takes kana-less
    headlines and product names (``税抜1980円``) for Chinese.
    """
    han = sum(1 for c in text if _is_han(c))
    japanese = sum(1 for c in text if _is_kana(c) or c in _JAPANESE)
    if model_says_japanese or (japanese and japanese * 20 >= han):
        return resolve("jpn_Jpan")
    cantonese = sum(1 for c in text if c in _CANTONESE)
    if cantonese and cantonese * 50 >= han:
        return resolve("yue_Hant")
    simplified = sum(1 for c in text if c in _SIMPLIFIED)
    traditional = sum(1 for c in text if c in _TRADITIONAL)
    return resolve("zho_Hant" if traditional > simplified else "zho_Hans")


def _unsure(guess: str, confidence: float, letters: int) -> UsageError:
    if letters < SHORT_TEXT_LETTERS:
        return UsageError(
            f"the input is too short to tell its language (best guess {guess}, "
            f"{confidence:.0%}); pass -s/--source"
        )
    return UsageError(
        f"cannot tell the language of the input (best guess {guess}, {confidence:.0%}); "
        "pass -s/--source"
    )


def detect(text: str) -> Detection:
    """The language of ``text``; a UsageError asking for ``-s/--source`` when unsure."""
    sample = text[:MAX_CHARS]
    letters = sum(1 for c in sample if c.isalpha())
    if letters == 0:
        raise UsageError("cannot detect the language of input without letters; pass -s/--source")
    scores: dict[Language | str, float] = {}
    for label, prob in _model().rank(sample):
        lang = _table_language(label)
        key: Language | str = label if lang is None else lang
        scores[key] = scores.get(key, 0.0) + float(prob)
    han: dict[Language, float] = {}
    if any(_is_han(c) or _is_kana(c) for c in sample):  # one bucket, split by characters below
        han = {
            k: scores.pop(k)
            for k in list(scores)
            if isinstance(k, Language) and k.iso3 in _HAN_ISO3
        }
        scores[_HAN] = sum(han.values())
    best = max(scores, key=lambda k: scores[k])
    confidence = min(1.0, max(0.0, scores[best]))
    if best == _HAN and han:
        top = max(han, key=lambda k: han[k])
        best = _han_language(sample, model_says_japanese=top.iso3 == "jpn")
    if best == "zxx":  # the model's label for "no language": digits, codes, keyboard mash
        raise UsageError("the input does not look like text in any language; pass -s/--source")
    if isinstance(best, str):  # a label of the model's with no entry in the table
        if confidence >= MIN_CONFIDENCE:
            raise UsageError(
                f"the input looks like language {best!r}, which is not in bayling-local's "
                "language table; pass -s/--source"
            )
        raise _unsure(repr(best), confidence, letters)
    if confidence < MIN_CONFIDENCE:
        raise _unsure(str(best), confidence, letters)
    return Detection(language=best, confidence=confidence)
