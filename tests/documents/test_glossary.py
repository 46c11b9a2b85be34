"""Glossaries: TSV, CSV and TBX; which terms a segment requires; malformed rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling_local.documents.glossary import Glossary, Term, contains, load_glossary
from bayling_local.errors import InputError
from bayling_local.languages import resolve

TBX = """\
<?xml version="1.0" encoding="UTF-8"?>
<tbx type="TBX-Basic" style="dca" xml:lang="en" xmlns="urn:iso:std:iso:30042:ed-2">
  <text><body>
    <conceptEntry id="c1">
      <langSec xml:lang="en"><termSec><term>machine translation</term></termSec></langSec>
      <langSec xml:lang="de"><termSec><term>Maschinenübersetzung</term></termSec></langSec>
      <langSec xml:lang="fr"><termSec><term>traduction automatique</term></termSec></langSec>
    </conceptEntry>
  </body></text>
</tbx>
"""

TBX_V2 = """\
<?xml version="1.0" encoding="UTF-8"?>
<martif type="TBX" xml:lang="en"><text><body>
  <termEntry id="t1">
    <langSet xml:lang="en-US"><tig><term>term base</term></tig></langSet>
    <langSet xml:lang="zh-CN"><tig><term>术语库</term></tig></langSet>
  </termEntry>
</body></text></martif>
"""


def test_tsv_with_header_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "terms.tsv"
    path.write_text(
        "source\ttarget\n# product names\nBayLing\tBayLing\n\ncloud\tWolke\n", encoding="utf-8"
    )
    glossary = load_glossary(path)
    assert [(t.source, t.target, t.line) for t in glossary.terms] == [
        ("BayLing", "BayLing", 3),
        ("cloud", "Wolke", 5),
    ]


def test_csv_with_quotes(tmp_path: Path) -> None:
    path = tmp_path / "terms.csv"
    path.write_text('"New York, NY",New York\nfile,Datei\n', encoding="utf-8")
    assert [t.target for t in load_glossary(path).terms] == ["New York", "Datei"]


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("cloud\tWolke\nbroken row\n", 2),
        ("cloud\tWolke\n\t\n\nsky\t\n", 4),
    ],
)
def test_malformed_row_names_its_line(tmp_path: Path, content: str, line: int) -> None:
    path = tmp_path / "terms.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_glossary(path)
    assert caught.value.message.startswith(f"terms.tsv line {line}: expected")


def test_empty_missing_and_binary_glossaries(tmp_path: Path) -> None:
    (tmp_path / "empty.tsv").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no terms"):
        load_glossary(tmp_path / "empty.tsv")
    with pytest.raises(InputError, match="not found"):
        load_glossary(tmp_path / "missing.tsv")
    (tmp_path / "bad.csv").write_bytes(b"a,b\n\xff\xfe,c\n")
    with pytest.raises(InputError, match="line 2"):
        load_glossary(tmp_path / "bad.csv")


def test_tbx_picks_the_languages_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "terms.tbx"
    path.write_text(TBX, encoding="utf-8")
    french = load_glossary(path, source=resolve("en"), target=resolve("fr"))
    assert [(t.source, t.target) for t in french.terms] == [
        ("machine translation", "traduction automatique")
    ]
    german = load_glossary(path, source=resolve("en"), target=resolve("de"))
    assert german.terms[0].target == "Maschinenübersetzung"
    (tmp_path / "old.tbx").write_text(TBX_V2, encoding="utf-8")
    chinese = load_glossary(tmp_path / "old.tbx", source=resolve("en"), target=resolve("zh"))
    assert [(t.source, t.target) for t in chinese.terms] == [("term base", "术语库")]
    (tmp_path / "broken.tbx").write_text("<tbx>\n<text>\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3"):
        load_glossary(tmp_path / "broken.tbx")


def test_required_terms_whole_words_any_case_longest_first() -> None:
    glossary = Glossary(
        [
            Term("translation", "Übersetzung"),
            Term("machine translation", "Maschinenübersetzung"),
            Term("API", "Programmierschnittstelle"),
            Term("云", "cloud"),
        ]
    )
    assert glossary.required("Machine translation is a translation.") == [
        "Maschinenübersetzung",
        "Übersetzung",
    ]
    assert glossary.required("The rapid APIs and an api.") == ["Programmierschnittstelle"]
    assert glossary.required("Translations everywhere") == []  # whole words only
    assert glossary.required("这是云计算。") == ["cloud"]  # no word boundaries in Chinese
    assert glossary.required("machine\ntranslation") == ["Maschinenübersetzung"]


def test_contains_is_case_insensitive_and_exact_for_placeholders() -> None:
    assert contains("Die maschinenübersetzung", "Maschinenübersetzung")
    assert contains("a ⟦1⟧ b", "⟦1⟧") and not contains("a ⟦12⟧ b", "⟦1⟧ ")
