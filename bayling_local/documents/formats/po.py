"""Gettext catalogues (.po) through polib.

Every untranslated message gets a machine translation and the ``fuzzy`` flag, so that
translators and ``msgfmt`` (which skips fuzzy entries by default) treat it as a suggestion to
review. Translated, obsolete and header entries are left alone. Plural messages fill every
form the catalogue's ``Plural-Forms`` header asks for (the singular source for form 0, the
plural source for the others; a one-form language such as Chinese gets the plural source).
Placeholders (``%s``, ``%(name)s``, ``%1$d``, ``{name}``, ``{0}``) and inline tags are kept
exactly: they are placeholders the translation must contain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import InputError
from ..model import Block, Document, Masker, unmask

# printf (C, Python %-format with names, positional %1$s), brace formats ({name}, {0}, {}),
# and tag-like markup (<b>, </b>, <br/>): copied into the translation unchanged.
PLACEHOLDER = re.compile(
    r"%(?:\d+\$|\([^)\s]+\))?[-#0 +']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t|I64)?"
    r"[diouxXeEfFgGaAcspnrb%@]"
    r"|\{\{|\}\}|\{[A-Za-z0-9_.\[\]]*(?:![rsa])?(?::[^{}]*)?\}"
    r"|</?[A-Za-z][^<>]*>"
)


def mask_placeholders(text: str) -> tuple[str, dict[str, str]]:
    masker = Masker()
    return PLACEHOLDER.sub(lambda m: masker.token(m.group(0)), text), masker.table


@dataclass
class _Message:
    entry: object  # polib.POEntry
    field: str  # "msgid" | "msgid_plural"
    table: dict[str, str]
    text: str


class PoDocument(Document):
    format = "po"

    def __init__(self, text: str) -> None:
        import polib

        self.text = text
        try:
            self.catalogue = polib.pofile(text, wrapwidth=78)
        except (OSError, ValueError) as exc:
            raise InputError(f"not a valid PO file: {exc}") from None
        self.messages: list[_Message] = []
        for entry in self.catalogue:
            if entry.obsolete or not entry.msgid or entry.translated() or _has_text(entry):
                continue
            fields = ["msgid", "msgid_plural"] if entry.msgid_plural else ["msgid"]
            for field in fields:
                masked, table = mask_placeholders(getattr(entry, field))
                self.messages.append(_Message(entry, field, table, masked))
        self.nplurals = _nplurals(self.catalogue.metadata.get("Plural-Forms", ""))

    def blocks(self) -> list[Block]:
        return [
            Block(
                message.text,
                where=f"line {getattr(message.entry, 'linenum', '?')} ({message.field})",
                split=False,
                top_level=False,
            )
            for message in self.messages
        ]

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        del bilingual  # a catalogue holds source and translation already
        done: dict[int, dict[str, str]] = {}
        for index, message in enumerate(self.messages):
            translated = translations.get(index)
            if translated is None:
                continue
            done.setdefault(id(message.entry), {})[message.field] = unmask(
                translated.strip(), message.table
            )
        if not done:
            return self.text.encode("utf-8")
        for message in self.messages:
            entry = message.entry
            texts = done.get(id(entry))
            if not texts or message.field != "msgid":
                continue
            singular = texts.get("msgid", "")
            if entry.msgid_plural:  # type: ignore[attr-defined]
                plural = texts.get("msgid_plural", singular)
                forms = self.nplurals
                entry.msgstr_plural = (  # type: ignore[attr-defined]
                    {0: plural}
                    if forms == 1
                    else {n: singular if n == 0 else plural for n in range(forms)}
                )
            else:
                entry.msgstr = singular  # type: ignore[attr-defined]
            if "fuzzy" not in entry.flags:  # type: ignore[attr-defined]
                entry.flags.append("fuzzy")  # type: ignore[attr-defined]
        out = str(self.catalogue)
        if self.text.endswith("\n") and not out.endswith("\n"):
            out += "\n"
        return out.encode("utf-8")


def _has_text(entry: object) -> bool:
    if getattr(entry, "msgstr", ""):
        return True
    return any(value for value in (getattr(entry, "msgstr_plural", {}) or {}).values())


def _nplurals(header: str) -> int:
    for part in header.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == "nplurals" and value.strip().isdigit():
            return max(1, int(value.strip()))
    return 2


def parse(data: str) -> PoDocument:
    return PoDocument(data)
