"""The common model of a document: blocks of text to translate, and placeholders.

Every format reads a file into a :class:`Document`: an ordered list of :class:`Block` (a
paragraph, a cue, a message, a table cell) and a ``render`` that writes the file back with the
translated blocks in place of the source ones. Everything that is not text (markup, code,
timings, URLs, placeholders such as ``%s``) stays in the document object, never in the text the
model sees, except where it sits inside a sentence: there it becomes a placeholder token
``⟦n⟧`` that the translation must contain (the pipeline forces it, like a glossary term) and
that ``render`` turns back into the original bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

OPEN, CLOSE = "⟦", "⟧"


@dataclass
class Block:
    """One unit of a document's text, in reading order."""

    text: str  # what is translated: plain text with ⟦n⟧ placeholders
    where: str = ""  # for messages: "line 12", "word/document.xml paragraph 3"
    split: bool = True  # may be split into sentences (False: cues, short UI strings)
    top_level: bool = True  # bilingual output: a block of its own (False: inline "a / b")

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The placeholder tokens of ``text``, in order."""
        return tuple(token for token in tokens_in(self.text))


class Document(ABC):
    """A parsed file: its blocks, and how to write it back."""

    format: str = ""

    @abstractmethod
    def blocks(self) -> list[Block]:
        """The text to translate, in reading order (the same list on every call)."""

    @abstractmethod
    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        """The file with block ``i`` replaced by ``translations[i]`` (blocks missing keep theirs).

        With no translation that differs from its source, the result is the input's bytes.
        """


@dataclass
class Masker:
    """Numbers placeholders within one block and remembers what each stands for."""

    table: dict[str, str] = field(default_factory=dict)
    count: int = 0

    def token(self, original: str) -> str:
        self.count += 1
        token = f"{OPEN}{self.count}{CLOSE}"
        self.table[token] = original
        return token

    def pair(self) -> tuple[str, str, int]:
        """Tokens for an element with content: ``⟦n⟧`` ... ``⟦/n⟧``."""
        self.count += 1
        return f"{OPEN}{self.count}{CLOSE}", f"{OPEN}/{self.count}{CLOSE}", self.count


def tokens_in(text: str) -> list[str]:
    """Placeholder tokens in ``text`` in order."""
    found = []
    start = text.find(OPEN)
    while start >= 0:
        end = text.find(CLOSE, start + 1)
        if end < 0:
            break
        body = text[start + 1 : end]
        if body.lstrip("/").isdigit():
            found.append(text[start : end + 1])
        start = text.find(OPEN, end + 1)
    return found


def split_tokens(text: str) -> list[str]:
    """``text`` cut into plain runs and placeholder tokens (``"".join`` gives it back)."""
    parts: list[str] = []
    cursor = 0
    for token in tokens_in(text):
        at = text.find(token, cursor)
        if at > cursor:
            parts.append(text[cursor:at])
        parts.append(token)
        cursor = at + len(token)
    if cursor < len(text):
        parts.append(text[cursor:])
    return parts


def repair_tokens(translated: str, expected: tuple[str, ...] | list[str]) -> str:
    """Each expected token exactly once: extra copies dropped, missing ones appended.

    The pipeline forces placeholders into translations, so the appending is a last resort
    (e.g. a segment too long for constrained decoding); it keeps the markup complete.
    """
    seen: set[str] = set()
    out: list[str] = []
    wanted = set(expected)
    for part in split_tokens(translated):
        if part in wanted:
            if part in seen:
                continue
            seen.add(part)
        elif tokens_in(part) == [part]:  # a token the source never had
            continue
        out.append(part)
    missing = [t for t in expected if t not in seen]
    text = "".join(out)
    if missing:
        text = (text + " " if text and not text.endswith(" ") else text) + "".join(missing)
    return text


def unmask(translated: str, table: Mapping[str, str]) -> str:
    """Replace each placeholder token by what it stands for (each exactly once)."""
    return restore(repair_tokens(translated, list(table)), table)


def restore(text: str, table: Mapping[str, str]) -> str:
    """Replace the placeholder tokens in ``text`` by what they stand for."""
    return "".join(table.get(part, part) for part in split_tokens(text))


def strip_edges(text: str) -> tuple[str, str, str]:
    """``(leading whitespace, body, trailing whitespace)``."""
    body = text.strip()
    if not body:
        return text, "", ""
    start = text.index(body[0])
    return text[:start], body, text[start + len(body) :]
