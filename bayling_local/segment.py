"""Splitting text for translation without losing its shape.

A document becomes lines (blank lines and indentation are kept verbatim and never sent to the
model); a line too long for the context becomes sentences; a sentence still too long becomes
clauses, then words. Joining the translated pieces back restores the original layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# A sentence ends at terminal punctuation (Latin, CJK, Devanagari, Arabic...) plus any closing
# quotes or brackets, followed by whitespace or, for full-width punctuation, by anything.
_SENTENCE_END = re.compile(
    r"""(?<=[.!?…;])["'”’»)\]]*\s+"""  # Latin-style: punctuation then whitespace
    r"""|(?<=[。！？；])["'”’」』）》]*\s*"""  # CJK full-width: no space needed
    r"""|(?<=[।॥؟۔])\s+""",  # Devanagari danda, Arabic question mark, Urdu full stop
)
_CLAUSE_END = re.compile(r"(?<=[,，、:：])\s*")
_WORD = re.compile(r"\s*\S+\s*|\s+")  # leading spaces stay with the first word


@dataclass(frozen=True)
class Line:
    """One input line: leading whitespace, text to translate (maybe empty), trailing whitespace."""

    lead: str
    body: str
    trail: str

    @classmethod
    def parse(cls, raw: str) -> Line:
        stripped = raw.strip()
        if not stripped:
            return cls(raw, "", "")
        start = raw.index(stripped[0])
        return cls(raw[:start], stripped, raw[start + len(stripped) :])


def split_lines(text: str) -> list[Line]:
    """Lines of ``text``; line endings are restored by :func:`join_lines`."""
    return [Line.parse(raw) for raw in text.split("\n")]


def join_lines(lines: list[Line], bodies: list[str]) -> str:
    return "\n".join(line.lead + body + line.trail for line, body in zip(lines, bodies))


def _split_with(pattern: re.Pattern[str], text: str) -> list[str]:
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        if match.end() > last and match.start() > last:
            pieces.append(text[last : match.end()])
            last = match.end()
    if last < len(text):
        pieces.append(text[last:])
    return [p for p in pieces if p]


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing whitespace, so ``"".join`` gives the text back."""
    return _split_with(_SENTENCE_END, text)


def split_to_fit(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Split ``text`` into consecutive pieces that each satisfy ``fits``.

    Pieces are whole sentences where possible (several sentences share a piece while they
    fit), then clauses, then words, then characters. ``"".join(result) == text``.
    """
    if fits(text):
        return [text]
    for splitter in (split_sentences, lambda t: _split_with(_CLAUSE_END, t), _WORD.findall, list):
        units = splitter(text)
        if len(units) > 1:
            break
    else:  # pragma: no cover - a single character that does not fit
        return [text]
    pieces: list[str] = []
    current = ""
    for unit in units:
        if current and not fits(current + unit):
            pieces.append(current)
            current = ""
        if fits(unit):
            current += unit
        else:
            pieces.extend(split_to_fit(unit, fits))
    if current:
        pieces.append(current)
    return pieces


def join_pieces(pieces: list[str]) -> str:
    """Join translations of consecutive pieces of one line: CJK needs no space between them."""
    out = ""
    for index, piece in enumerate(pieces):
        out += piece.strip()
        if index < len(pieces) - 1 and not _is_cjk_end(out):
            out += " "
    return out


def _is_cjk_end(text: str) -> bool:
    text = text.rstrip()
    return bool(text) and ("\u3000" <= text[-1] <= "\u9fff" or "\uff00" <= text[-1] <= "\uffef")
