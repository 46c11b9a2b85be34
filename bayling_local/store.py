"""The local model store: GGUF files with readable names and a manifest that describes them.

Layout, under :func:`bayling_local.paths.models_dir`::

    manifest.json              what is installed (name, file, size, sha256, source, ...)
    .lock                      taken while the manifest or the files change
    bayling-2-8b.Q4_K_M.gguf   the models, named ``<name>.<QUANT>.gguf``
    .downloads/                resumable partial downloads of ``models pull``

The manifest's format and its checks (it is untrusted data) live in :mod:`.manifest`; turning
a name the user typed into a GGUF path lives in :mod:`.resolve` (its names are importable from
here too). The manifest is only ever replaced whole (temp file + rename) while holding a file lock, so
two processes adding or removing models at once cannot lose each other's changes and a reader
never sees half a manifest. A model file is renamed into place and registered under the same
lock, after its header has been validated; a file that failed validation is never registered.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from . import paths, registry
from .errors import ModelError, OutputError, UsageError
from .gguf_file import GGUFInfo, inspect_gguf
from .manifest import MANIFEST_FORMAT as MANIFEST_FORMAT  # re-exported
from .manifest import (
    MANIFEST_NAME,
    NAME_RE,
    ManifestError,
    StoreEntry,
    dump_manifest,
    is_store_file_name,
    parse_manifest,
)
from .output import describe_os_error, new_file_mode, write_text
from .progress import progress

LOCK_TIMEOUT_S = 60.0
RUNNABLE_ARCHITECTURES = ("llama",)  # what the engine runs (LLaMA 1/2/3 and BayLing on them)
PULL_HINT = "bayling-local models pull bayling-2-8b"
_CHUNK = 1 << 20
_NAME_RE = NAME_RE


def validate_name(name: str) -> str:
    """A store name: letters, digits, ``._+-``, optionally ``:TAG``; never a path."""
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid model name {name!r}: use letters, digits, '.', '_', '+', '-' and at most one ':TAG'"
        )
    return name


_QUANT_SUFFIX_RE = re.compile(r"[._-](?:[IT]?Q\d[A-Z0-9_]*|BF16|F16|F32)$", re.IGNORECASE)


def default_name_for(path: Path) -> str:
    """A store name from a file name: ``bayling-2-8b.Q4_K_M.gguf`` -> ``bayling-2-8b``."""
    stem = path.name
    if stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    stem = _QUANT_SUFFIX_RE.sub("", stem) or stem
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip("-._+") or "model"
    return stem[:100]


def file_sha256(path: Path, *, description: str | None = None) -> str:
    """The sha256 of a file, with a progress bar for big ones."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with (
        progress(
            description or f"checking {path.name}", size, unit="bytes", quiet=size < (64 << 20)
        ) as bar,
        open(path, "rb") as handle,
    ):
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            bar.advance(len(chunk))
    return digest.hexdigest()


def validate_gguf(path: Path) -> GGUFInfo:
    """The header checks every model passes before it is registered: one the engine can run
    (a LLaMA-family architecture, with weights), not merely any GGUF llama.cpp knows."""
    info = inspect_gguf(path)
    if not info.architecture:
        raise ModelError(
            f"{path} does not say which model architecture it is (general.architecture)"
        )
    if info.architecture not in RUNNABLE_ARCHITECTURES:
        raise ModelError(
            f"{path} is a {info.architecture!r} model; bayling-local runs LLaMA-family models "
            "(architecture 'llama') only, so it was not imported"
        )
    if info.tensor_count == 0:
        raise ModelError(f"{path} has no weights (a vocabulary-only GGUF?)")
    return info


