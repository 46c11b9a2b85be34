"""Translating request texts and uploaded documents on the server's batch engine.

Each text of a LibreTranslate ``q`` is translated as a small document by the documents library
(:func:`bayling_local.documents.translate_bytes`): sentence segmentation, the glossary, the
translation memory and HTML that keeps its markup all come from the same code as
``bayling-local translate -i``. The texts of one request are translated side by side, so their
segments are decoded together, and beside other clients' requests, on the one batch engine.

``alternatives`` (LibreTranslate's n-best) need beam search's candidates, which the document
pipeline does not return; such requests are translated segment by segment with
``Translator.translate_segments(beam=...)``, the glossary's terms as constraints, and no memory.
"""

from __future__ import annotations

import html
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Cancelled
from ..languages import Language
from .backend import Backend

_MARKUP = re.compile(r"(<!--.*?-->|<![^>]*>|<[^>]*>)", re.S)
_RAW_OPEN = re.compile(r"<(script|style|code|pre|textarea)\b", re.I)
_RAW_CLOSE = re.compile(r"</(script|style|code|pre|textarea)\s*>", re.I)
_LETTER = re.compile(r"\w", re.U)


@dataclass
class Translated:
    text: str
    alternatives: list[str]


def documents() -> Any:
    """The documents library, or None where this build has none (then: plain text only)."""
    try:
        from .. import documents as library
    except ImportError:  # pragma: no cover - the library ships with the package
        return None
    return library


def file_types() -> tuple[str, ...]:
    library = documents()
    if library is None:  # pragma: no cover
        return (".txt",)
    return tuple(ext for fmt in library.FORMATS.values() for ext in fmt.extensions)


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
    lead = original[: len(original) - len(original.lstrip())]
    trail = original[len(original.rstrip()) :]
    return lead + translated.strip() + trail


def translate_texts(
    backend: Backend,
    texts: list[str],
    target: Language,
    *,
    source: Language | None = None,
    fmt: str = "text",
    alternatives: int = 0,
    glossary: Any = None,
    memory: bool = False,
    cancel: threading.Event | None = None,
) -> list[Translated]:
    """Translate every text (blocking: run it off the event loop)."""
    library = documents()
    # Alternatives come from beam search, as wide as the server's batch engine allows.
    alternatives = min(alternatives, backend.config.beam - 1)
    if alternatives or library is None:
        return _translate_segments(
            backend, texts, target, fmt=fmt, alternatives=alternatives, glossary=glossary,
            cancel=cancel,
        )  # fmt: skip
    out = [Translated(text, []) for text in texts]
    todo = [i for i, text in enumerate(texts) if text.strip()]
    fmt_obj = library.FORMATS["html" if fmt == "html" else "txt"]

    def one(index: int) -> None:
        store = library.TranslationMemory() if memory else None
        try:
            options = library.DocumentOptions(
                target=target, source=source, glossary=glossary, memory=store
            )
            data, _ = library.translate_bytes(
                texts[index].encode("utf-8"),
                fmt_obj,
                backend.translator(),
                options,
                name="q",
                cancel=cancel,
            )
        finally:
            if store is not None:
                store.close()
        text = data.decode("utf-8")
        if not texts[index].endswith("\n"):
            text = text.removesuffix("\n")
        out[index] = Translated(text, [])

    if len(todo) == 1:
        one(todo[0])
    elif todo:
        workers = min(len(todo), max(2, backend.config.parallel * 2))
        with ThreadPoolExecutor(workers, thread_name_prefix="bayling-q") as pool:
            for future in [pool.submit(one, i) for i in todo]:
                future.result()
    return out


def _translate_segments(
    backend: Backend,
    texts: list[str],
    target: Language,
    *,
    fmt: str,
    alternatives: int,
    glossary: Any,
    cancel: threading.Event | None,
) -> list[Translated]:
    """Each text (or HTML text run) as one segment, with beam search's n-best."""
    beam = alternatives + 1
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
    constraints = [glossary.required(s) or None for s in segments] if glossary else None
    results = (
        backend.translator().translate_segments(
            segments, target, beam=beam, n_best=beam, constraints=constraints, cancel=cancel
        )
        if segments
        else []
    )
    if cancel is not None and cancel.is_set():
        raise Cancelled("the client went away")
    out = [Translated(text, []) for text in texts]
    for (owner, where), result in zip(owners, results):
        if where is None:
            alts = [alt for alt, _ in result.alternatives[1:] if alt != result.text]
            out[owner] = Translated(result.text, alts[:alternatives])
        else:
            parts = layouts[owner]
            parts[where] = _keep_space(parts[where], html.escape(result.text, False))
    for index, parts in layouts.items():
        out[index] = Translated("".join(parts), [])
    return out


def translate_file(
    backend: Backend,
    data: bytes,
    filename: str,
    target: Language,
    *,
    source: Language | None,
    glossary: Any,
    memory: bool,
    cancel: threading.Event,
) -> bytes:
    """Translate an uploaded document held in memory (its format from its name)."""
    library = documents()
    if library is None:  # pragma: no cover
        from ..translate import validate_text

        result = _translate_segments(
            backend, [validate_text(data)], target, fmt="text", alternatives=0, glossary=None,
            cancel=cancel,
        )  # fmt: skip
        return result[0].text.encode("utf-8")
    fmt = library.format_for(Path(filename))
    store = library.TranslationMemory() if memory else None
    try:
        options = library.DocumentOptions(
            target=target, source=source, glossary=glossary, memory=store
        )
        output, _ = library.translate_bytes(
            data, fmt, backend.translator(), options, name=filename, cancel=cancel
        )
    finally:
        if store is not None:
            store.close()
    return output
