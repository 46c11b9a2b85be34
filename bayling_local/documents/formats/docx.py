"""Word documents (.docx) through python-docx.

Blocks are the paragraphs of the body (table cells, nested tables and text boxes included),
of every header and footer (default, first-page and even-page), each translated whole so the
model sees whole sentences. Inline formatting inside a paragraph: runs keep their place and
their properties, but the translated sentence cannot be aligned word by word with the source
runs, so the whole translation goes into the paragraph's first run that holds text (its
style, e.g. a bold first word, then covers the sentence) and the other text runs are emptied,
not removed. Paragraph styles, numbering, tabs, breaks, fields, images, bookmarks and hyperlink
targets stay as they were; a paragraph whose runs all share one style looks exactly as before.
Footnotes, endnotes and comments are not translated.
"""

from __future__ import annotations

import copy
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import InputError
from ..model import Block, Document, strip_edges

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
T, P = f"{{{W}}}t", f"{{{W}}}p"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"


@dataclass
class _Paragraph:
    element: Any  # w:p
    texts: list[Any]  # its own w:t elements (not those of paragraphs nested in text boxes)
    text: str
    where: str


def _own_texts(paragraph: Any) -> list[Any]:
    texts = []
    for node in paragraph.iter(T):
        owner = node.getparent()
        while owner is not None and owner.tag != P:
            owner = owner.getparent()
        if owner is paragraph:
            texts.append(node)
    return texts


class DocxDocument(Document):
    format = "docx"

    def __init__(self, data: bytes, name: str = "") -> None:
        import docx
        from docx.opc.exceptions import PackageNotFoundError

        self.data = data
        try:
            self.document = docx.Document(io.BytesIO(data))
        except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise InputError(f"not a Word document (.docx): {exc}") from None
        except Exception as exc:  # lxml syntax errors inside a part
            raise InputError(f"not a readable Word document: {exc}") from None
        self.paragraphs: list[_Paragraph] = []
        parts: list[tuple[str, Any]] = [("body", self.document.element.body)]
        seen: set[int] = set()
        for number, section in enumerate(self.document.sections, start=1):
            for kind in (
                "header",
                "first_page_header",
                "even_page_header",
                "footer",
                "first_page_footer",
                "even_page_footer",
            ):
                part = getattr(section, kind)
                if part.is_linked_to_previous:
                    continue
                element = part._element  # noqa: SLF001 - python-docx exposes no public root
                if id(element) in seen:
                    continue
                seen.add(id(element))
                parts.append((f"section {number} {kind.replace('_', ' ')}", element))
        for label, root in parts:
            for count, paragraph in enumerate(root.iter(P), start=1):
                texts = _own_texts(paragraph)
                text = "".join(node.text or "" for node in texts)
                if text.strip():
                    self.paragraphs.append(
                        _Paragraph(paragraph, texts, text, f"{label} paragraph {count}")
                    )

    def blocks(self) -> list[Block]:
        return [Block(" ".join(p.text.split()), where=p.where) for p in self.paragraphs]

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        changed = False
        for index, paragraph in enumerate(self.paragraphs):
            translated = translations.get(index)
            if translated is None or translated == " ".join(paragraph.text.split()):
                continue
            changed = True
            if bilingual:
                twin = copy.deepcopy(paragraph.element)
                paragraph.element.addnext(twin)
                _fill(_own_texts(twin), paragraph.text, translated)
            else:
                _fill(paragraph.texts, paragraph.text, translated)
        if not changed:
            return self.data
        out = io.BytesIO()
        self.document.save(out)
        return out.getvalue()


def _fill(texts: list[Any], source: str, translated: str) -> None:
    lead, _, trail = strip_edges(source)
    first = next((node for node in texts if (node.text or "").strip()), texts[0])
    for node in texts:
        node.text = ""
    first.text = lead + translated.strip() + trail
    first.set(XML_SPACE, "preserve")


def parse(data: bytes, name: str = "") -> DocxDocument:
    return DocxDocument(data, name)
