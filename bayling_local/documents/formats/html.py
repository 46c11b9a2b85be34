"""HTML and XHTML through Python's HTML parser (``html.parser``), spliced into the source.

The parser reports every tag, text run, comment and declaration with its position; the writer
copies the source verbatim and replaces only translated text and the values of ``alt`` and
``title`` attributes, so the markup round-trips byte for byte. Text inside ``script``,
``style``, ``code``, ``pre``, ``textarea`` and any element marked ``translate="no"`` is left
alone. Text runs joined by inline elements (``<b>``, ``<em>``, ``<a>``, ``<br>``...) are one
segment, the tags placeholders (a pair around an element's content), so a sentence is
translated whole; block elements end a segment. With bilingual output, a block-level element
(``p``, ``h1``..``h6``, ``li``, ``td``...) that holds translated text is followed by a copy of
itself carrying the translation.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser

from ..model import Block, Document, Masker, repair_tokens, split_tokens, strip_edges

SKIP = frozenset(
    {"script", "style", "code", "pre", "textarea", "kbd", "samp", "var", "svg", "math"}
)
ATTRIBUTES = ("alt", "title")
BILINGUAL_BLOCKS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td", "th", "caption",
     "figcaption", "blockquote", "title"}
)  # fmt: skip
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)  # fmt: skip


@dataclass
class _Edit:
    start: int  # offset in the source
    end: int
    original: str  # decoded text (text runs) or attribute value
    kind: str  # "text" | "attr"
    quote: str = '"'
    element: int = -1  # index of the enclosing bilingual element, if any


@dataclass
class _Element:
    tag: str
    start: int
    end: int = -1  # offset after its end tag
    edits: list[int] = field(default_factory=list)
    nested: bool = False  # holds another bilingual element


class _Scanner(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0]
        for index, char in enumerate(source):
            if char == "\n":
                self.line_starts.append(index + 1)
        self.stack: list[tuple[str, bool, int]] = []  # (tag, skipping, element index or -1)
        self.edits: list[_Edit] = []
        self.elements: list[_Element] = []
        self.pending_text: tuple[int, str] | None = None
        # every tag: (start, end, "start" | "end" | "empty", tag, keeps its content as is)
        self.tags: list[tuple[int, int, str, str, bool]] = []

    def _position(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    @property
    def skipping(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def _flush(self, end: int) -> None:
        if self.pending_text is None:
            return
        start, _ = self.pending_text
        self.pending_text = None
        raw = self.source[start:end]
        if not raw.strip() or self.skipping:
            return
        self._add_edit(_Edit(start, end, html.unescape(raw), "text"))

    def _add_edit(self, edit: _Edit) -> None:
        owner = next((index for _, _, index in reversed(self.stack) if index >= 0), -1)
        edit.element = owner
        self.edits.append(edit)
        if owner >= 0:
            self.elements[owner].edits.append(len(self.edits) - 1)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._position()
        self._flush(start)
        raw = self.get_starttag_text() or ""
        skipping = self.skipping or tag in SKIP or dict(attrs).get("translate") == "no"
        kept = tag in SKIP or dict(attrs).get("translate") == "no"
        self.tags.append((start, start + len(raw), "empty" if tag in VOID else "start", tag, kept))
        if tag in VOID:
            if not skipping:
                self._attributes(start, raw, attrs)
            return
        element = -1
        if tag in BILINGUAL_BLOCKS and not skipping:
            for _, _, index in self.stack:
                if index >= 0:
                    self.elements[index].nested = True
            self.elements.append(_Element(tag, start))
            element = len(self.elements) - 1
        self.stack.append((tag, skipping, element))
        if not skipping:  # after the push: a block's own alt/title travel with its copy
            self._attributes(start, raw, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._position()
        self._flush(start)
        raw = self.get_starttag_text() or ""
        self.tags.append((start, start + len(raw), "empty", tag, False))
        if not self.skipping:
            self._attributes(start, self.get_starttag_text() or "", attrs)

    def _attributes(self, start: int, raw: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {name for name, value in attrs if name in ATTRIBUTES and value and value.strip()}
        if not wanted:
            return
        lowered = raw.lower()
        position = len(raw.split(None, 1)[0]) if raw.split() else 0
        while position < len(raw):
            # the next attribute name: skip whitespace, then read to '=', whitespace or '>'
            while position < len(raw) and raw[position] in " \t\n\r\f/":
                position += 1
            name_start = position
            while position < len(raw) and raw[position] not in " \t\n\r\f=>/":
                position += 1
            name = lowered[name_start:position]
            while position < len(raw) and raw[position] in " \t\n\r\f":
                position += 1
            if position >= len(raw) or raw[position] != "=":
                if name_start == position:
                    position += 1
                continue
            position += 1
            while position < len(raw) and raw[position] in " \t\n\r\f":
                position += 1
            quote = raw[position] if position < len(raw) and raw[position] in "'\"" else ""
            value_start = position + (1 if quote else 0)
            if quote:
                value_end = raw.find(quote, value_start)
                value_end = len(raw) if value_end < 0 else value_end
            else:
                value_end = value_start
                while value_end < len(raw) and raw[value_end] not in " \t\n\r\f>":
                    value_end += 1
            if name in wanted:
                value = html.unescape(raw[value_start:value_end])
                self._add_edit(
                    _Edit(start + value_start, start + value_end, value, "attr", quote or '"')
                )
                wanted.discard(name)
            position = value_end + (1 if quote else 0)

    def handle_endtag(self, tag: str) -> None:
        start = self._position()
        self._flush(start)
        closing = self.source.find(">", start)
        self.tags.append(
            (start, len(self.source) if closing < 0 else closing + 1, "end", tag, False)
        )
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                closing_end = self.source.find(">", start)
                end = len(self.source) if closing_end < 0 else closing_end + 1
                for _, _, index in self.stack[depth:]:
                    if index >= 0:
                        self.elements[index].end = end
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if self.pending_text is None:
            self.pending_text = (self._position(), data)

    def _other(self, *_args: object) -> None:
        self._flush(self._position())

    handle_comment = handle_decl = handle_pi = unknown_decl = _other  # type: ignore[assignment]

    def finish(self) -> None:
        self.close()
        self._flush(len(self.source))


# Elements that live inside a sentence: a run of text across them is one segment, the tags
# becoming placeholders (a pair around an element's content, one token for an empty one).
INLINE = frozenset(
    {"a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em", "font",
     "i", "img", "ins", "kbd", "label", "mark", "q", "rp", "rt", "ruby", "s", "samp", "small",
     "span", "strong", "sub", "sup", "time", "tt", "u", "var", "br", "wbr"}
)  # fmt: skip


@dataclass
class _Run:
    """Text runs joined across inline tags: one segment."""

    start: int
    end: int
    lead: str
    trail: str
    text: str  # with placeholders
    table: dict[str, tuple[int, int]]  # token -> the source span it stands for
    element: int
    where: str = ""


class HtmlDocument(Document):
    format = "html"

    def __init__(self, text: str, name: str = "") -> None:
        self.text = text
        self.name = name
        scanner = _Scanner(text)
        scanner.feed(text)
        scanner.finish()
        self.edits = scanner.edits
        self.elements = scanner.elements
        self.tags = scanner.tags
        self.units: list[_Run | int] = []  # a run of text, or the index of an attribute edit
        self._blocks: list[Block] = []
        for unit in self._units():
            if isinstance(unit, _Run):
                body = unit.text
                start = unit.start
            else:
                body = " ".join(self.edits[unit].original.split())
                start = self.edits[unit].start
            if not body:
                continue
            line = text.count("\n", 0, start) + 1
            where = f"{name + ' ' if name else ''}line {line}"
            self.units.append(unit)
            self._blocks.append(Block(body, where=where))

    # -- segments ---------------------------------------------------------------------------

    def _units(self) -> list[_Run | int]:
        """Attribute edits and runs of text edits (in source order)."""
        units: list[_Run | int] = []
        current: list[int] = []
        for index, edit in enumerate(self.edits):
            if edit.kind != "text":
                units.append(index)
                continue
            if current:
                last = self.edits[current[-1]]
                if edit.element == last.element and self._inline_gap(last.end, edit.start):
                    current.append(index)
                    continue
                units.append(self._run(current))
            current = [index]
        if current:
            units.append(self._run(current))
        return sorted(units, key=lambda u: u.start if isinstance(u, _Run) else self.edits[u].start)

    def _gap_tags(self, start: int, end: int) -> list[tuple[int, int, str, str, bool]]:
        return [t for t in self.tags if start <= t[0] < end]

    def _inline_gap(self, start: int, end: int) -> bool:
        return all(tag in INLINE for _, _, _, tag, _ in self._gap_tags(start, end))

    def _run(self, indices: list[int]) -> _Run:
        first, last = self.edits[indices[0]], self.edits[indices[-1]]
        lead, _, _ = strip_edges(first.original)
        _, _, trail = strip_edges(last.original)
        pieces: list[tuple[str, int, int, str]] = []  # (kind, start, end, tag)
        for number, index in enumerate(indices):
            edit = self.edits[index]
            pieces.append(("text", edit.start, edit.end, ""))
            if number + 1 < len(indices):
                pieces.extend(self._gap_pieces(edit.end, self.edits[indices[number + 1]].start))
        masker = Masker()
        table: dict[str, tuple[int, int]] = {}
        tokens: list[str] = [""] * len(pieces)
        open_at: dict[str, list[int]] = {}
        for position, (kind, start, end, tag) in enumerate(pieces):
            if kind == "start":
                open_at.setdefault(tag, []).append(position)
            elif kind == "end" and open_at.get(tag):
                opener = open_at[tag].pop()
                opening, closing, _ = masker.pair()
                tokens[opener], tokens[position] = opening, closing
                table[opening] = (pieces[opener][1], pieces[opener][2])
                table[closing] = (start, end)
        out = ""
        for position, (kind, start, end, _) in enumerate(pieces):
            if kind == "text":
                out += html.unescape(self.text[start:end])
            elif kind == "space":
                out += " "
            elif tokens[position]:
                out += tokens[position]
            else:
                token = masker.token(self.text[start:end])
                table[token] = (start, end)
                out += token
        return _Run(
            first.start + len(lead),
            last.end - len(trail),
            lead,
            trail,
            " ".join(out.split()),
            table,
            first.element,
        )

    def _gap_pieces(self, start: int, end: int) -> list[tuple[str, int, int, str]]:
        """Tags, whitespace and kept elements (``code``, ``translate="no"``) between two texts."""
        events = self._gap_tags(start, end)
        pieces: list[tuple[str, int, int, str]] = []
        position, number = start, 0
        while number < len(events):
            at, until, kind, tag, kept = events[number]
            if at > position:
                raw = self.text[position:at]
                pieces.append(("space" if not raw.strip() else "single", position, at, ""))
            if kind == "start" and kept:  # the whole element, content and all, is one token
                depth, close = 0, None
                for later in range(number, len(events)):
                    if events[later][3] == tag and events[later][2] == "start":
                        depth += 1
                    elif events[later][3] == tag and events[later][2] == "end":
                        depth -= 1
                        if depth == 0:
                            close = later
                            break
                until = events[close][1] if close is not None else end
                pieces.append(("single", at, until, tag))
                position, number = until, (close if close is not None else len(events)) + 1
                continue
            pieces.append((kind if kind in ("start", "end") else "single", at, until, tag))
            position, number = until, number + 1
        if position < end:
            raw = self.text[position:end]
            pieces.append(("space" if not raw.strip() else "single", position, end, ""))
        return pieces

    def blocks(self) -> list[Block]:
        return self._blocks

    # -- writing ----------------------------------------------------------------------------

    def _span(self, unit: _Run | int) -> tuple[int, int]:
        if isinstance(unit, _Run):
            return unit.start, unit.end
        return self.edits[unit].start, self.edits[unit].end

    def _owner(self, unit: _Run | int) -> int:
        return unit.element if isinstance(unit, _Run) else self.edits[unit].element

    def _attr_text(self, index: int, translated: str) -> str:
        quote = self.edits[index].quote
        value = html.escape(translated.strip(), quote=False)
        return value.replace(quote, "&quot;" if quote == '"' else "&#x27;")

    def _run_text(self, run: _Run, translated: str, attrs: Mapping[int, str]) -> str:
        text = repair_tokens(translated.strip(), list(run.table))
        out = []
        for part in split_tokens(text):
            span = run.table.get(part)
            if span is None:
                out.append(html.escape(part, quote=False))
            else:
                inside = {
                    i: v for i, v in attrs.items() if span[0] <= self.edits[i].start < span[1]
                }
                out.append(self._splice(span[0], span[1], inside))
        return "".join(out)

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        attrs: dict[int, str] = {}  # attribute edit index -> new value
        runs: dict[int, str] = {}  # unit number -> translated text
        for number, unit in enumerate(self.units):
            translated = translations.get(number)
            if translated is None or translated == self._blocks[number].text:
                continue
            if isinstance(unit, _Run):
                runs[number] = translated
            else:
                attrs[unit] = self._attr_text(unit, translated)
        if not runs and not attrs:
            return self.text.encode("utf-8")
        replacements: dict[int, str] = {}  # unit number -> the source span's new text
        covered: set[int] = set()
        for number, translated in runs.items():
            run = self.units[number]
            assert isinstance(run, _Run)
            replacements[number] = self._run_text(run, translated, attrs)
            covered.update(i for i in attrs if run.start <= self.edits[i].start < run.end)
        for number, unit in enumerate(self.units):
            if isinstance(unit, int) and unit in attrs and unit not in covered:
                replacements[number] = attrs[unit]
        if not bilingual:
            return self._splice_units(0, len(self.text), replacements).encode("utf-8")
        # Bilingual: the source stays; a translated copy follows each innermost block element.
        inserts: dict[int, str] = {}
        copied: set[int] = set()
        for index, element in enumerate(self.elements):
            if element.nested or element.end < 0 or element.tag == "title":
                continue
            mine = {n: r for n, r in replacements.items() if self._owner(self.units[n]) == index}
            if mine:
                inserts[element.end] = self._splice_units(element.start, element.end, mine)
                copied.update(mine)
        inline = {}
        for number, text in replacements.items():  # outside a block element: "source / translation"
            if number not in copied:
                start, end = self._span(self.units[number])
                inline[number] = self.text[start:end] + " / " + text
        return self._splice_units(0, len(self.text), inline, inserts).encode("utf-8")

    def _splice_units(
        self,
        start: int,
        end: int,
        replaced: Mapping[int, str],
        inserts: Mapping[int, str] | None = None,
    ) -> str:
        points = sorted(
            [(*self._span(self.units[n]), text) for n, text in replaced.items()]
            + [(offset, offset, text) for offset, text in (inserts or {}).items()]
        )
        return self._apply(start, end, points)

    def _splice(self, start: int, end: int, attrs: Mapping[int, str]) -> str:
        """Source ``[start, end)`` with the given attribute edits applied."""
        points = sorted((self.edits[i].start, self.edits[i].end, text) for i, text in attrs.items())
        return self._apply(start, end, points)

    def _apply(self, start: int, end: int, points: list[tuple[int, int, str]]) -> str:
        out = []
        cursor = start
        for at, until, text in points:
            if at < cursor or at < start or until > end:
                continue
            out.append(self.text[cursor:at])
            out.append(text)
            cursor = until
        out.append(self.text[cursor:end])
        return "".join(out)


def parse(data: str, name: str = "") -> HtmlDocument:
    return HtmlDocument(data, name)
