"""XLIFF 1.2 and 2.0 (the CAT tools' exchange format) through lxml.

Every unit without a target (or with an empty one) gets a machine translation. Inline codes
(1.2: ``x``, ``bx``, ``ex``, ``ph``, ``bpt``, ``ept``, ``it``; 2.0: ``ph``, ``sc``, ``ec``,
``cp``) become placeholders and come back as copies of the same elements; elements with
content (1.2 ``g``, ``mrk``; 2.0 ``pc``, ``mrk``) become a pair of placeholders around their
translated content. Machine output is marked for review: 1.2 ``state="needs-review-translation"``
(with ``state-qualifier="mt-suggestion"``), 2.0 ``state="translated"`` (2.0 has no review
state; ``subState="bayling-local:mt"`` says where it came from). Units with
``translate="no"`` are left alone.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import InputError
from ..model import Block, Document, Masker, repair_tokens, split_tokens

NS20 = "urn:oasis:names:tc:xliff:document:2.0"
PAIRED = frozenset({"g", "pc", "mrk"})


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


@dataclass
class _Unit:
    source: Any  # the <source> element
    holder: Any  # 1.2: <trans-unit>; 2.0: <segment>
    text: str
    codes: dict[str, tuple[str, Any]] = field(default_factory=dict)  # token -> (kind, element)
    where: str = ""


def _mask(element: Any, masker: Masker, codes: dict[str, tuple[str, Any]]) -> str:
    out = element.text or ""
    for child in element:
        if not isinstance(child.tag, str):  # comments and processing instructions
            out += child.tail or ""
            continue
        name = _local(child.tag)
        if name in PAIRED:
            opening, closing, _ = masker.pair()
            shell = copy.copy(child)
            for grandchild in list(shell):
                shell.remove(grandchild)
            shell.text = None
            shell.tail = None
            codes[opening] = ("open", shell)
            codes[closing] = ("close", None)
            out += opening + _mask(child, masker, codes) + closing
        else:
            token = masker.token(name)
            element_copy = copy.deepcopy(child)
            element_copy.tail = None
            codes[token] = ("empty", element_copy)
            out += token
        out += child.tail or ""
    return out


def _build(target: Any, text: str, codes: Mapping[str, tuple[str, Any]]) -> None:
    """Fill ``target`` from translated text with the inline codes put back."""
    text = repair_tokens(text, list(codes))
    stack = [target]
    last: list[Any] = [None]  # the last child appended at each depth (for tails)

    def add_text(piece: str) -> None:
        if last[-1] is None:
            stack[-1].text = (stack[-1].text or "") + piece
        else:
            last[-1].tail = (last[-1].tail or "") + piece

    for part in split_tokens(text):
        code = codes.get(part)
        if code is None:
            add_text(part)
            continue
        kind, element = code
        if kind == "empty":
            new = copy.deepcopy(element)
            stack[-1].append(new)
            last[-1] = new
        elif kind == "open":
            new = copy.deepcopy(element)
            stack[-1].append(new)
            last[-1] = new
            stack.append(new)
            last.append(None)
        elif len(stack) > 1:
            stack.pop()
            last.pop()


class XliffDocument(Document):
    format = "xliff"

    def __init__(self, data: bytes, name: str = "") -> None:
        from lxml import etree

        self.data = data
        parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)
        try:
            self.tree = etree.fromstring(data, parser).getroottree()
        except etree.XMLSyntaxError as exc:
            line = exc.lineno if exc.lineno else "?"
            message = str(exc.msg if hasattr(exc, "msg") else exc).split(", line")[0]
            raise InputError(f"not well-formed XML at line {line}: {message}") from None
        root = self.tree.getroot()
        namespace = root.tag.partition("}")[0].lstrip("{") if root.tag.startswith("{") else ""
        if _local(root.tag) != "xliff":
            raise InputError(f"not an XLIFF file: the root element is <{_local(root.tag)}>")
        self.version = (
            "2.0" if namespace == NS20 or root.get("version", "").startswith("2") else "1.2"
        )
        self.ns = namespace
        self.units: list[_Unit] = []
        q = (lambda name: f"{{{namespace}}}{name}") if namespace else (lambda name: name)
        if self.version == "1.2":
            for unit in root.iter(q("trans-unit")):
                if unit.get("translate") == "no":
                    continue
                self._add(unit, unit.find(q("source")), unit.find(q("target")), unit)
        else:
            for unit in root.iter(q("unit")):
                if unit.get("translate") == "no":
                    continue
                for segment in unit.iter(q("segment")):
                    self._add(unit, segment.find(q("source")), segment.find(q("target")), segment)

    def _add(self, unit: Any, source: Any, target: Any, holder: Any) -> None:
        if source is None:
            return
        if target is not None and ("".join(target.itertext()).strip() or len(target)):
            return
        codes: dict[str, tuple[str, Any]] = {}
        text = _mask(source, Masker(), codes)
        if not text.strip():
            return
        where = f'<{_local(unit.tag)} id="{unit.get("id", "?")}"> line {source.sourceline}'
        self.units.append(_Unit(source, holder, text, codes, where))

    def blocks(self) -> list[Block]:
        return [Block(unit.text, where=unit.where, top_level=False) for unit in self.units]

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        del bilingual  # XLIFF holds source and target already
        from lxml import etree

        changed = False
        for index, unit in enumerate(self.units):
            translated = translations.get(index)
            if translated is None:
                continue
            changed = True
            target = unit.holder.find(self._q("target"))
            if target is None:
                target = etree.Element(self._q("target"), nsmap=None)
                unit.source.addnext(target)
                target.tail = unit.source.tail
                unit.source.tail = _indent_between(unit.source)
            else:
                for child in list(target):
                    target.remove(child)
                target.text = None
            if unit.source.get("{http://www.w3.org/XML/1998/namespace}space") == "preserve":
                target.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
            _build(target, translated.strip(), unit.codes)
            if self.version == "1.2":
                target.set("state", "needs-review-translation")
                target.set("state-qualifier", "mt-suggestion")
            else:
                unit.holder.set("state", "translated")
                unit.holder.set("subState", "bayling-local:mt")
        if not changed:
            return self.data
        out = etree.tostring(self.tree, xml_declaration=True, encoding="UTF-8")
        if self.data.startswith(b"<?xml"):  # keep the file's own declaration's spelling
            out = self.data[: self.data.index(b"?>") + 2] + out[out.index(b"?>") + 2 :]
        else:
            out = out[out.index(b"?>") + 2 :].lstrip(b"\n")
        return out + (b"\n" if self.data.endswith(b"\n") and not out.endswith(b"\n") else b"")

    def _q(self, name: str) -> str:
        return f"{{{self.ns}}}{name}" if self.ns else name


def _indent_between(source: Any) -> str:
    """The whitespace before ``source``, so the new target lines up with it."""
    previous = source.getprevious()
    text = previous.tail if previous is not None else source.getparent().text
    return text if text is not None and not text.strip() else ""


def parse(data: bytes, name: str = "") -> XliffDocument:
    return XliffDocument(data, name)
