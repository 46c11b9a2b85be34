"""The language table and the resolver that turns what a user types into a table entry."""

from __future__ import annotations

import json
import re

import pytest

from bayling_local.errors import UsageError
from bayling_local.languages import Language, all_languages, format_table, lookup, resolve

LANGS = all_languages()


def test_table_covers_100_plus_languages() -> None:
    assert len(LANGS) >= 100
    assert all(isinstance(lang, Language) for lang in LANGS)
    assert [lang.flores for lang in LANGS] == sorted(lang.flores for lang in LANGS)


def test_codes_are_well_formed_and_unique() -> None:
    for lang in LANGS:
        assert re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", lang.flores), lang
        assert lang.iso3 == lang.flores.split("_")[0], lang
        assert lang.iso1 is None or re.fullmatch(r"[a-z]{2}", lang.iso1), lang
        assert lang.name.isascii() and lang.name.strip() == lang.name, lang
        assert lang.native and lang.chinese, lang
    for field in ("code", "flores", "name"):
        values = [getattr(lang, field) for lang in LANGS]
        assert len(values) == len(set(values)), field


def test_every_name_of_every_language_resolves_back_to_it() -> None:
    for lang in LANGS:
        names = [lang.code, lang.flores, lang.name, lang.native, lang.chinese, *lang.aliases]
        if lang.tag is None:
            names += [c for c in (lang.iso1, lang.iso3) if c]
        for name in names:
            assert resolve(name) is lang, (name, lang)


@pytest.mark.parametrize(
    ("code", "flores"),
    [
        ("zh", "zho_Hans"),
        ("zh-Hant", "zho_Hant"),
        ("en", "eng_Latn"),
        ("de", "deu_Latn"),
        ("cs", "ces_Latn"),
        ("ja", "jpn_Jpan"),
        ("ru", "rus_Cyrl"),
        ("uk", "ukr_Cyrl"),
        ("fr", "fra_Latn"),
        ("ar", "arb_Arab"),
        ("fa", "pes_Arab"),
        ("ms", "zsm_Latn"),
        ("ne", "npi_Deva"),
        ("mn", "khk_Cyrl"),
        ("uz", "uzn_Latn"),
        ("yi", "ydd_Hebr"),
        ("az", "azj_Latn"),
        ("et", "est_Latn"),
        ("lv", "lvs_Latn"),
        ("sw", "swh_Latn"),
        ("mg", "plt_Latn"),
        ("om", "gaz_Latn"),
        ("sq", "als_Latn"),
        ("ps", "pbt_Arab"),
        ("or", "ory_Orya"),
        ("qu", "quy_Latn"),
        ("ku", "kmr_Latn"),
        ("ckb", "ckb_Arab"),
        ("yue", "yue_Hant"),
        ("bo", "bod_Tibt"),
        ("ug", "uig_Arab"),
        ("ko", "kor_Hang"),
        ("he", "heb_Hebr"),
        ("tl", "tgl_Latn"),
        ("kk", "kaz_Cyrl"),
    ],
)
def test_flores_codes(code: str, flores: str) -> None:
    assert resolve(code).flores == flores


