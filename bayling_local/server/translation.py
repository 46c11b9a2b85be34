"""Translating request texts on the server's batch engine: plain text and HTML.

Each text of a LibreTranslate ``q`` (or each text node of an HTML one) is a segment of one
:meth:`Translator.translate_segments` call, so the pieces of a request are decoded together and
beside other clients' requests. HTML keeps its markup: tags, comments, ``<script>`` and
``<style>`` are passed through; only the text between them is translated.
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass

from ..languages import Language
from .backend import Backend

_MARKUP = re.compile(r"(<!--.*?-->|<![^>]*>|<[^>]*>)", re.S)
_RAW_OPEN = re.compile(r"<(script|style)\b", re.I)
_RAW_CLOSE = re.compile(r"</(script|style)\s*>", re.I)
_LETTER = re.compile(r"\w", re.U)


@dataclass
class Translated:
    text: str
    alternatives: list[str]


def html_parts(document: str) -> tuple[list[str], list[int]]:
    """Split HTML into parts and the indexes of the text parts worth translating."""
    parts = _MARKUP.split(document)
    wanted: list[int] = []
    raw = False
    for index, part in enumerate(parts):
        if index % 2 == 1:  # markup
            if _RAW_OPEN.match(part):
                raw = True
            elif _RAW_CLOSE.match(part):
                raw = False
            continue
        if not raw and _LETTER.search(part):
            wanted.append(index)
    return parts, wanted


def plain_text_of_html(document: str) -> str:
    parts, wanted = html_parts(document)
    return " ".join(html.unescape(parts[i]).strip() for i in wanted)


def _keep_space(original: str, translated: str) -> str:
    """The translation with the original's leading and trailing whitespace around it."""
    lead = original[: len(original) - len(original.lstrip())]
    trail = original[len(original.rstrip()) :]
    return lead + translated.strip() + trail


def translate_texts(
    backend: Backend,
    texts: list[str],
    target: Language,
    *,
    fmt: str = "text",
    alternatives: int = 0,
    cancel: threading.Event | None = None,
) -> list[Translated]:
    """Translate every text (blocking; run it off the event loop)."""
    beam = alternatives + 1 if alternatives else 1
    segments: list[str] = []
    owners: list[tuple[int, int | None]] = []  # (text index, html part index or None)
    layouts: dict[int, list[str]] = {}
    for index, text in enumerate(texts):
        if fmt == "html":
            parts, wanted = html_parts(text)
            layouts[index] = parts
            for part_index in wanted:
                segments.append(html.unescape(parts[part_index]).strip())
                owners.append((index, part_index))
        elif text.strip():
            segments.append(text)
            owners.append((index, None))
    results = (
        backend.translator().translate_segments(
            segments, target, beam=beam, n_best=beam, cancel=cancel
        )
        if segments
        else []
    )
    out = [Translated(text if fmt != "html" else text, []) for text in texts]
    for (index, part_index), result in zip(owners, results):
        if part_index is None:
            out[index] = Translated(
                result.text, [alt for alt, _ in result.alternatives[1 : alternatives + 1]]
            )
        else:
            parts = layouts[index]
            parts[part_index] = _keep_space(parts[part_index], html.escape(result.text, False))
    for index, parts in layouts.items():
        out[index] = Translated("".join(parts), [])
    return out
