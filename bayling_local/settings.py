"""User settings: one TOML file, overridable by environment variables and then by flags.

Precedence, lowest first: built-in defaults, ``settings.toml`` in the platform's config
directory, ``BAYLING_LOCAL_<FIELD>`` environment variables, command-line flags. The CLI and
the terminal UI read and write the same file through this module.

Every value is checked here, in one place, whatever its source: :func:`check_setting` holds the
rules, and a :class:`Settings` cannot be built with a value that breaks them. A bad value is one
line that names where it came from (``BAYLING_LOCAL_TEMPERATURE=-1: temperature must be between
0 and 5``) and exit code 2. Thread counts above the machine's logical cores are not an error:
:func:`clamp_threads` lowers them and says so (llama.cpp crashes on ``n_threads=100000``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final, Literal

import tomli_w

from .errors import UsageError
from .paths import settings_path

ENV_PREFIX = "BAYLING_LOCAL_"

InstructionLang = Literal["en", "zh"]
INSTRUCTION_LANGS: Final[tuple[InstructionLang, ...]] = ("en", "zh")

TEMPERATURE_MAX: Final = 5.0
REPEAT_PENALTY_MAX: Final = 5.0
TOP_K_MAX: Final = 1_000_000
MAX_TOKENS_MAX: Final = 1_000_000
CONTEXT_MIN: Final = 64
CONTEXT_MAX: Final = 1 << 24
GPU_LAYERS_MAX: Final = 100_000
THREADS_MAX: Final = 1 << 20  # anything above the machine's cores is clamped, not refused
PARALLEL_MAX: Final = 64
BEAM_MAX: Final = 16
_THEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass
class Settings:
    """Everything a user can set once and forget. Built only with valid values."""

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
    instruction_lang: InstructionLang = "en"
    theme: str = "textual-dark"
    parallel: int | None = None  # live sequences of batch decoding; None: chosen from the machine
    beam: int = 1  # beams of translation search; 1: greedy/sampled decoding

    def __setattr__(self, name: str, value: Any) -> None:
        # Every assignment (the constructor's too, and the TUI's) goes through the rules.
        try:
            value = check_setting(name, value)
        except SettingValueError as exc:
            raise UsageError(f"{name} = {_show(value)}: {exc.reason}") from None
        object.__setattr__(self, name, value)

    def with_overrides(self, *, source: str = "flag", **overrides: Any) -> Settings:
        """A copy with every override that is not None applied, each checked.

        ``source="flag"`` names a bad value as its flag (``--max-tokens 0: ...``); any other
        source is used as the prefix as it is (``Settings: temperature = -1: ...``).
        """
        changes = {key: value for key, value in overrides.items() if value is not None}
        for key, value in changes.items():
            if key not in _RULES:
                raise UsageError(f"unknown setting {key!r}")
            try:
                changes[key] = check_setting(key, value)
            except SettingValueError as exc:
                if source == "flag":
                    where = f"--{key.replace('_', '-')} {_show(value)}"
                else:
                    where = f"{source}: {key} = {_show(value)}"
                raise UsageError(f"{where}: {exc.reason}") from None
        return dataclasses.replace(self, **changes)


class SettingValueError(ValueError):
    """A value outside a setting's range; ``reason`` reads after the value's source."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Rule:
    kind: type  # int, float or str: what a string from the environment is parsed as
    optional: bool  # None allowed ("auto", "none" or "" in the environment)
    check: Callable[[Any], str | None]  # the reason a (typed) value is refused, else None


def _between(name: str, low: float, high: float, *, low_open: bool = False) -> Callable:
    def check(value: float) -> str | None:
        if not math.isfinite(value):
            return f"{name} must be a finite number"
        if value < low or (low_open and value == low) or value > high:
            if low_open:
                return f"{name} must be above {_num(low)} and at most {_num(high)}"
            return f"{name} must be between {_num(low)} and {_num(high)}"
        return None

    return check


def _at_least(name: str, low: int, high: int, what: str = "") -> Callable:
    def check(value: int) -> str | None:
        if value < low:
            return f"{name} must be at least {low}{what}"
        if value > high:
            return f"{name} must be at most {high}{what}"
        return None

    return check


def _gpu_layers(value: int) -> str | None:
    if value < -1 or value > GPU_LAYERS_MAX:
        return (
            f"gpu_layers must be -1 (all layers), 0 (none) or a layer count up to {GPU_LAYERS_MAX}"
        )
    return None


def _instruction_lang(value: str) -> str | None:
    if value not in INSTRUCTION_LANGS:
        return f"instruction_lang must be one of {', '.join(INSTRUCTION_LANGS)}"
    return None


def _theme(value: str) -> str | None:
    if not value or len(value) > 64 or not set(value) <= _THEME_CHARS:
        return "theme must be a theme name (letters, digits, '-', '_' or '.')"
    return None


def _target(value: str) -> str | None:
    from .languages import resolve

    try:
        resolve(value)
    except UsageError as exc:
        return exc.message
    return None


def _text(name: str) -> Callable:
    def check(value: str) -> str | None:
        if "\x00" in value:
            return f"{name} must not contain NUL characters"
        return None

    return check


