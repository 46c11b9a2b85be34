"""Whole-document translation: formats, sentence segmentation, glossary, translation memory.

The library entry points (the CLI, the terminal UI and the server call these):

- :func:`translate_document` (one file), :func:`translate_folder` (a tree),
  :func:`translate_bytes` (in memory), each taking a ``Translator``, :class:`DocumentOptions`,
  a ``progress`` callback receiving :class:`DocumentProgress` and a ``cancel`` event;
- :class:`TranslationMemory` and :func:`load_glossary`.
"""

from __future__ import annotations

from .formats import FORMATS, format_for, supported
from .glossary import Glossary, load_glossary
from .memory import TranslationMemory, memory_path
from .pipeline import (
    DocumentOptions,
    DocumentProgress,
    DocumentSummary,
    FolderSummary,
    translate_bytes,
    translate_document,
    translate_folder,
)

__all__ = [
    "FORMATS",
    "DocumentOptions",
    "DocumentProgress",
    "DocumentSummary",
    "FolderSummary",
    "Glossary",
    "TranslationMemory",
    "format_for",
    "load_glossary",
    "memory_path",
    "supported",
    "translate_bytes",
    "translate_document",
    "translate_folder",
]
