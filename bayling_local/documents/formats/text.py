"""Plain text: every non-blank line is a block; blank lines and indentation stay as they are."""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Block, Document, strip_edges


class TextDocument(Document):
    format = "txt"

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self._blocks: list[Block] = []
        self._line_of: list[int] = []
        for number, line in enumerate(self.lines):
            _, body, _ = strip_edges(line)
            if body:
                self._blocks.append(Block(body, where=f"line {number + 1}"))
                self._line_of.append(number)

    def blocks(self) -> list[Block]:
        return self._blocks

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        lines = list(self.lines)
        for index, number in reversed(list(enumerate(self._line_of))):
            translated = translations.get(index)
            if translated is None or translated == self._blocks[index].text:
                continue
            lead, _, trail = strip_edges(lines[number])
            new = lead + translated.strip() + trail
            lines[number] = lines[number] + "\n" + new if bilingual else new
        return "\n".join(lines).encode("utf-8")


def parse(data: str) -> TextDocument:
    return TextDocument(data)