@pytest.mark.parametrize(
    ("name", "flores"),
    [
        # ISO 639-1, 639-3, 639-2/B, FLORES, any case and separator
        ("DE", "deu_Latn"),
        ("deu", "deu_Latn"),
        ("ger", "deu_Latn"),
        ("zho_Hans", "zho_Hans"),
        ("ZHO-hant", "zho_Hant"),
        ("eng latn", "eng_Latn"),
        # English, native and Chinese names, aliases
        ("  english ", "eng_Latn"),
        ("Haitian_creole", "hat_Latn"),
        ("Deutsch", "deu_Latn"),
        ("Français", "fra_Latn"),
        ("francais", "fra_Latn"),
        ("Español", "spa_Latn"),
        ("日本語", "jpn_Jpan"),
        ("한국어", "kor_Hang"),
        ("Русский", "rus_Cyrl"),
        ("中文", "zho_Hans"),
        ("汉语", "zho_Hans"),
        ("简体中文", "zho_Hans"),
        ("繁體中文", "zho_Hant"),
        ("Chinese", "zho_Hans"),
        ("Mandarin", "zho_Hans"),
        ("Chinese (Traditional)", "zho_Hant"),
        ("粤语", "yue_Hant"),
        ("英语", "eng_Latn"),
        ("德语", "deu_Latn"),
        ("Farsi", "pes_Arab"),
        ("Filipino", "tgl_Latn"),
        ("Kurmanji", "kmr_Latn"),
        ("Sorani", "ckb_Arab"),
        ("no", "nob_Latn"),
        ("iw", "heb_Hebr"),
        # language tags with script and region subtags
        ("zh-CN", "zho_Hans"),
        ("zh_CN", "zho_Hans"),
        ("zh-Hans", "zho_Hans"),
        ("zh-SG", "zho_Hans"),
        ("zh-TW", "zho_Hant"),
        ("zh-HK", "zho_Hant"),
        ("zh-Hant", "zho_Hant"),
        ("zh-Hant-TW", "zho_Hant"),
        ("cmn-Hans-CN", "zho_Hans"),
        ("pt-BR", "por_Latn"),
        ("pt_PT", "por_Latn"),
        ("en-US", "eng_Latn"),
        ("en-GB", "eng_Latn"),
        ("es-419", "spa_Latn"),
        ("sr-Latn", "srp_Cyrl"),
        ("yue-HK", "yue_Hant"),
    ],
)
def test_resolve(name: str, flores: str) -> None:
    assert resolve(name).flores == flores


def test_traditional_chinese_has_its_own_code() -> None:
    hant, hans = resolve("zh-TW"), resolve("zh")
    assert hant is not hans
    assert (hant.code, hans.code) == ("zh-Hant", "zh")
    assert (hant.chinese, hans.chinese) == ("繁体中文", "中文")


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("Germn", "German (de)"), ("Portugese", "Portuguese (pt)"), ("chinse", "Chinese (zh)")],
)
def test_unknown_language_suggests_the_closest(name: str, suggestion: str) -> None:
    with pytest.raises(UsageError) as info:
        resolve(name)
    message = info.value.message
    assert message.startswith(f"unknown language {name!r}; did you mean {suggestion}")
    assert "\n" not in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("name", ["Klingon", "xx", "zz-Latn"])
def test_unknown_language_without_a_close_match(name: str) -> None:
    with pytest.raises(UsageError, match=r"unknown language .*bayling-local languages"):
        resolve(name)
    assert lookup(name) is None


@pytest.mark.parametrize("name", ["", "   ", "-_-"])
def test_empty_language_name(name: str) -> None:
    with pytest.raises(UsageError, match="empty language name"):
        resolve(name)


def test_as_dict_is_json() -> None:
    data = json.loads(json.dumps([lang.as_dict() for lang in LANGS], ensure_ascii=False))
    assert len(data) == len(LANGS)
    hant = next(d for d in data if d["flores200"] == "zho_Hant")
    assert hant["code"] == "zh-Hant" and hant["iso639_3"] == "zho" and hant["native"] == "繁體中文"


def test_format_table() -> None:
    lines = format_table(LANGS).splitlines()
    assert lines[0].split()[:3] == ["code", "ISO", "639-3"]
    assert len(lines) == len(LANGS) + 1
    assert all(line == line.rstrip() for line in lines)
    # the FLORES column is aligned: it starts at the same offset on every row
    offsets = {line.index(lang.flores) for line, lang in zip(lines[1:], LANGS)}
    assert offsets == {lines[0].index("FLORES-200")}
    assert "zh-Hant" in lines[1 + LANGS.index(resolve("zh-TW"))]
    assert format_table([resolve("de")]).splitlines()[1].split() == [
        "de",
        "deu",
        "deu_Latn",
        "German",
        "Deutsch",
    ]
