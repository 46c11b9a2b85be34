"""Sentence segmentation for document blocks, with sentencex.

BayLing was tuned and evaluated one sentence per instruction, so a paragraph is translated
sentence by sentence and put back together with its original spacing. sentencex (Wikimedia)
covers about 300 languages with rules and no model download, and handles abbreviations such
as "Dr." and "z. B." that a punctuation regex splits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..languages import Language

# Scripts written without spaces between sentences (and words).
_UNSPACED = ("Hans", "Hant", "Jpan", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr")


@dataclass(frozen=True)
class Sentence:
    """A sentence of a block and the whitespace that followed it."""

    text: str
    gap: str


def split_sentences(text: str, language: Language | None) -> tuple[str, list[Sentence]]:
    """``(leading whitespace, sentences)``; joining ``lead + s.text + s.gap`` gives ``text``."""
    body = text.lstrip()
    lead = text[: len(text) - len(body)]
    if not body:
        return text, []
    from sentencex import segment

    code = (language.code if language else "en").split("-")[0]
    try:
        pieces = [p for p in segment(code, body) if p]
    except Exception:  # an unknown code: sentencex's language fallbacks end in English rules
        pieces = [p for p in segment("en", body) if p]
    sentences: list[Sentence] = []
    cursor = 0
    for piece in pieces:
        core = piece.strip()
        if not core:
            continue
        at = body.find(core, cursor)
        if at < 0:  # sentencex normalised something: keep the block whole
            return lead, _whole(body)
        if sentences and at > cursor:
            previous = sentences[-1]
            sentences[-1] = Sentence(previous.text, previous.gap + body[cursor:at])
        elif not sentences and at > 0:
            return lead, _whole(body)
        end = at + len(core)
        stripped_end = len(body[:end].rstrip())
        sentences.append(Sentence(body[at:stripped_end], body[stripped_end:end]))
        cursor = end
    if not sentences:
        return lead, _whole(body)
    tail = body[cursor:]
    if tail.strip():
        sentences.append(Sentence(tail.strip(), tail[len(tail.rstrip()) :]))
        # keep any whitespace that preceded the leftover with the previous sentence
        stripped = tail.lstrip()
        if len(stripped) != len(tail):
            prev = sentences[-2]
            sentences[-2] = Sentence(prev.text, prev.gap + tail[: len(tail) - len(stripped)])
    else:
        last = sentences[-1]
        sentences[-1] = Sentence(last.text, last.gap + tail)
    return lead, sentences


def _whole(body: str) -> list[Sentence]:
    core = body.rstrip()
    return [Sentence(core, body[len(core) :])]


def unspaced(language: Language | None) -> bool:
    """Whether ``language`` joins sentences with no space (Chinese, Japanese, Thai...)."""
    return bool(language) and language.script in _UNSPACED  # type: ignore[union-attr]


def join_sentences(
    lead: str,
    sentences: list[Sentence],
    translations: list[str],
    target: Language | None,
    source: Language | None = None,
) -> str:
    """Translated sentences put back with the source's spacing, adapted to the target script.

    Between sentences, a plain space becomes nothing for Chinese/Japanese-like targets, and
    "no space" between sentences of such a source becomes one space for spaced targets.
    Newlines stay.
    """
    out = lead
    into_unspaced = unspaced(target)
    from_unspaced = unspaced(source)
    for index, translated in enumerate(translations[: len(sentences)]):
        out += translated.strip()
        gap = sentences[index].gap
        if index < len(sentences) - 1 and "\n" not in gap:
            if into_unspaced and not from_unspaced:
                gap = ""
            elif from_unspaced and not into_unspaced and not gap:
                gap = " "
        out += gap
    return out
