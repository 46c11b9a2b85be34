"""The model store's manifest: what is installed, read as untrusted data.

``manifest.json`` is a file on disk that anything can edit, so it is checked like user input
before the store acts on it: the top level must be ``{"format": 1, "models": [...]}``, every
entry must have every field with its type, names must be store names, and a stored model's
file must be a plain file name inside the store (never ``../x``, never a path, never a dot
file); only a *linked* model (``models import --link``) may name an absolute path, and
removing it never deletes that file. A manifest that fails any check raises
:class:`ManifestError` naming the file and what is wrong; callers leave it as it is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}(:[A-Za-z0-9._+-]{1,40})?$")
_MAX_MANIFEST_BYTES = 16 << 20  # thousands of models fit in far less; more is not a manifest


class ManifestError(ModelError):
    """The manifest cannot be used as it is; the message names the file and the fault."""


@dataclass(frozen=True)
class StoreEntry:
    """One installed model, as recorded in the manifest."""

    name: str
    file: str  # a file name inside the store, or an absolute path for a linked import
    size: int
    sha256: str
    source: str  # "hf:REPO@COMMIT" (converted), "hf:REPO/FILE@COMMIT" (GGUF) or "import:PATH"
    quantization: str
    prompt_format: str
    architecture: str
    added: str  # ISO 8601, UTC
    linked: bool = False
    known_model: str | None = None  # the registry name, when the GGUF is a known BayLing model
    context_length: int | None = None

    @property
    def base_name(self) -> str:
        """The name without a ``:QUANT`` tag."""
        return self.name.split(":", 1)[0]

    def path_in(self, root: Path) -> Path:
        return Path(self.file) if self.linked else root / self.file

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


# field -> (accepted types, may be null)
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "name": ((str,), False),
    "file": ((str,), False),
    "size": ((int,), False),
    "sha256": ((str,), False),
    "source": ((str,), False),
    "quantization": ((str,), False),
    "prompt_format": ((str,), False),
    "architecture": ((str,), False),
    "added": ((str,), False),
    "linked": ((bool,), False),
    "known_model": ((str,), True),
    "context_length": ((int,), True),
}
_REQUIRED = {f.name for f in dataclasses.fields(StoreEntry) if f.default is dataclasses.MISSING}


def is_store_file_name(file: str) -> bool:
    """A name that stays inside the store: no separators, no ``..``, no dot file, no NUL."""
    return (
        bool(file)
        and len(file) <= 255
        and "/" not in file
        and "\\" not in file
        and "\x00" not in file
        and not file.startswith(".")
        and os.path.basename(file) == file
    )


def _check_entry(number: int, item: Any) -> StoreEntry:
    where = f"model #{number}"
    if not isinstance(item, dict):
        raise ValueError(f"{where} is a {type(item).__name__}, not an object")
    missing = sorted(_REQUIRED - item.keys())
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    values: dict[str, Any] = {}
    for key, (types, nullable) in _FIELD_TYPES.items():
        if key not in item:
            continue
        value = item[key]
        if value is None and nullable:
            values[key] = None
            continue
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            raise ValueError(
                f"{where}: {key} is {json.dumps(value)[:60]}, not a {types[0].__name__}"
            )
        values[key] = value
    entry = StoreEntry(**values)
    where = f"model {entry.name!r}" if isinstance(entry.name, str) else where
    if not NAME_RE.match(entry.name):
        raise ValueError(f"{where}: {entry.name!r} is not a valid model name")
    if entry.size < 0:
        raise ValueError(f"{where}: negative size")
    if entry.linked:
        if not os.path.isabs(entry.file) or "\x00" in entry.file:
            raise ValueError(f"{where}: a linked model's file must be an absolute path")
    elif not is_store_file_name(entry.file):
        raise ValueError(f"{where}: file {entry.file!r} is not a file name inside the store")
    return entry


def parse_manifest(data: bytes, path: Path) -> list[StoreEntry]:
    """The entries of a manifest's bytes, or :class:`ManifestError` saying what is wrong."""

    def damaged(reason: str) -> ManifestError:
        return ManifestError(
            f"the model manifest {path} is damaged ({reason}); it was left as it is: "
            "fix it, or move it away and import the models again"
        )

    if len(data) > _MAX_MANIFEST_BYTES:
        raise damaged(f"{len(data)} bytes, far more than a manifest holds")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise damaged(f"not UTF-8 text: bad byte at offset {exc.start}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise damaged(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise damaged("JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise damaged("the top level is not an object")
    version = document.get("format")
    if version != MANIFEST_FORMAT:
        if isinstance(version, int) and not isinstance(version, bool) and version > 0:
            raise ManifestError(
                f"the model manifest {path} has format {version}; it was written by a newer "
                "bayling-local (it was left as it is)"
            )
        raise damaged(f"format is {json.dumps(version)[:40]}, not {MANIFEST_FORMAT}")
    models = document.get("models")
    if not isinstance(models, list):
        raise damaged("'models' is not a list")
    entries: list[StoreEntry] = []
    seen: set[str] = set()
    try:
        for number, item in enumerate(models, 1):
            entry = _check_entry(number, item)
            if entry.name.lower() in seen:
                raise ValueError(f"model {entry.name!r} is listed twice")
            seen.add(entry.name.lower())
            entries.append(entry)
    except ValueError as exc:
        raise damaged(str(exc)) from None
    return entries


def dump_manifest(entries: list[StoreEntry]) -> str:
    """The manifest's text for ``entries``."""
    data = {"format": MANIFEST_FORMAT, "models": [e.to_json() for e in entries]}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
