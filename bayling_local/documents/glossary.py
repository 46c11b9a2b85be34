"""Glossaries: source term -> target term, from TSV, CSV or TBX.

A segment that contains a source term (whole words, any case) must contain the target term in
its translation. The pipeline names the terms in BayLing's constrained instruction and forces
any that the translation still misses (see :mod:`.constrained`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from ..errors import InputError
from ..languages import Language, lookup

_HEADER_WORDS = {"source", "target", "term", "src", "tgt", "source term", "target term"}


@dataclass(frozen=True)
class Term:
    source: str
    target: str
    line: int = 0


@dataclass
class Glossary:
    terms: list[Term] = field(default_factory=list)
    path: str = ""

    def __post_init__(self) -> None:
        # longest first, so "machine translation" wins over "translation"
        self.terms.sort(key=lambda t: -len(t.source))
        self._patterns = [(term, _pattern(term.source)) for term in self.terms]

    def __len__(self) -> int:
        return len(self.terms)

    def required(self, text: str) -> list[str]:
        """Target terms that a translation of ``text`` must contain (each once, in order)."""
        found: list[tuple[int, str]] = []
        covered: list[tuple[int, int]] = []
        for term, pattern in self._patterns:
            for match in pattern.finditer(text):
                span = match.span()
                if any(span[0] < end and start < span[1] for start, end in covered):
                    continue
                covered.append(span)
                found.append((span[0], term.target))
                break
        seen: dict[str, None] = {}
        for _, target in sorted(found):
            seen.setdefault(target, None)
        return list(seen)

    def positions(self, text: str) -> dict[str, int]:
        """Target term -> where its source term starts in ``text``."""
        found: dict[str, int] = {}
        for term, pattern in self._patterns:
            match = pattern.search(text)
            if match and term.target not in found:
                found[term.target] = match.start()
        return found


def contains(text: str, phrase: str) -> bool:
    """Whether ``text`` contains ``phrase`` (case-insensitive; placeholders exactly)."""
    return phrase in text or phrase.casefold() in text.casefold()


def _pattern(term: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive; no word boundaries where the term's edge is CJK/Thai."""
    left = r"(?<!\w)" if _spaced_char(term[0]) else ""
    right = r"(?!\w)" if _spaced_char(term[-1]) else ""
    body = r"\s+".join(re.escape(part) for part in term.split())
    return re.compile(left + body + right, re.IGNORECASE)


def _spaced_char(char: str) -> bool:
    return char.isalnum() and not (
        "\u2e80" <= char <= "\u9fff"
        or "\u0e00" <= char <= "\u0eff"
        or "\uac00" <= char <= "\ud7af"
        or "\u3040" <= char <= "\u30ff"
    )


def load_glossary(
    path: Path | str, *, source: Language | None = None, target: Language | None = None
) -> Glossary:
    """Read a glossary; a malformed row is an :class:`InputError` naming its line."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"glossary not found: {path}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise InputError(f"cannot read the glossary {path}: {exc.strerror}") from None
    if path.suffix.lower() in (".tbx", ".xml"):
        return Glossary(_read_tbx(data, path, source, target), str(path))
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path} line {line}: not valid UTF-8") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in text.split("\n", 1)[0] else ","
    return Glossary(_read_rows(text, delimiter, path), str(path))


def _read_rows(text: str, delimiter: str, path: Path) -> list[Term]:
    terms: list[Term] = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        for row in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if not terms and {c.lower() for c in cells[:2]} <= _HEADER_WORDS and len(cells) >= 2:
                continue  # a header row
            if len(cells) < 2 or not cells[0] or not cells[1]:
                shown = delimiter.join(row)[:60]
                sep = "TAB" if delimiter == "\t" else "comma"
                raise InputError(
                    f"{path.name} line {line}: expected 'source term{' <TAB> ' if sep == 'TAB' else ','}"
                    f"target term', got {shown!r}"
                )
            terms.append(Term(cells[0], cells[1], line))
    except csv.Error as exc:
        raise InputError(f"{path.name} line {reader.line_num}: {exc}") from None
    if not terms:
        raise InputError(f"{path.name} holds no terms")
    return terms


def _lang_of(element: ElementTree.Element) -> str:
    return element.get("{http://www.w3.org/XML/1998/namespace}lang") or element.get("lang") or ""


def _matches(code: str, language: Language | None) -> bool:
    if language is None or not code:
        return False
    found = lookup(code) or lookup(code.split("-")[0].split("_")[0])
    return found is not None and found.code == language.code


def _read_tbx(
    data: bytes, path: Path, source: Language | None, target: Language | None
) -> list[Term]:
    """TBX (ISO 30042): each concept entry's language sections give one source/target pair."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        line, _ = exc.position
        raise InputError(f"{path.name} line {line}: not well-formed TBX/XML") from None
    terms: list[Term] = []
    for entry in root.iter():
        if not entry.tag.endswith(("termEntry", "conceptEntry")):
            continue
        sections: list[tuple[str, str]] = []
        for lang_set in entry:
            if not lang_set.tag.endswith(("langSet", "langSec")):
                continue
            term = next((t for t in lang_set.iter() if t.tag.rsplit("}", 1)[-1] == "term"), None)
            if term is not None and "".join(term.itertext()).strip():
                sections.append((_lang_of(lang_set), "".join(term.itertext()).strip()))
        if len(sections) < 2:
            continue
        src = next((t for c, t in sections if _matches(c, source)), None) or sections[0][1]
        tgt = next((t for c, t in sections if _matches(c, target)), None)
        if tgt is None:
            tgt = next(t for c, t in sections if t != src) if target is None else None
        if tgt is None:
            continue
        terms.append(Term(src, tgt))
    if not terms:
        raise InputError(f"{path.name} holds no term entries with two languages")
    return terms
