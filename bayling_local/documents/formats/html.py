"""HTML and XHTML through Python's HTML parser (``html.parser``), spliced into the source.

The parser reports every tag, text run, comment and declaration with its position; the writer
copies the source verbatim and replaces only translated text runs and the values of ``alt``
and ``title`` attributes, so the markup round-trips byte for byte. Text inside ``script``,
``style``, ``code``, ``pre``, ``textarea`` and any element marked ``translate="no"`` is left
alone. Each text run is a block (inline elements such as ``<b>`` split a sentence into runs).
With bilingual output, a block-level element (``p``, ``h1``..``h6``, ``li``, ``td``...) that
holds translated text is followed by a copy of itself carrying the translation.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser

from ..model import Block, Document, strip_edges

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
        self._blocks: list[Block] = []
        self._block_edit: list[int] = []
        for index, edit in enumerate(self.edits):
            _, body, _ = strip_edges(edit.original)
            if not body:
                continue
            line = text.count("\n", 0, edit.start) + 1
            where = f"{name + ' ' if name else ''}line {line}"
            self._blocks.append(Block(" ".join(body.split()), where=where))
            self._block_edit.append(index)

    def blocks(self) -> list[Block]:
        return self._blocks

    def _replacement(self, edit: _Edit, translated: str) -> str:
        lead, _, trail = strip_edges(edit.original)
        if edit.kind == "attr":
            value = html.escape(translated.strip(), quote=False)
            return value.replace(edit.quote, "&quot;" if edit.quote == '"' else "&#x27;")
        return (
            html.escape(lead, quote=False)
            + html.escape(translated.strip(), quote=False)
            + (html.escape(trail, quote=False))
        )

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        replaced: dict[int, str] = {}
        for block, edit_index in enumerate(self._block_edit):
            translated = translations.get(block)
            if translated is None or translated == self._blocks[block].text:
                continue
            replaced[edit_index] = self._replacement(self.edits[edit_index], translated)
        if not replaced:
            return self.text.encode("utf-8")
        if not bilingual:
            return self._splice(0, len(self.text), replaced).encode("utf-8")
        # Bilingual: the source stays; a translated copy follows each innermost block element.
        inserts: dict[int, str] = {}
        copied: set[int] = set()
        for element in self.elements:
            if element.nested or element.end < 0 or element.tag == "title":
                continue
            edits = {i: replaced[i] for i in element.edits if i in replaced}
            if edits:
                inserts[element.end] = self._splice(element.start, element.end, edits)
                copied.update(edits)
        inline = {i: text for i, text in replaced.items() if i not in copied}
        for index in inline:  # translated text outside a block element: "source / translation"
            edit = self.edits[index]
            source = self.text[edit.start : edit.end]
            inline[index] = source.rstrip() + " / " + inline[index].lstrip()
        out = self._splice(0, len(self.text), inline, inserts)
        return out.encode("utf-8")

    def _splice(
        self,
        start: int,
        end: int,
        replaced: Mapping[int, str],
        inserts: Mapping[int, str] | None = None,
    ) -> str:
        points = sorted(
            [(self.edits[i].start, self.edits[i].end, text) for i, text in replaced.items()]
            + [(offset, offset, text) for offset, text in (inserts or {}).items()]
        )
        out = []
        cursor = start
        for at, until, text in points:
            if at < start or until > end:
                continue
            out.append(self.text[cursor:at])
            out.append(text)
            cursor = until
        out.append(self.text[cursor:end])
        return "".join(out)


def parse(data: str, name: str = "") -> HtmlDocument:
    return HtmlDocument(data, name)
