"""Subtitles: SubRip (.srt, read and written by the ``srt`` library) and WebVTT (.vtt).

A cue is one block: its lines are joined and translated together (a sentence often runs over
two lines), then wrapped back onto as many lines as the cue had, balanced by length. Numbering,
timings, cue settings, and WebVTT's header, NOTE, STYLE and REGION blocks stay byte for byte.
Formatting tags inside a cue (``<i>``, ``<b>``, ``<v Speaker>``, ``{\\an8}``) are placeholders.

WebVTT's grammar is a sequence of blank-line separated blocks, so the WebVTT reader here is the
spec's block splitter (a cue is the block whose first or second line holds ``-->``); it keeps
the file's own bytes everywhere it translates nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ...errors import InputError
from ..model import Block, Document, Masker, repair_tokens, restore, split_tokens, tokens_in


def mask_cue_tags(text: str) -> tuple[str, dict[str, str]]:
    """Cue text with ``<...>`` tags and ``{...}`` override codes as placeholders."""
    masker = Masker()
    out = ""
    position = 0
    while position < len(text):
        char = text[position]
        closing = {"<": ">", "{": "}"}.get(char)
        end = text.find(closing, position + 1) if closing else -1
        if closing and end > position + 1 and "\n" not in text[position:end]:
            out += masker.token(text[position : end + 1])
            position = end + 1
        else:
            out += char
            position += 1
    return out, masker.table


_CJK_BREAKS = "，、。！？；：,.!?;:）」』"


def wrap_lines(text: str, count: int, measure: Callable[[str], int] = len) -> list[str]:
    """``text`` on ``count`` lines of similar length, broken at spaces (or anywhere in CJK).

    ``measure`` gives a piece's visible length (tags and placeholders count for nothing).
    """
    text = " ".join(text.split())
    if count <= 1 or not text:
        return [text]
    words = text.split(" ")
    spaced = len(words) > 1
    if not spaced and count == 2:  # Chinese, Japanese: break after punctuation near the middle
        middle = measure(text) / 2
        breaks = [i + 1 for i, char in enumerate(text[:-1]) if char in _CJK_BREAKS]
        near = [b for b in breaks if abs(measure(text[:b]) - middle) <= 0.35 * middle]
        if near:
            cut = min(near, key=lambda b: abs(measure(text[:b]) - middle))
            return [text[:cut], text[cut:]]
    units = words if spaced else list(text)
    count = min(count, len(units))
    joiner = " " if spaced else ""
    width = measure(text) / count
    lines: list[str] = []
    current = ""
    for index, unit in enumerate(units):
        candidate = current + joiner + unit if current else unit
        lines_left = count - len(lines) - 1
        units_left = len(units) - index
        must_break = bool(current) and units_left <= lines_left
        size, grown = measure(current), measure(candidate)
        closer = abs(size - width) <= abs(grown - width)
        if current and lines_left > 0 and (must_break or (grown > width and closer)):
            lines.append(current)
            current = unit
        else:
            current = candidate
    lines.append(current)
    return lines


def _visible(text: str) -> int:
    return len("".join(part for part in split_tokens(text) if tokens_in(part) != [part]))


@dataclass
class _Cue:
    lines: list[str]  # the payload lines
    table: dict[str, str]
    text: str
    where: str
    prefix: str = ""  # tags before all the text (``<v Anna>``, ``<i>``): kept out of the prompt
    suffix: str = ""


def _cue_block(lines: list[str], where: str) -> _Cue | None:
    joined = " ".join(line.strip() for line in lines if line.strip())
    if not joined:
        return None
    masked, table = mask_cue_tags(joined)
    parts = split_tokens(masked)
    prefix = suffix = ""
    while parts and (parts[0] in table or not parts[0].strip()):
        prefix += table.get(parts[0], parts[0])
        parts.pop(0)
    while parts and (parts[-1] in table or not parts[-1].strip()):
        suffix = table.get(parts[-1], parts[-1]) + suffix
        parts.pop()
    if not parts:
        return None
    text = "".join(parts)
    kept = {token: table[token] for token in tokens_in(text)}
    return _Cue(lines, kept, text, where, prefix, suffix)


def _rewrap(cue: _Cue, translated: str) -> list[str]:
    # "-->" inside a cue's text would read as a timing line to every subtitle parser
    text = repair_tokens(translated.strip().replace("-->", "->"), list(cue.table))
    lines = [restore(line, cue.table) for line in wrap_lines(text, len(cue.lines), _visible)]
    lines[0] = cue.prefix + lines[0]
    lines[-1] = lines[-1] + cue.suffix
    return lines


class SrtDocument(Document):
    format = "srt"

    def __init__(self, text: str) -> None:
        import srt

        self.text = text
        try:
            self.subtitles = list(srt.parse(text))
        except srt.SRTParseError as exc:
            line = text.count("\n", 0, exc.expected_start) + 1
            snippet = text[exc.expected_start : exc.actual_start].strip().split("\n")[0][:40]
            raise InputError(
                f"not a valid SubRip file: line {line} is not a cue ({snippet!r})"
            ) from None
        self.cues: list[tuple[int, _Cue]] = []
        for position, subtitle in enumerate(self.subtitles):
            cue = _cue_block(subtitle.content.split("\n"), f"cue {subtitle.index}")
            if cue is not None:
                self.cues.append((position, cue))

    def blocks(self) -> list[Block]:
        return [Block(cue.text, where=cue.where, split=False) for _, cue in self.cues]

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        import srt

        changed = False
        subtitles = list(self.subtitles)
        for index, (position, cue) in enumerate(self.cues):
            translated = translations.get(index)
            if translated is None or translated == cue.text:
                continue
            changed = True
            new_lines = _rewrap(cue, translated)
            content = "\n".join((cue.lines + new_lines) if bilingual else new_lines)
            original = subtitles[position]
            subtitles[position] = srt.Subtitle(
                original.index, original.start, original.end, content, original.proprietary
            )
        if not changed:
            return self.text.encode("utf-8")
        eol = "\r\n" if "\r\n" in self.text else "\n"
        return srt.compose(subtitles, reindex=False, eol=eol).encode("utf-8")


class VttDocument(Document):
    format = "vtt"

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        first = self.lines[0].removeprefix("\ufeff").rstrip("\r") if self.lines else ""
        if not (first == "WEBVTT" or first.startswith(("WEBVTT ", "WEBVTT\t"))):
            raise InputError("not a WebVTT file: line 1 must start with WEBVTT")
        self.cues: list[tuple[int, _Cue]] = []  # (first payload line, cue)
        number = 0
        while number < len(self.lines):
            if not self.lines[number].strip():
                number += 1
                continue
            start = number
            while number < len(self.lines) and self.lines[number].strip():
                number += 1
            block = self.lines[start:number]
            if start == 0:
                continue  # the header block
            timing = next((i for i, line in enumerate(block[:2]) if "-->" in line), None)
            if timing is None:
                continue  # NOTE, STYLE, REGION
            payload = [line.rstrip("\r") for line in block[timing + 1 :]]
            cue = _cue_block(payload, f"line {start + timing + 1}")
            if cue is not None:
                self.cues.append((start + timing + 1, cue))

    def blocks(self) -> list[Block]:
        return [Block(cue.text, where=cue.where, split=False) for _, cue in self.cues]

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        lines = list(self.lines)
        changed = False
        for index in reversed(range(len(self.cues))):
            first, cue = self.cues[index]
            translated = translations.get(index)
            if translated is None or translated == cue.text:
                continue
            changed = True
            eol = "\r" if lines[first].endswith("\r") else ""
            new_lines = [line + eol for line in _rewrap(cue, translated)]
            old = lines[first : first + len(cue.lines)]
            lines[first : first + len(cue.lines)] = (old + new_lines) if bilingual else new_lines
        if not changed:
            return self.text.encode("utf-8")
        return "\n".join(lines).encode("utf-8")


def parse_srt(data: str) -> SrtDocument:
    return SrtDocument(data)


def parse_vtt(data: str) -> VttDocument:
    return VttDocument(data)