_RULES: dict[str, _Rule] = {
    "model": _Rule(str, True, _text("model")),
    "target": _Rule(str, False, _target),
    "threads": _Rule(int, True, _at_least("threads", 1, THREADS_MAX)),
    "gpu_layers": _Rule(int, False, _gpu_layers),
    "context": _Rule(int, True, _at_least("context", CONTEXT_MIN, CONTEXT_MAX, " tokens")),
    "temperature": _Rule(float, False, _between("temperature", 0.0, TEMPERATURE_MAX)),
    "top_p": _Rule(float, False, _between("top_p", 0.0, 1.0, low_open=True)),
    "top_k": _Rule(int, False, _at_least("top_k", 0, TOP_K_MAX)),
    "repeat_penalty": _Rule(
        float, False, _between("repeat_penalty", 0.0, REPEAT_PENALTY_MAX, low_open=True)
    ),
    "max_tokens": _Rule(int, False, _at_least("max_tokens", 1, MAX_TOKENS_MAX)),
    "system_prompt": _Rule(str, True, _text("system_prompt")),
    "instruction_lang": _Rule(str, False, _instruction_lang),
    "theme": _Rule(str, False, _theme),
    "parallel": _Rule(int, True, _at_least("parallel", 1, PARALLEL_MAX)),
    "beam": _Rule(int, False, _at_least("beam", 1, BEAM_MAX)),
}
assert set(_RULES) == {f.name for f in fields(Settings)}, "every setting has a rule"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def check_setting(name: str, value: Any) -> Any:
    """``value`` for setting ``name`` with its type checked (ints, floats and text as they come
    from TOML, the environment or a flag); :class:`SettingValueError` says why not."""
    rule = _RULES.get(name)
    if rule is None:
        raise SettingValueError(f"unknown setting {name!r}")
    if (
        value is None
        or (isinstance(value, str) and rule.optional and not value.strip())
        or (
            isinstance(value, str) and rule.kind is not str and value.strip().lower() in _NONE_WORDS
        )
    ):
        if rule.optional:
            return None
        raise SettingValueError(f"{name} cannot be empty")
    typed = _typed(name, value, rule.kind)
    reason = rule.check(typed)
    if reason is not None:
        raise SettingValueError(reason)
    return typed


_NONE_WORDS = frozenset({"", "none", "auto"})


def _typed(name: str, value: Any, kind: type) -> Any:
    wanted = {int: "a whole number", float: "a number", str: "text"}[kind]
    invalid = SettingValueError(f"{name} has an invalid value {value!r} (expected {wanted})")
    if isinstance(value, bool):
        raise invalid
    if kind is str:
        if not isinstance(value, str):
            raise invalid
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float = int(text) if kind is int else float(text)
        except ValueError:
            try:
                number = float(text)  # "4.0" is a whole number; "4.5" is not
            except ValueError:
                raise invalid from None
    elif isinstance(value, (int, float)):
        number = value
    else:
        raise invalid
    if kind is int:
        if isinstance(number, float):
            if not number.is_integer():
                raise invalid
            number = int(number)
        return int(number)
    return float(number)


def logical_cores() -> int:
    return max(1, os.cpu_count() or 1)


def clamp_threads(
    threads: int | None, *, cores: int | None = None
) -> tuple[int | None, str | None]:
    """``threads`` lowered to the machine's logical cores, and the notice that says so."""
    cores = cores or logical_cores()
    if threads is not None and threads > cores:
        return cores, f"note: {threads} threads asked for; using the machine's {cores} cores"
    return threads, None


def load_settings(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the TOML file, then ``BAYLING_LOCAL_*`` variables, every value checked."""
    path = path or settings_path()
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise UsageError(f"settings file {path} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"settings file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot read settings file {path}: {exc.strerror}") from None
        for key, raw in data.items():
            if key not in _RULES:
                raise UsageError(f"settings file {path}: unknown setting {key!r}")
            try:
                values[key] = check_setting(key, raw)
            except SettingValueError as exc:
                raise UsageError(
                    f"settings file {path}: {key} = {_toml_value(raw)}: {exc.reason}"
                ) from None
    for key in _RULES:
        variable = ENV_PREFIX + key.upper()
        env_value = environ.get(variable)
        if env_value is not None:
            try:
                values[key] = check_setting(key, env_value)
            except SettingValueError as exc:
                raise UsageError(f"{variable}={env_value}: {exc.reason}") from None
    return Settings(**values)


def _toml_value(raw: Any) -> str:
    """A value as one short line, the way it reads in the file."""
    if isinstance(raw, float) and not math.isfinite(raw):
        return str(raw)  # TOML spells them nan, inf, -inf
    try:
        text = json.dumps(raw, ensure_ascii=False, default=str)
    except ValueError:  # nan / inf
        text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings that differ from the defaults (so new defaults reach old users)."""
    from .output import write_text

    path = path or settings_path()
    defaults = Settings()
    data = {
        f.name: getattr(settings, f.name)
        for f in fields(Settings)
        if getattr(settings, f.name) != getattr(defaults, f.name)
        and getattr(settings, f.name) is not None
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, tomli_w.dumps(data))
    return path


def instruction_lang(value: str) -> InstructionLang:
    """``value`` as the validated type (for callers holding a plain string)."""
    if value not in INSTRUCTION_LANGS:
        raise UsageError(f"instruction language must be one of {', '.join(INSTRUCTION_LANGS)}")
    return value
