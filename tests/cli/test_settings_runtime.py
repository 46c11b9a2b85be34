"""Settings in one place, and the one path from settings (plus flags) to a loaded engine.

Validation whatever the source (a :class:`Settings` built in code, as the TUI does; TOML; the
environment; flags), and :func:`bayling_local.runtime.load_runtime` giving the CLI, the TUI,
``serve`` and ``train/evaluate.py`` the same engine config and sampling for the same settings.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from bayling_local.errors import ModelError, UsageError
from bayling_local.settings import (
    INSTRUCTION_LANGS,
    Settings,
    check_setting,
    clamp_threads,
    load_settings,
    save_settings,
)

DEMO = Path(__file__).resolve().parents[2] / "bayling_local" / "demo" / "bayling-demo.gguf"


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("temperature", -0.1, "between 0 and 5"),
        ("temperature", 5.5, "between 0 and 5"),
        ("temperature", float("nan"), "finite"),
        ("top_p", 0.0, "above 0"),
        ("top_p", 1.01, "at most 1"),
        ("top_k", -1, "at least 0"),
        ("repeat_penalty", 0.0, "above 0"),
        ("max_tokens", 0, "at least 1"),
        ("context", 63, "at least 64"),
        ("threads", 0, "at least 1"),
        ("gpu_layers", -2, "all layers"),
        ("parallel", 65, "at most 64"),
        ("beam", 0, "at least 1"),
        ("instruction_lang", "de", "en, zh"),
        ("theme", "a b", "theme name"),
        ("target", "klingonish", "unknown language"),
        ("max_tokens", True, "whole number"),
        ("max_tokens", 2.5, "whole number"),
    ],
)
def test_every_source_is_checked_by_the_same_rule(name: str, value: object, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):  # built in code (the TUI's Settings dialog)
        Settings(**{name: value})
    settings = Settings()
    with pytest.raises(UsageError, match=reason):  # assigned later
        setattr(settings, name, value)
    with pytest.raises(UsageError, match=f"--{name.replace('_', '-')} .*{reason}"):  # a flag
        settings.with_overrides(**{name: value})


def test_good_values_pass_and_keep_their_types(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('temperature = 0\ntop_p = 1\ncontext = 4096.0\nbeam = 4\nparallel = "auto"\n')
    loaded = load_settings(path, environ={"BAYLING_LOCAL_TOP_K": " 7 "})
    assert (loaded.temperature, loaded.top_p, loaded.context, loaded.beam) == (0.0, 1.0, 4096, 4)
    assert loaded.parallel is None and loaded.top_k == 7 and isinstance(loaded.temperature, float)
    save_settings(dataclasses.replace(loaded, parallel=8), path)
    assert load_settings(path, environ={}).parallel == 8
    assert check_setting("instruction_lang", "zh") == "zh" and INSTRUCTION_LANGS == ("en", "zh")


def test_an_empty_variable_unsets_an_optional_setting(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('model = "x"\nthreads = 3\n')
    loaded = load_settings(path, environ={"BAYLING_LOCAL_MODEL": "", "BAYLING_LOCAL_THREADS": ""})
    assert loaded.model is None and loaded.threads is None
    with pytest.raises(UsageError, match="BAYLING_LOCAL_MAX_TOKENS=: max_tokens cannot be empty"):
        load_settings(path, environ={"BAYLING_LOCAL_MAX_TOKENS": ""})


def test_threads_above_the_cores_are_clamped_with_a_notice() -> None:
    assert clamp_threads(4, cores=8) == (4, None)
    assert clamp_threads(None, cores=8) == (None, None)
    threads, note = clamp_threads(100_000, cores=8)
    assert threads == 8 and note is not None and "100000 threads" in note and "8 cores" in note


def test_the_cli_choice_comes_from_the_settings_constants() -> None:
    from bayling_local.cli import cli

    translate = cli.get_command(None, "translate")  # type: ignore[arg-type]
    option = next(p for p in translate.params if p.name == "instruction_lang")
    assert tuple(option.type.choices) == INSTRUCTION_LANGS


# --- settings -> engine ---------------------------------------------------------------------


def test_one_function_maps_settings_to_engine_and_sampling() -> None:
    from bayling_local.runtime import engine_config, sampling_configs

    settings = Settings(
        threads=1,
        context=128,
        gpu_layers=0,
        temperature=0.3,
        top_p=0.8,
        top_k=7,
        repeat_penalty=1.2,
        max_tokens=33,
    )
    config = engine_config(settings, DEMO, prompt_format="bayling")
    assert (config.threads, config.context, config.gpu_layers) == (1, 128, 0)
    assert config.prompt_format == "bayling" and config.model_path == DEMO
    sampling = sampling_configs(settings)
    chat = sampling.chat
    assert (chat.temperature, chat.top_p, chat.top_k, chat.repeat_penalty) == (0.3, 0.8, 7, 1.2)
    assert chat.max_tokens == sampling.translation.max_tokens == 33
    assert sampling.translation.temperature == 0.0  # translation stays greedy


def test_load_runtime_clamps_threads_and_reports_notices() -> None:
    from bayling_local.runtime import load_runtime

    told: list[str] = []
    with load_runtime(Settings(threads=100_000), model=DEMO, notify=told.append) as runtime:
        assert runtime.engine.config.threads is not None
        assert runtime.engine.config.threads <= (os.cpu_count() or 1)
        assert any("100000 threads" in note for note in told) and runtime.notices == told
        assert runtime.resolved.path == DEMO and runtime.engine.n_ctx > 0


def test_load_runtime_refuses_a_context_smaller_than_needed() -> None:
    from bayling_local.runtime import load_runtime

    with pytest.raises(ModelError, match="smaller than the 100000"):
        load_runtime(Settings(threads=1), model=DEMO, min_context=100_000)


def test_train_evaluate_goes_through_the_runtime() -> None:
    from bayling_train.evaluate import EvalItem, evaluate_gguf

    report = evaluate_gguf(
        DEMO, [EvalItem("en", "de", "Good morning.", "Guten Morgen.")], threads=1
    )
    assert len(report.outputs) == 1 and "de" in report.by_target
