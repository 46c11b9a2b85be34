"""Markdown, through markdown-it-py's token stream (CommonMark + tables).

Only the text of inline content (paragraphs, headings, list items, table cells, block quotes)
is translated, in place in the original lines: everything markdown-it reports as code (fenced
and indented blocks, inline code), HTML (blocks and inline), link destinations, images and
autolinks is kept byte for byte, inline pieces as placeholders. Emphasis markers stay in the
text the model sees (``**bold**``), as translators of Markdown expect. YAML front matter keeps
its keys and layout; the values of ``title``, ``description``, ``summary`` and ``subtitle`` are
translated. A paragraph that spans several lines is written back as one line (Markdown joins
them anyway).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..model import Block, Document, Masker, unmask

FRONT_MATTER_KEYS = ("title", "description", "summary", "subtitle")
# Bare URLs in running text (markdown-it's linkify is off): kept out of the translation.
_BARE_URL = re.compile(r"(?:https?|ftp)://[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'\"]")


@dataclass
class _Inline:
    first_line: int  # 0-based line in the file
    lines: list[str]  # the inline content's lines as markdown-it gives them
    table: dict[str, str]
    text: str
    top_level: bool
    block_end: int  # line after the enclosing block (bilingual copies go there)
    block_start: int
    quoted: str = ""
    in_table: bool = False  # front matter: the quote character of the value


def _mask_inline(content: str, children: list) -> tuple[str, dict[str, str]]:
    """The inline source with code, HTML, link targets and images as placeholders."""
    masker = Masker()
    spans: list[tuple[int, int, str]] = []  # (start, end, "single" | "open" | "close")
    labels: dict[tuple[int, int], str] = {}  # reference links whose text is their label
    label_starts: list[int] = []
    cursor = 0

    def add(start: int, end: int, role: str = "single") -> None:
        nonlocal cursor
        if 0 <= start < end <= len(content):
            spans.append((start, end, role))
            cursor = end

    for child in children:
        kind = child.type
        if kind == "code_inline":
            start = content.find(child.markup, cursor)
            if start < 0:
                continue
            inner = content.find(child.content, start + len(child.markup)) if child.content else -1
            after = inner + len(child.content) if inner >= 0 else start + len(child.markup)
            end = content.find(child.markup, after)
            if end >= 0:
                add(start, end + len(child.markup))
        elif kind == "html_inline":
            start = content.find(child.content, cursor)
            if start >= 0:
                add(start, start + len(child.content))
        elif kind == "image":
            start = content.find("![", cursor)
            src = child.attrs.get("src", "")
            at = content.find(str(src), start) if start >= 0 else -1
            end = content.find(")", at + len(str(src))) if at >= 0 else -1
            if start >= 0 and end >= 0:
                add(start, end + 1)
        elif kind == "link_open":
            if child.markup == "autolink":
                start = content.find("<", cursor)
                end = content.find(">", start)
                if start >= 0 and end >= 0:
                    add(start, end + 1)
            else:
                start = content.find("[", cursor)
                if start >= 0:
                    add(start, start + 1, "open")
                    label_starts.append(start + 1)
        elif kind == "link_close":
            if child.markup == "autolink":
                continue
            start = content.find("]", cursor)  # the end of the link text
            if start < 0:
                continue
            follows = content[start + 1 : start + 2]
            label = content[label_starts.pop() : start] if label_starts else ""
            if follows == "(":  # inline link: up to the matching parenthesis
                depth, end = 0, -1
                for position in range(start + 1, len(content)):
                    char = content[position]
                    if char == "(" and content[position - 1] != "\\":
                        depth += 1
                    elif char == ")" and content[position - 1] != "\\":
                        depth -= 1
                        if depth == 0:
                            end = position
                            break
                if end >= 0:
                    add(start, end + 1, "close")
            elif follows == "[":  # full or collapsed reference: "][label]" or "][]"
                end = content.find("]", start + 2)
                if end >= 0:
                    add(start, end + 1, "close")
                    if end == start + 2 and label:  # collapsed: keep the label, not the text
                        labels[(start, end + 1)] = f"][{label}]"
            else:  # shortcut reference "[label]": the translated text needs the label kept
                add(start, start + 1, "close")
                if label:
                    labels[(start, start + 1)] = f"][{label}]"
    # A link's "[" and "](target)" are a pair of tokens, ⟦n⟧ ... ⟦/n⟧, so the pipeline keeps
    # them in order around the translated link text.
    text = ""
    last = 0
    opened: list[tuple[str, str]] = []
    for start, end, role in spans:
        text += _mask_urls(content[last:start], masker)
        if role == "open":
            opening, closing, _ = masker.pair()
            masker.table[opening] = content[start:end]
            opened.append((opening, closing))
            text += opening
        elif role == "close" and opened:
            _, closing = opened.pop()
            masker.table[closing] = labels.get((start, end), content[start:end])
            text += closing
        else:
            text += masker.token(content[start:end])
        last = end
    text += _mask_urls(content[last:], masker)
    return text, masker.table


def _mask_urls(text: str, masker: Masker) -> str:
    return _BARE_URL.sub(lambda m: masker.token(m.group(0)), text)


class MarkdownDocument(Document):
    format = "md"

    def __init__(self, text: str) -> None:
        from markdown_it import MarkdownIt

        self.text = text
        self.lines = text.split("\n")
        self.inlines: list[_Inline] = []
        body_start = self._front_matter()
        body = "\n".join(self.lines[body_start:])
        parser = MarkdownIt("commonmark").enable("table")
        tokens = parser.parse(body)
        containers: list[str] = []
        for position, token in enumerate(tokens):
            if token.nesting == 1:
                containers.append(token.type)
            elif token.nesting == -1 and containers:
                containers.pop()
            if token.type != "inline" or token.map is None or not token.content.strip():
                continue
            parent = tokens[position - 1] if position else None
            top = (
                parent is not None
                and parent.level == 0
                and parent.type
                in (
                    "paragraph_open",
                    "heading_open",
                )
            )
            masked, table = _mask_inline(token.content, token.children or [])
            start = token.map[0] + body_start
            self.inlines.append(
                _Inline(
                    first_line=start,
                    lines=token.content.split("\n"),
                    table=table,
                    text=" ".join(part.strip() for part in masked.split("\n")),
                    top_level=top,
                    block_start=(parent.map[0] if parent and parent.map else token.map[0])
                    + body_start,
                    block_end=(parent.map[1] if parent and parent.map else token.map[1])
                    + body_start,
                    in_table=parent is not None and parent.type in ("th_open", "td_open"),
                )
            )

    def _front_matter(self) -> int:
        """Register translatable front matter values; return the first line of the body."""
        if not self.lines or self.lines[0].rstrip("\r") != "---":
            return 0
        end = next(
            (i for i in range(1, len(self.lines)) if self.lines[i].rstrip("\r") in ("---", "...")),
            None,
        )
        if end is None:
            return 0
        import yaml

        try:
            data = yaml.safe_load("\n".join(self.lines[1:end]))
        except yaml.YAMLError:
            return end + 1
        if not isinstance(data, dict):
            return end + 1
        for number in range(1, end):
            line = self.lines[number].rstrip("\r")
            key, colon, raw = line.partition(":")
            if not colon or key != key.strip() or key not in FRONT_MATTER_KEYS:
                continue
            value = data.get(key)
            if not isinstance(value, str) or not value.strip():
                continue
            raw_value = raw.strip()
            quote = raw_value[0] if raw_value[:1] in ("'", '"') else ""
            shown = raw_value[1:-1] if quote else raw_value
            if (quote == "'" and shown.replace("''", "'") != value) or (
                quote != "'" and not quote and shown != value
            ):
                continue
            if quote == '"' and json.loads(raw_value) != value:
                continue
            self.inlines.append(
                _Inline(
                    first_line=number,
                    lines=[raw_value],
                    table={},
                    text=value,
                    top_level=False,
                    block_start=number,
                    block_end=number + 1,
                    quoted=quote or "plain",
                )
            )
        return end + 1

    def blocks(self) -> list[Block]:
        return [
            Block(
                inline.text,
                where=f"line {inline.first_line + 1}",
                top_level=inline.top_level,
            )
            for inline in self.inlines
        ]

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        lines = list(self.lines)
        edits: dict[int, list[tuple[int, int, str]]] = {}
        deleted: set[int] = set()
        copies: dict[int, list[str]] = {}  # bilingual: lines to insert before line N
        cursors: dict[int, int] = {}
        pending: list[tuple[_Inline, str]] = []
        for index, inline in enumerate(self.inlines):
            translated = translations.get(index)
            if translated is None or translated == inline.text:
                continue
            pending.append((inline, translated))
        if not pending:
            return self.text.encode("utf-8")
        for inline, translated in pending:
            if inline.quoted:
                replacement = _yaml_value(translated.strip(), inline.quoted)
            else:
                replacement = unmask(_escape_new_markup(translated.strip(), inline), inline.table)
                if inline.in_table:
                    replacement = _escape_pipes(replacement)
                if bilingual and not inline.top_level:
                    replacement = f"{' '.join(p.strip() for p in inline.lines)} / {replacement}"
            first = inline.first_line
            span = self._locate(first, inline.lines[0], cursors)
            if span is None:
                continue
            edits.setdefault(first, []).append((span[0], span[1], replacement))
            for offset in range(1, len(inline.lines)):
                deleted.add(first + offset)
            if bilingual and inline.top_level:
                prefix = lines[first][: span[0]]
                copies.setdefault(inline.block_end, []).extend(["", prefix + replacement])
        if bilingual:  # the copy carries the translation; the original lines keep the source
            for inline, _translated in pending:
                if inline.top_level:
                    edits.pop(inline.first_line, None)
                    for offset in range(1, len(inline.lines)):
                        deleted.discard(inline.first_line + offset)
        for number, spans in edits.items():
            line = lines[number]
            for start, end, replacement in sorted(spans, reverse=True):
                line = line[:start] + replacement + line[end:]
            lines[number] = line
        out: list[str] = []
        for number, line in enumerate(lines):
            if number in copies:
                out.extend(copies.pop(number))
            if number not in deleted:
                out.append(line)
        trailing = [line for number in sorted(copies) for line in copies[number]]
        if trailing:
            while out and out[-1] == "":
                out.pop()
            out.extend(trailing)
            out.append("")
        return "\n".join(out).encode("utf-8")

    def _locate(self, number: int, content: str, cursors: dict[int, int]) -> tuple[int, int] | None:
        """Where ``content`` (one line of inline source) sits in line ``number``."""
        line = self.lines[number]
        cursor = cursors.get(number, 0)
        at = line.find(content, cursor)
        if at < 0:
            return None
        cursors[number] = at + len(content)
        return at, at + len(content)


# Characters that are Markdown syntax inside a line: a translation that brings one the source
# did not have gets it escaped, so a stray "*" or "[" cannot restructure the document.
_INLINE_SYNTAX = "\\`*_[]<>"
_LINE_START_SYNTAX = "#>-+="


def _escape_new_markup(text: str, inline: _Inline) -> str:
    source = "\n".join(inline.lines)
    out = []
    for char in text:
        if char in _INLINE_SYNTAX and char not in source:
            out.append("\\" + char)
        else:
            out.append(char)
    escaped = "".join(out)
    if escaped[:1] in _LINE_START_SYNTAX and not source.startswith(escaped[:1]):
        escaped = "\\" + escaped
    return escaped


def _escape_pipes(text: str) -> str:
    out, previous = [], ""
    for char in text:
        out.append("\\|" if char == "|" and previous != "\\" else char)
        previous = char
    return "".join(out)


def _yaml_value(text: str, quoted: str) -> str:
    """A YAML scalar for ``text`` in the value's original quoting, quoted where plain won't do."""
    import yaml

    if quoted == "'":
        return "'" + text.replace("'", "''") + "'"
    if quoted == "plain":
        try:
            if yaml.safe_load(f"k: {text}") == {"k": text}:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def parse(data: str) -> MarkdownDocument:
    return MarkdownDocument(data)
