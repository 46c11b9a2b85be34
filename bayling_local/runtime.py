"""From settings to a running model: the one place that maps :class:`Settings` to the engine.

The CLI, the terminal UI, ``serve`` and ``train/evaluate.py`` all call :func:`load_runtime`
(or, to build configs without loading, :func:`engine_config` and :func:`sampling_configs`), so
a setting means the same thing everywhere: the model is resolved the same way (flag, settings,
store, demo), threads above the machine's cores are clamped with a notice, and chat and
translation sample with the same rules.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError
from .settings import Settings, clamp_threads

if TYPE_CHECKING:  # the engine (llama.cpp) loads with the first model, not at import
    from .engine import Engine, EngineConfig, SamplingConfig
    from .resolve import ResolvedModel
    from .translate import Translator

Notify = Callable[[str], None]


@dataclass(frozen=True)
class Sampling:
    """The two ways the app generates: chat replies (sampled) and translations (greedy)."""

    chat: SamplingConfig
    translation: SamplingConfig


@dataclass
class Runtime:
    """A loaded engine, the model it came from, the settings and the sampling they give."""

    engine: Engine
    resolved: ResolvedModel
    settings: Settings
    sampling: Sampling
    notices: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_known_fields(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Drop keys ``cls`` does not (yet) have: ``parallel``/``beam`` reach the engine and the
    sampler as soon as they grow those fields, without a second mapping to keep in step."""
    known = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in values.items() if key in known}


def sampling_configs(settings: Settings) -> Sampling:
    """Chat sampling from the settings; translation greedy (BayLing's own evaluation setup)."""
    from .engine import SamplingConfig
    from .translate import TRANSLATION_SAMPLING

    chat = SamplingConfig(
        **_with_known_fields(
            SamplingConfig,
            {
                "max_tokens": settings.max_tokens,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "top_k": settings.top_k,
                "repeat_penalty": settings.repeat_penalty,
            },
        )
    )
    translation = dataclasses.replace(
        TRANSLATION_SAMPLING,
        **_with_known_fields(
            SamplingConfig, {"max_tokens": settings.max_tokens, "beam": settings.beam}
        ),
    )
    return Sampling(chat=chat, translation=translation)


def engine_config(
    settings: Settings,
    model_path: Path,
    *,
    prompt_format: str | None = None,
    min_context: int | None = None,
    notify: Notify | None = None,
) -> EngineConfig:
    """The engine's config for ``model_path`` under ``settings`` (threads clamped, said so)."""
    from .engine import EngineConfig

    threads, note = clamp_threads(settings.threads)
    if note and notify is not None:
        notify(note)
    context = settings.context
    if min_context is not None and context is not None:
        context = max(context, min_context)
    return EngineConfig(
        **_with_known_fields(
            EngineConfig,
            {
                "model_path": Path(model_path).expanduser(),
                "context": context,
                "threads": threads,
                "gpu_layers": settings.gpu_layers,
                "prompt_format": prompt_format,
                "parallel": settings.parallel,
            },
        )
    )


def load_runtime(
    settings: Settings,
    *,
    model: str | Path | None = None,
    prompt_format: str | None = None,
    min_context: int | None = None,
    notify: Notify | None = None,
    loading: Callable[[str], contextlib.AbstractContextManager[Any]] | None = None,
) -> Runtime:
    """Resolve the model (``model``, else the settings' model, store, demo) and load it.

    ``notify`` gets the notices a user should see (demo model, clamped threads); ``loading``
    wraps the load itself (the CLI's "loading NAME …" line, the TUI's status).
    """
    from .engine import Engine
    from .resolve import resolve_model

    notices: list[str] = []

    def tell(message: str) -> None:
        notices.append(message)
        if notify is not None:
            notify(message)

    spec = str(model) if model is not None else settings.model
    resolved = resolve_model(spec)
    if resolved.is_demo:
        tell(resolved.demo_notice)
    config = engine_config(
        settings, resolved.path, prompt_format=prompt_format, min_context=min_context, notify=tell
    )
    with loading(resolved.name) if loading is not None else _nothing():
        engine = Engine(config)
    if min_context is not None and engine.n_ctx < min_context:
        engine.close()
        raise ModelError(
            f"the model's context ({engine.n_ctx} tokens) is smaller than the {min_context} this needs"
        )
    return Runtime(
        engine=engine,
        resolved=resolved,
        settings=settings,
        sampling=sampling_configs(settings),
        notices=notices,
    )


def translator_for(
    engine: Engine, settings: Settings, *, parallel: int | None = None
) -> Translator:
    """A translator on ``engine`` that samples, instructs and batches as ``settings`` say
    (``parallel`` overrides the settings' lanes): what ``translate``, documents and the TUI use."""
    from .translate import Translator

    return Translator(
        engine,
        sampling_configs(settings).translation,
        instruction_lang=settings.instruction_lang,
        system=settings.system_prompt,
        parallel=parallel if parallel is not None else settings.parallel,
    )


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield
