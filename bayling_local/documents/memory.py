"""The translation memory: every finished segment, in SQLite, and TMX exchange.

A segment's key is a hash of everything that decides its translation: the model (its file's
sha256), the prompt format, the languages, the instruction wording and system prompt, the
decoding options, the glossary terms it requires, the context turns it was given, and the text.
So a re-run of an unchanged document translates nothing, a changed one only what changed, and
an interrupted run resumes: each segment is committed as soon as it is finished.

Units imported from TMX (human translations from a CAT tool) carry no model key; they are found
by language pair and exact source text, and take precedence over machine translations.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from ..errors import InputError, OutputError
from ..paths import data_dir

SCHEMA_VERSION = 1
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def memory_path() -> Path:
    return data_dir() / "memory.sqlite3"


def segment_key(fingerprint: dict[str, Any], text: str, required: list[str], history: list) -> str:
    payload = json.dumps(
        {"f": fingerprint, "t": text, "r": required, "h": history},
        ensure_ascii=False,
        sort_keys=True,
        default=str,  # a decoding option of a type JSON lacks still keys by its text
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _human_key(source_lang: str, target_lang: str, text: str) -> str:
    return "tmx:" + hashlib.sha256(f"{source_lang}\0{target_lang}\0{text}".encode()).hexdigest()


@dataclass
class MemoryStats:
    path: str
    units: int
    machine: int
    imported: int
    pairs: list[tuple[str, str, int]]
    size_bytes: int


class TranslationMemory:
    """A SQLite translation memory (WAL: readers never block the writer)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else memory_path()
        self._touched: list[str] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: each finished segment is committed (a killed process keeps it)
            # without an fsync per segment; only a power cut may lose the last few.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise OutputError(f"cannot open the translation memory {self.path}: {exc}") from None
        except OSError as exc:
            raise OutputError(f"cannot create {self.path}: {exc.strerror}") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version < 1:
            self.db.executescript(
                """
                CREATE TABLE IF NOT EXISTS units (
                    key TEXT PRIMARY KEY,
                    source_text TEXT NOT NULL,
                    target_text TEXT NOT NULL,
                    source_lang TEXT NOT NULL,
                    target_lang TEXT NOT NULL,
                    model TEXT NOT NULL,
                    origin TEXT NOT NULL,
                    created REAL NOT NULL,
                    used REAL NOT NULL
                );
                CREATE INDEX IF NOT EXISTS units_pair ON units(source_lang, target_lang);
                CREATE TABLE IF NOT EXISTS model_hashes (
                    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT
                );
                PRAGMA user_version = 1;
                """
            )

    def close(self) -> None:
        self.touch()
        self.db.close()

    def __enter__(self) -> TranslationMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- model identity ----------------------------------------------------------------------

    def model_sha256(self, path: Path | str) -> str:
        """The model file's sha256, computed once per (path, size, mtime)."""
        path = Path(path).resolve()
        stat = path.stat()
        row = self.db.execute(
            "SELECT sha256 FROM model_hashes WHERE path=? AND size=? AND mtime_ns=?",
            (str(path), stat.st_size, stat.st_mtime_ns),
        ).fetchone()
        if row:
            return row[0]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
        value = digest.hexdigest()
        self.db.execute(
            "INSERT OR REPLACE INTO model_hashes VALUES (?, ?, ?, ?)",
            (str(path), stat.st_size, stat.st_mtime_ns, value),
        )
        return value

    # -- lookups -----------------------------------------------------------------------------

    def get(self, key: str, source_lang: str, target_lang: str, text: str) -> str | None:
        row = self.db.execute(
            "SELECT key, target_text FROM units WHERE key IN (?, ?) ORDER BY origin = 'tmx' DESC",
            (_human_key(source_lang, target_lang, text), key),
        ).fetchone()
        if row is None:
            return None
        self._touched.append(row[0])
        return row[1]

    def touch(self) -> None:
        """Record when the units found since the last call were used (one transaction)."""
        if not self._touched:
            return
        now = time.time()
        self.db.execute("BEGIN")
        self.db.executemany(
            "UPDATE units SET used=? WHERE key=?", [(now, key) for key in self._touched]
        )
        self.db.execute("COMMIT")
        self._touched.clear()

    def put(
        self,
        key: str,
        source_text: str,
        target_text: str,
        source_lang: str,
        target_lang: str,
        model: str,
        origin: str = "mt",
    ) -> None:
        """Store one unit; committed at once (an interrupted run keeps it)."""
        now = time.time()
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, source_text, target_text, source_lang, target_lang, model, origin, now, now),
            )
        except sqlite3.OperationalError as exc:
            raise OutputError(f"cannot write the translation memory {self.path}: {exc}") from None

    # -- maintenance -------------------------------------------------------------------------

    def stats(self) -> MemoryStats:
        total, machine, imported = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(origin='mt'), 0), COALESCE(SUM(origin='tmx'), 0) "
            "FROM units"
        ).fetchone()
        pairs = self.db.execute(
            "SELECT source_lang, target_lang, COUNT(*) FROM units "
            "GROUP BY source_lang, target_lang ORDER BY COUNT(*) DESC"
        ).fetchall()
        size = sum(
            os.path.getsize(p) for p in (self.path, Path(f"{self.path}-wal")) if os.path.exists(p)
        )
        return MemoryStats(str(self.path), total, machine, imported, pairs, size)

    def clear(self, *, source_lang: str | None = None, target_lang: str | None = None) -> int:
        clauses, args = [], []
        if source_lang:
            clauses.append("source_lang = ?")
            args.append(source_lang)
        if target_lang:
            clauses.append("target_lang = ?")
            args.append(target_lang)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        count = self.db.execute(f"DELETE FROM units{where}", args).rowcount
        self.db.execute("VACUUM")
        return count

    def units(self) -> Iterator[tuple[str, str, str, str, str, str, float]]:
        yield from self.db.execute(
            "SELECT source_text, target_text, source_lang, target_lang, model, origin, created "
            "FROM units ORDER BY created"
        )

    # -- TMX ---------------------------------------------------------------------------------

    def export_tmx(self, path: Path | str) -> int:
        """Write every unit as TMX 1.4b (atomically); returns the number of units."""
        from ..atomic import atomic_open

        root = ElementTree.Element("tmx", version="1.4")
        ElementTree.SubElement(
            root,
            "header",
            {
                "creationtool": "bayling-local",
                "creationtoolversion": "1",
                "segtype": "sentence",
                "o-tmf": "bayling-local",
                "adminlang": "en",
                "srclang": "*all*",
                "datatype": "plaintext",
            },
        )
        body = ElementTree.SubElement(root, "body")
        count = 0
        for source, target, source_lang, target_lang, model, origin, created in self.units():
            unit = ElementTree.SubElement(
                body,
                "tu",
                {
                    "srclang": source_lang,
                    "creationdate": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created)),
                },
            )
            if model:
                ElementTree.SubElement(unit, "prop", type="x-model-sha256").text = model
            ElementTree.SubElement(unit, "prop", type="x-origin").text = origin
            for lang, text in ((source_lang, source), (target_lang, target)):
                variant = ElementTree.SubElement(unit, "tuv", {XML_LANG: lang})
                ElementTree.SubElement(variant, "seg").text = text
            count += 1
        ElementTree.indent(root)
        with atomic_open(path, "wb") as handle:
            handle.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
            handle.write(ElementTree.tostring(root, encoding="utf-8"))
            handle.write(b"\n")
        return count

    def import_tmx(self, path: Path | str) -> int:
        """Add a TMX file's translation units as human translations; returns how many pairs."""
        from ..languages import lookup

        path = Path(path).expanduser()
        try:
            root = ElementTree.parse(path).getroot()
        except FileNotFoundError:
            raise InputError(f"TMX file not found: {path}") from None
        except ElementTree.ParseError as exc:
            raise InputError(f"{path.name} line {exc.position[0]}: not well-formed XML") from None
        if root.tag != "tmx":
            raise InputError(f"{path.name} is not a TMX file (root element <{root.tag}>)")

        def code(tag: str) -> str:
            found = lookup(tag) or lookup(tag.split("-")[0].split("_")[0])
            return found.code if found else tag.lower()

        header = root.find("header")
        default_source = header.get("srclang", "*all*") if header is not None else "*all*"
        count = 0
        self.db.execute("BEGIN")
        try:
            for unit in root.iter("tu"):
                variants = []
                for variant in unit.findall("tuv"):
                    lang = variant.get(XML_LANG) or variant.get("lang") or ""
                    seg = variant.find("seg")
                    if lang and seg is not None:
                        variants.append((code(lang), _seg_text(seg)))
                unit_source = unit.get("srclang", default_source)
                sources = (
                    variants
                    if unit_source == "*all*"
                    else [v for v in variants if v[0] == code(unit_source)]
                )
                for source_lang, source_text in sources:
                    for target_lang, target_text in variants:
                        if target_lang == source_lang or not source_text or not target_text:
                            continue
                        key = _human_key(source_lang, target_lang, source_text)
                        now = time.time()
                        self.db.execute(
                            "INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (key, source_text, target_text, source_lang, target_lang, "", "tmx",
                             now, now),
                        )  # fmt: skip
                        count += 1
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return count


def _seg_text(seg: ElementTree.Element) -> str:
    """A TMX segment's text: inline native codes (bpt, ept, ph, it) are left out."""
    text = seg.text or ""
    for child in seg:
        if child.tag in ("hi", "sub"):
            text += _seg_text(child)
        text += child.tail or ""
    return text.strip()
