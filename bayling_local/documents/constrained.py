"""Forcing required phrases (glossary terms, placeholders) into a translation.

The second pass first asks the batch engine for lexically constrained beam search
(``DecodeRequest.required``). Whatever still lacks a phrase after it (an engine build without
constrained beams, or a beam that ran out of room) is repaired here by *forced continuation*,
which needs nothing but :meth:`Engine.complete`: for each missing phrase, in source order, the
translation is cut where the phrase's source term sits (at the same relative position, on a
word boundary), the phrase is written there as the start of the model's answer, and the model
continues the sentence greedily after it. The model thus writes the rest of the sentence
around the term, and the phrase is present by construction. A prompt too long for the context
gets the phrase appended as a last resort, so the guarantee holds for every segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .glossary import contains


def append_missing(text: str, phrases: Sequence[str], *, spaced: bool = True) -> str:
    """The last resort: add the phrases ``text`` misses at its end."""
    out = text.rstrip()
    for phrase in phrases:
        if not contains(out, phrase):
            out = (out + " " + phrase) if out and spaced else out + phrase
    return out


def cut_at(text: str, fraction: float, *, spaced: bool) -> str:
    """The start of ``text`` up to ``fraction`` of its length, at the nearest word boundary."""
    fraction = min(max(fraction, 0.0), 1.0)
    at = round(len(text) * fraction)
    if not spaced:
        return text[:at]
    boundaries = [0, len(text)] + [i for i, char in enumerate(text) if char == " "]
    cut = min(boundaries, key=lambda b: (abs(b - at), b))
    return text[:cut].rstrip()


def forced_continuation(
    engine,  # bayling_local.engine.Engine
    prompt: str,
    first: str,
    phrases: Sequence[tuple[str, float]],  # (phrase, relative position of its source)
    sampling,  # bayling_local.engine.SamplingConfig
    *,
    stops: Sequence[str] = (),
    spaced: bool = True,
) -> str:
    """A translation that contains every phrase, written by the model around them."""
    text = first.strip()
    for phrase, where in sorted(phrases, key=lambda p: p[1]):
        if contains(text, phrase):
            continue
        head = cut_at(text, where, spaced=spaced)
        if spaced and head and not head.endswith(" "):
            head += " "
        forced = head + phrase
        budget = max(8, sampling.max_tokens - len(engine.tokenize(forced, add_bos=False)))
        try:
            generation = engine.complete(
                prompt + forced, replace(sampling, max_tokens=budget), stops=tuple(stops)
            )
            rest = generation.result()
        except Exception:  # no room left in the context: keep what is forced
            rest = ""
        joiner = "" if (not spaced or not rest or rest[:1] in " ,.;:!?)]}'\"") else " "
        text = (forced + joiner + rest).strip()
    return append_missing(text, [p for p, _ in phrases], spaced=spaced)
