"""The document formats: one module each, chosen by extension or by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError, UsageError
from ..model import Block, Document


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    description: str
    binary: bool  # parsed from bytes (zip or XML) rather than decoded text


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("txt", (".txt",), "plain text", False),
        Format("md", (".md", ".markdown"), "Markdown", False),
        Format("srt", (".srt",), "SubRip subtitles", False),
        Format("vtt", (".vtt",), "WebVTT subtitles", False),
        Format("html", (".html", ".htm", ".xhtml"), "HTML", False),
        Format("docx", (".docx",), "Word", True),
        Format("epub", (".epub",), "EPUB", True),
        Format("po", (".po", ".pot"), "gettext PO", False),
        Format("xliff", (".xliff", ".xlf"), "XLIFF 1.2/2.0", True),
    )
}
ALIASES = {"markdown": "md", "htm": "html", "xlf": "xliff", "text": "txt", "webvtt": "vtt"}


def supported() -> str:
    """The supported formats, for error messages and help."""
    return ", ".join(ext for f in FORMATS.values() for ext in f.extensions)


def format_for(path: Path | str, name: str | None = None) -> Format:
    """The format named by ``name``, else by ``path``'s extension."""
    if name:
        key = ALIASES.get(name.lower().lstrip("."), name.lower().lstrip("."))
        if key not in FORMATS:
            raise UsageError(f"unknown document format {name!r}; supported: {', '.join(FORMATS)}")
        return FORMATS[key]
    suffix = Path(path).suffix.lower()
    for candidate in FORMATS.values():
        if suffix in candidate.extensions:
            return candidate
    raise UsageError(
        f"cannot translate {Path(path).name}: unsupported format {suffix or '(no extension)'!r}; "
        f"supported: {supported()} (or name one with --format)"
    )


def _text(data: bytes, where: str) -> str:
    from ...inputs import other_unicode  # UTF-16/32 text is decoded, not called binary (#15)

    wide = other_unicode(data, name=where)
    if wide is not None:
        return wide
    if b"\x00" in data[:8192]:
        raise InputError(f"{where} looks like binary data, not text")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{where} is not valid UTF-8 (bad byte at line {line})") from None


def load(data: bytes, fmt: Format, name: str = "input") -> Document:
    """Parse ``data`` as ``fmt``; a failure is one :class:`InputError` naming the place."""
    loader = _loader(fmt.name)
    if fmt.binary:
        return loader(data, name)
    text = _text(data, name)
    bom = data.startswith(b"\xef\xbb\xbf")
    document = loader(text, name) if fmt.name == "html" else loader(text)
    if bom:
        document = _WithBom(document)
    return document


class _WithBom(Document):
    """Keeps a leading byte-order mark the text readers strip."""

    def __init__(self, inner: Document) -> None:
        self.inner = inner
        self.format = inner.format

    def blocks(self) -> list[Block]:
        return self.inner.blocks()

    def render(self, translations: Mapping[int, str], *, bilingual: bool = False) -> bytes:
        return b"\xef\xbb\xbf" + self.inner.render(translations, bilingual=bilingual)


def _loader(name: str) -> Callable[..., Document]:
    """The format's ``parse`` (imported on first use: a run loads only its own parser)."""
    import importlib

    module, function = _PARSERS[name]
    parse: Callable[..., Document] = getattr(
        importlib.import_module(f"{__name__}.{module}"), function
    )
    return parse


_PARSERS: dict[str, tuple[str, str]] = {
    "txt": ("text", "parse"),
    "md": ("markdown", "parse"),
    "srt": ("subtitles", "parse_srt"),
    "vtt": ("subtitles", "parse_vtt"),
    "html": ("html", "parse"),
    "docx": ("docx", "parse"),
    "epub": ("epub", "parse"),
    "po": ("po", "parse"),
    "xliff": ("xliff", "parse"),
}
