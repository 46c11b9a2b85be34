"""User settings: one TOML file, overridable by environment variables and then by flags.

Precedence, lowest first: built-in defaults, ``settings.toml`` in the platform's config
directory, ``BAYLING_LOCAL_<FIELD>`` environment variables, command-line flags. The CLI and
the terminal UI read and write the same file through this module.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

import tomli_w

from .atomic import write_text_atomic
from .errors import UsageError
from .paths import settings_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "BAYLING_LOCAL_"


@dataclass
class Settings:
    """Everything a user can set once and forget."""

    model: str | None = None  # default model: a store name or a path
    target: str = "en"  # default target language of `translate`
    threads: int | None = None  # None: the number of physical cores
    gpu_layers: int = -1  # -1: offload every layer where a GPU build is installed; 0: CPU only
    context: int | None = None  # None: the model's own context length
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.05
    max_tokens: int = 1024
    system_prompt: str | None = None
    instruction_lang: str = "en"
    theme: str = "textual-dark"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with every override that is not None applied (flags use this)."""
        changes = {key: value for key, value in overrides.items() if value is not None}
        return dataclasses.replace(self, **changes)


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    """Check a value from TOML or the environment against the field's type."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    optional = bool(args)
    base = args[0] if args else annotation
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "auto")):
        if optional:
            return None
        raise UsageError(f"setting {name!r} cannot be empty")
    try:
        if base is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if base is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise UsageError(f"setting {name!r} has an invalid value {raw!r}") from None


def _field_types() -> dict[str, Any]:
    hints = get_type_hints(Settings)
    return {f.name: hints[f.name] for f in fields(Settings)}


def load_settings(path: Path | None = None, *, environ: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file, then ``BAYLING_LOCAL_*`` variables."""
    path = path or settings_path()
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    types = _field_types()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"settings file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot read settings file {path}: {exc.strerror}") from None
        for key, raw in data.items():
            if key not in types:
                raise UsageError(f"settings file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw, types[key])
    for key, annotation in types.items():
        env_value = environ.get(ENV_PREFIX + key.upper())
        if env_value is not None:
            values[key] = _coerce(key, env_value, annotation)
    return Settings(**values)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings that differ from the defaults (so new defaults reach old users)."""
    path = path or settings_path()
    defaults = Settings()
    data = {
        f.name: getattr(settings, f.name)
        for f in fields(Settings)
        if getattr(settings, f.name) != getattr(defaults, f.name)
        and getattr(settings, f.name) is not None
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, tomli_w.dumps(data))
    return path
