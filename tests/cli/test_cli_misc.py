"""``bench``, ``languages``, settings and the GGUF header reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bayling_local.errors import UsageError
from bayling_local.gguf_file import inspect_gguf
from bayling_local.settings import Settings, load_settings, save_settings
from tests.support.cli import one_line_error, run

SHARED_VOCAB = Path(__file__).resolve().parents[3] / "shared" / "vocab"


def test_bench_json(tiny_spm_gguf: Path) -> None:
    result = run("bench", "-m", str(tiny_spm_gguf), "-p", "64", "-n", "16", "-r", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["pp_tps"] > 0 and data["tg_tps"] > 0
    assert data["prompt_tokens"] == 64 and data["gen_tokens"] == 16
    assert len(data["tg_runs"]) == 2


def test_bench_table(tiny_spm_gguf: Path) -> None:
    result = run("bench", "-m", str(tiny_spm_gguf), "-p", "32", "-n", "8", "-r", "1")
    assert result.returncode == 0, result.stderr
    assert "pp32" in result.stdout.decode() and "tg8" in result.stdout.decode()


def test_languages_command() -> None:
    result = run("languages", "--json")
    assert result.returncode == 0
    languages = json.loads(result.stdout)
    assert len(languages) >= 100
    chinese = next(lang for lang in languages if lang["code"] == "zh")
    assert chinese["flores200"] == "zho_Hans" and chinese["iso639_3"] == "zho"
    table = run("languages").stdout.decode()
    assert "arb_Arab" in table and "Deutsch" in table


def test_settings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    assert load_settings(path, environ={}) == Settings()
    save_settings(Settings(target="ja", threads=3), path)
    assert "threads = 3" in path.read_text()
    loaded = load_settings(
        path, environ={"BAYLING_LOCAL_GPU_LAYERS": "0", "BAYLING_LOCAL_THREADS": "auto"}
    )
    assert (loaded.target, loaded.threads, loaded.gpu_layers) == ("ja", None, 0)
    assert loaded.with_overrides(target="fr", threads=None).target == "fr"


@pytest.mark.parametrize(
    "content, message",
    [
        ("threads = 'many'", "invalid value"),
        ("colour = 1", "unknown setting"),
        ("target = [", "not valid TOML"),
    ],
)
def test_bad_settings_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_settings(path, environ={})


def test_bad_settings_file_from_cli(tiny_spm_gguf: Path) -> None:
    import os

    config = Path(os.environ["BAYLING_LOCAL_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.toml").write_text("threads = 'many'\n")
    one_line_error(run("translate", "-m", str(tiny_spm_gguf), "hi"), 2, "threads")


@pytest.mark.skipif(
    not SHARED_VOCAB.is_dir(), reason="../shared/vocab is not beside the repository"
)
def test_gguf_header_of_real_vocabularies() -> None:
    bpe = inspect_gguf(SHARED_VOCAB / "ggml-vocab-llama-bpe.gguf")
    assert bpe.token_count == 128256 and bpe.has_eot
    assert bpe.token_text("tokenizer.ggml.bos_token_id") == "<|begin_of_text|>"
    spm = inspect_gguf(SHARED_VOCAB / "ggml-vocab-llama-spm.gguf")
    assert spm.token_count == 32000 and not spm.has_eot
    assert spm.token_text("tokenizer.ggml.eos_token_id") == "</s>"
    assert spm.metadata["tokenizer.ggml.model"] == "llama"


def test_gguf_header_of_converted_model(tiny_bpe_gguf: Path) -> None:
    info = inspect_gguf(tiny_bpe_gguf)
    assert info.architecture == "llama" and info.tensor_count > 0
    assert info.quantization == "F32"
    assert info.chat_template and "<|start_header_id|>" in info.chat_template
    assert info.has_eot


def test_lazy_command_table_matches_what_the_modules_register() -> None:
    """The lazy group's name table and the sub-modules' ``register`` agree, both ways."""
    import click

    from bayling_local.cli import COMMAND_MODULES, load_commands

    for module_name in set(COMMAND_MODULES.values()):
        group = click.Group()
        load_commands(group, module_name)
        assert {n for n, m in COMMAND_MODULES.items() if m == module_name} == set(group.commands)


def test_a_command_imports_only_its_own_module() -> None:
    """``languages`` (like ``translate``) starts without the store, converter or UI commands."""
    code = (
        "import sys; from bayling_local.cli import main; main(['languages']);"
        "print(sorted(m for m in sys.modules if m.startswith('bayling_local.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == (
        "['bayling_local.cli.common', 'bayling_local.cli.runner', 'bayling_local.cli.translate']"
    )


def test_shell_completion_offers_languages_and_models() -> None:
    import os

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_BAYLING_LOCAL_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        done = subprocess.run(
            [sys.executable, "-m", "bayling_local"], capture_output=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return [line.split(",", 1)[1] for line in done.stdout.decode().splitlines()]

    assert {"ja", "Japanese"} <= set(complete("bayling-local translate -t ja"))
    assert "de" in complete("bayling-local translate -s d")
    assert "bayling-2-8b" in complete("bayling-local translate -m bay")
    script = subprocess.run(
        [sys.executable, "-m", "bayling_local"],
        capture_output=True,
        env={**os.environ, "_BAYLING_LOCAL_COMPLETE": "bash_source"},
        timeout=60,
    )
    assert b"complete -o nosort -F" in script.stdout


def test_help_lists_every_command_by_its_whole_first_sentence() -> None:
    """No command description in a --help list ends cut off with click's "..." (80 columns)."""
    for group in ([], ["models"], ["eval"], ["tm"], ["bench"]):
        result = run(*group, "--help", env={"COLUMNS": "80"})
        assert result.returncode == 0, result.stderr
        listing = result.stdout.decode().split("Commands:")[-1]
        assert "..." not in listing, listing
        assert all(len(line) <= 80 for line in listing.splitlines()), listing
