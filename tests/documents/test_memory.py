"""The translation memory: keys, persistence, TMX out and in, stats, clear."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from xml.etree import ElementTree

import pytest

from bayling_local.documents.memory import TranslationMemory, segment_key
from bayling_local.errors import InputError

FINGERPRINT = {"model": "abc", "target": "de", "sampling": {"max_tokens": 64}}


def test_keys_depend_on_everything_that_decides_a_translation() -> None:
    base = segment_key(FINGERPRINT, "Hello.", [], [])
    assert base == segment_key(dict(FINGERPRINT), "Hello.", [], [])
    assert base != segment_key({**FINGERPRINT, "model": "abd"}, "Hello.", [], [])
    assert base != segment_key({**FINGERPRINT, "sampling": {"max_tokens": 65}}, "Hello.", [], [])
    assert base != segment_key(FINGERPRINT, "Hello!", [], [])
    assert base != segment_key(FINGERPRINT, "Hello.", ["Hallo"], [])
    assert base != segment_key(FINGERPRINT, "Hello.", [], [("Hi.", "Hallo.")])


def test_units_survive_the_process_and_are_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "tm.sqlite3"
    memory = TranslationMemory(path)
    memory.put("k1", "Hello.", "Hallo.", "en", "de", "abc")
    # another connection (another process) sees it without any close or commit call
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT target_text FROM units").fetchall() == [("Hallo.",)]
    memory.close()
    with TranslationMemory(path) as again:
        assert again.get("k1", "en", "de", "Hello.") == "Hallo."
        assert again.get("k2", "en", "de", "Hello.") is None


def test_model_hash_is_computed_once_per_file_version(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(100))
    with TranslationMemory(tmp_path / "tm.sqlite3") as memory:
        first = memory.model_sha256(model)
        assert first == memory.model_sha256(model)
        model.write_bytes(b"GGUF" + bytes(101))
        assert memory.model_sha256(model) != first


def test_tmx_round_trip_and_human_units_first(tmp_path: Path) -> None:
    memory = TranslationMemory(tmp_path / "a.sqlite3")
    memory.put("k1", "Hello.", "Hallo.", "en", "de", "abc")
    memory.put("k2", "Good <b>night</b> & bye.", "Gute Nacht & tschüss.", "en", "de", "abc")
    exported = tmp_path / "out.tmx"
    assert memory.export_tmx(exported) == 2
    root = ElementTree.parse(exported).getroot()
    assert root.tag == "tmx" and root.get("version") == "1.4"
    assert root.find("header").get("creationtool") == "bayling-local"
    segs = [seg.text for seg in root.iter("seg")]
    assert "Good <b>night</b> & bye." in segs  # escaped as text, read back as text
    other = TranslationMemory(tmp_path / "b.sqlite3")
    assert other.import_tmx(exported) == 2
    assert other.get("no-such-key", "en", "de", "Good <b>night</b> & bye.") == (
        "Gute Nacht & tschüss."
    )
    stats = other.stats()
    assert (stats.units, stats.machine, stats.imported) == (2, 0, 2)
    assert stats.pairs == [("en", "de", 2)]
    # a human unit wins over a machine one for the same source
    other.put("k1", "Hello.", "Servus.", "en", "de", "abc")
    assert other.get("k1", "en", "de", "Hello.") == "Hallo."
    memory.close()
    other.close()


def test_import_of_a_cat_tool_tmx(tmp_path: Path) -> None:
    tmx = tmp_path / "cat.tmx"
    tmx.write_text(
        """<?xml version="1.0" encoding="UTF-8"?>
<tmx version="1.4"><header srclang="en-US" datatype="plaintext" segtype="sentence"
 adminlang="en" creationtool="x" creationtoolversion="1" o-tmf="x"/>
<body>
 <tu><tuv xml:lang="en-US"><seg>Press <bpt i="1">&lt;b&gt;</bpt>Save<ept i="1">&lt;/b&gt;</ept>.</seg></tuv>
     <tuv xml:lang="de-DE"><seg>Drücken Sie auf Speichern.</seg></tuv>
     <tuv xml:lang="fr-FR"><seg>Appuyez sur Enregistrer.</seg></tuv></tu>
</body></tmx>
""",
        encoding="utf-8",
    )
    with TranslationMemory(tmp_path / "tm.sqlite3") as memory:
        assert memory.import_tmx(tmx) == 2  # en->de and en->fr; srclang is the header's
        assert memory.get("x", "en", "fr", "Press Save.") == "Appuyez sur Enregistrer."
        assert memory.get("x", "de", "en", "Drücken Sie auf Speichern.") is None


def test_bad_tmx_files(tmp_path: Path) -> None:
    with TranslationMemory(tmp_path / "tm.sqlite3") as memory:
        with pytest.raises(InputError, match="not found"):
            memory.import_tmx(tmp_path / "missing.tmx")
        (tmp_path / "x.tmx").write_text("<xliff/>", encoding="utf-8")
        with pytest.raises(InputError, match="not a TMX file"):
            memory.import_tmx(tmp_path / "x.tmx")


def test_clear_all_or_one_pair(tmp_path: Path) -> None:
    with TranslationMemory(tmp_path / "tm.sqlite3") as memory:
        memory.put("a", "A", "A-de", "en", "de", "m")
        memory.put("b", "B", "B-fr", "en", "fr", "m")
        assert memory.clear(target_lang="fr") == 1
        assert memory.stats().units == 1
        assert memory.clear() == 1
        assert memory.stats().units == 0


def test_a_corrupt_memory_is_one_clear_error(tmp_path: Path) -> None:
    from bayling_local.errors import OutputError

    path = tmp_path / "tm.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutputError, match="translation memory"):
        TranslationMemory(path)


def test_tmx_interoperates_with_translate_toolkit(tmp_path: Path) -> None:
    """translate-toolkit (what CAT pipelines use for TMX) reads ours, and we read its."""
    tmx = pytest.importorskip("translate.storage.tmx")
    with TranslationMemory(tmp_path / "tm.sqlite3") as memory:
        memory.put("k1", "Hello <b>world</b> & co.", "Hallo Welt & Co.", "en", "de", "abc")
        memory.export_tmx(tmp_path / "ours.tmx")
        units = tmx.tmxfile.parsefile(str(tmp_path / "ours.tmx")).units
        assert [(u.source, u.target) for u in units] == [
            ("Hello <b>world</b> & co.", "Hallo Welt & Co.")
        ]
        theirs = tmx.tmxfile(sourcelanguage="en", targetlanguage="fr")
        theirs.addtranslation("Good morning.", "en", "Bonjour.", "fr")
        theirs.savefile(str(tmp_path / "theirs.tmx"))
        assert memory.import_tmx(tmp_path / "theirs.tmx") == 1
        assert memory.get("-", "en", "fr", "Good morning.") == "Bonjour."
