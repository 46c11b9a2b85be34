"""Turning what a user typed (``-m``, the settings' model, nothing) into a GGUF to load.

A path, a store name, ``name:QUANT``, a hub id of a known model, or nothing (the default model
from the settings, else the first installed one, else the bundled demo model). The store's
files and manifest are :mod:`.store`'s concern; this module only reads them.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import registry
from .errors import ModelError, UsageError
from .store import _NAME_RE, PULL_HINT, Store, StoreEntry

DEMO_RESOURCE = ("demo", "bayling-demo.gguf")


def _looks_like_path(text: str) -> bool:
    return (
        os.sep in text
        or "/" in text
        or text.lower().endswith(".gguf")
        or text.startswith(("~", "."))
    )


@dataclass(frozen=True)
class ResolvedModel:
    """The GGUF a command should load, and where it came from."""

    path: Path
    name: str
    entry: StoreEntry | None = None
    is_demo: bool = False

    @property
    def demo_notice(self) -> str:
        """The one stderr line a caller prints when it runs the demo model."""
        return (
            "note: no model is installed, so this runs the tiny bundled demo model (not BayLing: it "
            f"knows only a few everyday sentence patterns); get BayLing with: {PULL_HINT}"
        )


def unknown_model_error(name: str, entries: list[StoreEntry]) -> UsageError:
    """'unknown model', with the closest installed or known names as a suggestion."""
    candidates = {e.name for e in entries} | {m.name for m in registry.MODELS}
    close = [
        match
        for match in difflib.get_close_matches(name.lower(), sorted(candidates), n=4, cutoff=0.5)
        if match.lower() != name.lower()  # never "unknown model 'x'; did you mean x"
    ][:3]
    if close:
        options = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
        hint = f"; did you mean {options}?"
    elif entries:
        hint = "; see: bayling-local models list"
    else:
        hint = f"; get BayLing with: {PULL_HINT}"
    return UsageError(f"unknown model {name!r}{hint}")


def demo_model_path() -> Path | None:
    """The small demo GGUF shipped inside the package, if this install has it."""
    resource = resources.files("bayling_local").joinpath(*DEMO_RESOURCE)
    try:
        with resources.as_file(resource) as path:
            return Path(path) if Path(path).is_file() else None
    except (FileNotFoundError, ModuleNotFoundError):
        return None


def resolve_model(name_or_path: str | None, *, store: Store | None = None) -> ResolvedModel:
    """Turn ``--model`` (a path, a store name, ``name:QUANT`` or nothing) into a GGUF path.

    Nothing means: the default model from the settings, else the first installed model, else
    the bundled demo model (``is_demo`` set, so the caller can say so).
    """
    store = store or Store()
    if name_or_path is None:
        from .settings import load_settings

        default = load_settings().model
        if default:
            return resolve_model(default, store=store)
        entries = store.entries()
        if entries:
            return _resolved(store, entries[0])
        demo = demo_model_path()
        if demo is not None:
            return ResolvedModel(path=demo, name="bayling-demo", is_demo=True)
        raise ModelError(f"no model is installed; get BayLing with: {PULL_HINT}")
    text = name_or_path.strip()
    if not text:
        raise UsageError("empty model name")
    candidate = Path(text).expanduser()
    if candidate.is_file():
        return ResolvedModel(path=candidate, name=candidate.name)
    if _looks_like_path(text):
        entry = store.get(text) if _NAME_RE.match(text) else None
        if entry is None and registry.lookup(text.partition(":")[0]) is not None:
            entry = store.require(text)  # a hub id such as ICTNLP/bayling-2-7b
        if entry is not None:
            return _resolved(store, entry)
        if candidate.is_dir():
            raise ModelError(f"{candidate} is a directory, not a GGUF model file")
        raise ModelError(f"model file not found: {candidate}")
    return _resolved(store, store.require(text))


def _resolved(store: Store, entry: StoreEntry) -> ResolvedModel:
    path = store.path_of(entry)
    if not path.is_file():
        raise ModelError(
            f"the file of model {entry.name!r} is missing ({path}); "
            f"run: bayling-local models rm {entry.name}, then pull or import it again"
        )
    return ResolvedModel(path=path, name=entry.name, entry=entry)


def set_default_model(name_or_path: str, *, store: Store | None = None) -> ResolvedModel:
    """Make a store model (or a GGUF path) the default for every command."""
    from .settings import load_settings, save_settings

    resolved = resolve_model(name_or_path, store=store)
    settings = load_settings(environ={})  # don't write environment overrides into the file
    settings.model = resolved.entry.name if resolved.entry else str(resolved.path.resolve())
    save_settings(settings)
    return resolved


def default_model_name() -> str | None:
    from .settings import load_settings

    return load_settings().model


def clear_default_if(name: str) -> bool:
    """After ``rm``: forget the default if it named the removed model."""
    from .settings import load_settings, save_settings

    settings = load_settings(environ={})
    if settings.model is not None and settings.model.lower() == name.lower():
        settings.model = None
        save_settings(settings)
        return True
    return False
