"""Bytes a user hands in (a file, stdin, arguments) turned into text, or one clear line why not.

UTF-8 is the norm. Text saved as UTF-16 or UTF-32 (Windows' "Unicode" in Notepad, PowerShell's
``>``) is recognised by its byte-order mark, or for UTF-16 without one by its pattern of zero
bytes, and decoded rather than called binary. Anything else with zero bytes is binary data.
"""

from __future__ import annotations

import codecs

from .errors import InputError

_BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


def _guess_utf16(data: bytes) -> str | None:
    """``utf-16-le``/``-be`` for BOM-less UTF-16 of mostly ASCII/Latin text, else None."""
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2], data[1::2]
    half = len(data) // 2
    if odd.count(0) >= 0.6 * half and even.count(0) <= 0.1 * half:
        return "utf-16-le"
    if even.count(0) >= 0.6 * half and odd.count(0) <= 0.1 * half:
        return "utf-16-be"
    return None


def _printable(text: str) -> bool:
    bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    return bad <= max(1, len(text) // 100)


def other_unicode(data: bytes, *, name: str = "the input") -> str | None:
    """The text of UTF-16 or UTF-32 ``data`` (by its BOM, or UTF-16 by its zero bytes), BOM
    removed; None for anything else (UTF-8, binary), which the caller decodes as before."""
    for bom, codec, label in _BOMS:
        # A BOM alone is weak evidence (b"\xff\xfe" also starts Latin-1 junk): real UTF-16/32
        # text has zero bytes somewhere (any newline, space or ASCII character).
        if label != "UTF-8" and data.startswith(bom) and b"\x00" in data[len(bom) :]:
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{name} starts like {label} text but is not valid {label} "
                    f"(bad bytes at offset {exc.start + len(bom)})"
                ) from None
    guessed = _guess_utf16(data) if b"\x00" in data else None
    if guessed is not None:
        try:
            candidate = data.decode(guessed)
        except UnicodeDecodeError:
            return None
        if _printable(candidate) and "\x00" not in candidate:
            return candidate.removeprefix("\ufeff")
    return None


def decode_input(data: bytes, *, name: str = "the input") -> str:
    """The text in ``data`` (BOM removed, CRLF as LF); :class:`InputError` for binary data,
    bad UTF-8 or an empty input."""
    text: str | None = None
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{name} starts like {label} text but is not valid {label} "
                    f"(bad bytes at offset {exc.start + len(bom)})"
                ) from None
            break
    if text is None and b"\x00" in data:
        guessed = _guess_utf16(data)
        if guessed is not None:
            try:
                candidate = data.decode(guessed)
            except UnicodeDecodeError:
                candidate = None
            if candidate is not None and _printable(candidate):
                text = candidate
        if text is None:
            raise InputError(f"{name} looks like binary data, not text")
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name} is not valid UTF-8 text (bad byte at offset {exc.start}); "
                "save it as UTF-8 and try again"
            ) from None
    if "\x00" in text:
        raise InputError(f"{name} looks like binary data, not text")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.strip():
        raise InputError(f"there is no text to translate ({name} is empty)")
    return text
