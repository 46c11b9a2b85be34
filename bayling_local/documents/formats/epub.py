"""EPUB books: a zip of XHTML chapters, each translated through the HTML reader.

The chapters are the manifest's ``application/xhtml+xml`` items (the navigation document
included, so the table of contents is translated too); every other entry (images, CSS, fonts,
the package document, ``toc.ncx``) is copied byte for byte, with the zip's own entry order and
settings, ``mimetype`` first and uncompressed as the EPUB container requires.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Mapping
from xml.etree import ElementTree

from ...errors import InputError
from ..model import Block, Document
from .html import HtmlDocument

CONTAINER = "META-INF/container.xml"


def _chapters(archive: zipfile.ZipFile) -> list[str]:
    """Names of the XHTML entries, in the package's manifest order."""
    names = archive.namelist()
    try:
        container = ElementTree.fromstring(archive.read(CONTAINER))
        rootfile = next(
            e.get("full-path") or "" for e in container.iter() if e.tag.endswith("rootfile")
        )
        package = ElementTree.fromstring(archive.read(rootfile))
    except (KeyError, StopIteration, ElementTree.ParseError):
        return [n for n in names if n.lower().endswith((".xhtml", ".html", ".htm"))]
    base = posixpath.dirname(rootfile or "")
    chapters = []
    for item in package.iter():
        if item.tag.endswith("item") and item.get("media-type") == "application/xhtml+xml":
            href = posixpath.normpath(posixpath.join(base, item.get("href", "")))
            if href in names:
                chapters.append(href)
    return chapters


class EpubDocument(Document):
    format = "epub"

    def __init__(self, data: bytes, name: str = "") -> None:
        self.data = data
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
            self.archive.testzip()
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"not an EPUB book (not a readable zip archive: {exc})") from None
        self.chapters: list[tuple[str, HtmlDocument, int]] = []  # (entry, doc, first block)
        self._blocks: list[Block] = []
        for entry in _chapters(self.archive):
            raw = self.archive.read(entry)
            try:
                text = raw.decode("utf-8").removeprefix("\ufeff")
            except UnicodeDecodeError as exc:
                raise InputError(f"{entry} in the EPUB is not UTF-8 (byte {exc.start})") from None
            document = HtmlDocument(text, entry)
            self.chapters.append((entry, document, len(self._blocks)))
            self._blocks.extend(document.blocks())

    def blocks(self) -> list[Block]:
        return self._blocks

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        replaced: dict[str, bytes] = {}
        for entry, document, first in self.chapters:
            count = len(document.blocks())
            local = {
                i - first: text for i, text in translations.items() if first <= i < first + count
            }
            if any(local[i] != document.blocks()[i].text for i in local):
                replaced[entry] = document.render(local, bilingual=bilingual)
        if not replaced:
            return self.data
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as writer:
            for info in self.archive.infolist():
                content = replaced.get(info.filename, self.archive.read(info))
                writer.writestr(info, content, compress_type=info.compress_type)
        return out.getvalue()


def parse(data: bytes, name: str = "") -> EpubDocument:
    return EpubDocument(data, name)