def _prompt_format_of(info: GGUFInfo) -> str:
    from .prompts import ChatTemplateError, select_format

    tokens = ["<|eot_id|>"] if info.has_eot else None
    try:
        return select_format(info.format_metadata(), tokens).format.name
    except ChatTemplateError:
        # Registered all the same: it runs with --prompt-format, and loading says so.
        return "gguf-template (broken; use --prompt-format)"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Store:
    """The models directory and its manifest."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.models_dir()

    # --- reading -----------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def downloads_dir(self) -> Path:
        return self.root / ".downloads"

    def entries(self) -> list[StoreEntry]:
        """Installed models in the order they were added. Reading needs no lock.

        The manifest is checked as untrusted data (:func:`.manifest.parse_manifest`); one that
        fails is reported with its path and left as it is (writers read it first, so they stop).
        """
        try:
            data = self.manifest_path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise ManifestError(
                f"cannot read the model manifest {self.manifest_path}: {exc.strerror or exc}"
            ) from None
        return parse_manifest(data, self.manifest_path)

    def get(self, name: str) -> StoreEntry | None:
        """The entry called ``name``, or matching ``name:QUANT``, or the only one with that base name."""
        entries = self.entries()
        for entry in entries:
            if entry.name == name:
                return entry
        lowered = name.lower()
        for entry in entries:
            if entry.name.lower() == lowered:
                return entry
        base, _, quant = name.partition(":")
        candidates = [e for e in entries if e.base_name.lower() == base.lower()]
        if quant:
            candidates = [e for e in candidates if e.quantization.lower() == quant.lower()]
        return candidates[0] if candidates else None

    def path_of(self, entry: StoreEntry) -> Path:
        return entry.path_in(self.root)

    # --- writing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[list[StoreEntry]]:
        """Hold the store lock; yields the current entries. Write them back with :meth:`_save`."""
        import filelock  # only writers need it; keeps start-up (the UI, `translate`) lighter

        self._ensure_root()
        lock = filelock.FileLock(str(self.root / ".lock"), timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise ModelError(
                f"the model store {self.root} is busy (another bayling-local is changing it); try again"
            ) from None
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            yield self.entries()
        finally:
            lock.release()

    def _save(self, entries: list[StoreEntry]) -> None:
        write_text(self.manifest_path, dump_manifest(entries))

    def _own_file(self, entry: StoreEntry) -> Path | None:
        """The file of a stored (not linked) entry, only if it really lies in the store."""
        if entry.linked or not is_store_file_name(entry.file):
            return None
        path = self.root / entry.file
        try:
            inside = path.resolve().parent == self.root.resolve()
        except OSError:
            return None
        return path if inside else None

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(exc) from None
        if not os.access(self.root, os.W_OK):
            raise self._unwritable(PermissionError(13, "Permission denied"))

    def _unwritable(self, exc: OSError) -> OutputError:
        reason = (exc.strerror or str(exc)).lower()
        return OutputError(
            f"the model store {self.root} is not writable ({reason}); "
            "set BAYLING_LOCAL_DATA_DIR to a writable directory"
        )

    def _unique_file_name(
        self, base: str, quantization: str, entries: list[StoreEntry], *, reusable: str | None
    ) -> str:
        """``<name>.<QUANT>.gguf``, numbered if taken; ``reusable`` is the file being replaced."""
        used = {e.file for e in entries if not e.linked}
        stem = f"{base}.{quantization}"
        candidate, n = f"{stem}.gguf", 1
        while candidate != reusable and (candidate in used or (self.root / candidate).exists()):
            n += 1
            candidate = f"{stem}-{n}.gguf"
        return candidate

    def _check_free(self, name: str, entries: list[StoreEntry]) -> None:
        taken = next((e for e in entries if e.name.lower() == name.lower()), None)
        if taken is not None:
            raise UsageError(
                f"a model named {taken.name!r} is already in the store; choose another --name "
                f"or remove it first with: bayling-local models rm {taken.name}"
            )

    def add(
        self,
        source_path: Path | str,
        *,
        name: str | None = None,
        link: bool = False,
        move: bool = False,
        source: str | None = None,
        replace: bool = False,
        sha256: str | None = None,
    ) -> StoreEntry:
        """Validate a GGUF and register it: copied (default), moved (pulls) or linked in place.

        ``replace`` lets a pull with ``--force`` take over an existing name. ``sha256``, when
        the caller already verified it, saves reading the file again.
        """
        src = Path(source_path).expanduser()
        info = validate_gguf(src)
        name = validate_name(name or default_name_for(src))
        if not replace:
            self._check_free(name, self.entries())  # fail fast, before copying gigabytes
        self._ensure_root()
        known = registry.find_known_model(info.metadata)
        temp: Path | None = None
        try:
            if link:
                target_file = str(src.resolve())
                digest = sha256 or file_sha256(src, description=f"checking {src.name}")
            elif move:
                digest = sha256 or file_sha256(src, description=f"checking {src.name}")
                temp = src
            else:
                temp, digest = self._copy_in(src)
            with self.locked() as entries:
                old = next((e for e in entries if e.name.lower() == name.lower()), None)
                if old is not None and not replace:
                    self._check_free(name, entries)
                others = [e for e in entries if e is not old]
                reusable = old.file if old is not None and not old.linked else None
                if not link:
                    target_file = self._unique_file_name(
                        name.split(":", 1)[0], info.quantization, others, reusable=reusable
                    )
                    assert temp is not None
                    try:
                        os.replace(temp, self.root / target_file)
                    except OSError as exc:
                        raise OutputError(describe_os_error(exc, self.root / target_file)) from None
                    placed, temp = self.root / target_file, None
                entry = StoreEntry(
                    name=name,
                    file=target_file,
                    size=src.stat().st_size if link else placed.stat().st_size,
                    sha256=digest,
                    source=source or f"import:{src.resolve()}",
                    quantization=info.quantization,
                    prompt_format=_prompt_format_of(info),
                    architecture=info.architecture,
                    added=_now(),
                    linked=link,
                    known_model=known.name if known else None,
                    context_length=info.context_length,
                )
                try:
                    self._save([*others, entry])
                except BaseException:
                    if not link and target_file != reusable:
                        # Not registered: give a pulled file back to its download, drop a copy.
                        with contextlib.suppress(OSError):
                            if move:
                                os.replace(placed, src)
                            else:
                                placed.unlink()
                    raise
                if reusable is not None and reusable != entry.file:
                    with contextlib.suppress(OSError):
                        (self.root / reusable).unlink()
            return entry
        finally:
            if temp is not None and not move:
                with contextlib.suppress(OSError):
                    temp.unlink()

    def _copy_in(self, src: Path) -> tuple[Path, str]:
        """Copy a file into a temporary name in the store, hashing it on the way."""
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=".import-", suffix=".part", dir=self.root)
        except OSError as exc:
            raise self._unwritable(exc) from None
        tmp = Path(tmp_name)
        with contextlib.suppress(OSError):  # mkstemp's 0600 -> what the umask gives, as cp does
            os.chmod(tmp, new_file_mode())
        digest = hashlib.sha256()
        size = src.stat().st_size
        if size > free_bytes(self.root):
            tmp.unlink(missing_ok=True)
            raise OutputError(
                f"not enough free disk space in {self.root} to copy {src.name} ({size / 1e9:.1f} GB); "
                "use --link to register it where it is"
            )
        try:
            with (
                os.fdopen(fd, "wb") as out,
                open(src, "rb") as handle,
                progress(f"copying {src.name}", size, unit="bytes") as bar,
            ):
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.advance(len(chunk))
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OutputError(describe_os_error(exc, self.root / src.name)) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, digest.hexdigest()

    def remove(self, name: str) -> StoreEntry:
        """Unregister a model and delete its file (a linked file is left where it is)."""
        with self.locked() as entries:
            entry = self._find_exact(name, entries)
            self._save([e for e in entries if e is not entry])
        own = self._own_file(entry)
        if own is not None:
            with contextlib.suppress(FileNotFoundError):
                own.unlink()
        return entry

    def _find_exact(self, name: str, entries: list[StoreEntry]) -> StoreEntry:
        for entry in entries:
            if entry.name.lower() == name.lower():
                return entry
        matches = [e for e in entries if e.base_name.lower() == name.lower()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(e.name for e in matches)
            raise UsageError(f"{name!r} matches several models ({names}); name one of them")
        known = registry.lookup(name.partition(":")[0])
        if known is not None:
            installed = ", ".join(e.name for e in entries) or "none"
            raise UsageError(
                f"model {known.name!r} is not installed, so there is nothing to remove "
                f"(installed: {installed})"
            )
        from .resolve import unknown_model_error

        raise unknown_model_error(name, entries)

    def require(self, name: str) -> StoreEntry:
        """The installed model called ``name``; a clear error when it is not installed."""
        entry = self.get(name)
        if entry is not None:
            return entry
        known = registry.lookup(name.partition(":")[0])
        if known is not None:
            target = known.name + (f":{name.partition(':')[2]}" if ":" in name else "")
            entry = self.get(target)  # an alias or hub id of an installed model
            if entry is not None:
                return entry
            raise ModelError(
                f"model {name!r} is not installed; run: bayling-local models pull {target}"
            )
        from .resolve import unknown_model_error

        raise unknown_model_error(name, self.entries())


def free_bytes(directory: Path) -> int:
    """Free space on the volume of ``directory`` (or of its nearest existing parent)."""
    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free
