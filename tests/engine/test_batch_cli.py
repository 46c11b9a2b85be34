"""`translate --parallel/--beam/--alternatives` and `bench --parallel` / `bench translate`
through the real CLI on tiny models: results, JSON, and one-line errors for bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import one_line_error, run
from tests.support.tiny import wmt_lines


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lines") / "lines.txt"
    path.write_text("\n".join(wmt_lines()[:5]) + "\n\n  last line  \n", encoding="utf-8")
    return path


def test_parallel_gives_the_sequential_text(tiny_spm_gguf: Path, lines_file: Path) -> None:
    common = ("translate", "-m", str(tiny_spm_gguf), "-t", "de", "-i", str(lines_file))
    common += ("--max-tokens", "12", "-q")
    one = run(*common, "--parallel", "1")
    many = run(*common, "--parallel", "3")
    assert one.returncode == 0 and many.returncode == 0, many.stderr
    assert many.stdout == one.stdout
    assert many.stdout.decode().count("\n") == one.stdout.decode().count("\n") == 7


def test_beam_with_alternatives_json(tiny_spm_gguf: Path) -> None:
    result = run(
        "translate", "-m", str(tiny_spm_gguf), "-t", "de", "--beam", "3",
        "--alternatives", "3", "--max-tokens", "10", "--json", "Guten Morgen, Welt.",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    alternatives = data["alternatives"]
    assert 1 <= len(alternatives) <= 3 and data["beam"] == 3
    assert alternatives[0]["text"] == data["translation"].strip()
    scores = [a["score"] for a in alternatives]
    assert scores == sorted(scores, reverse=True)
    assert len({a["text"] for a in alternatives}) == len(alternatives)


def test_alternatives_as_text(tiny_spm_gguf: Path) -> None:
    result = run(
        "translate", "-m", str(tiny_spm_gguf), "-t", "de", "--beam", "2",
        "--alternatives", "2", "--max-tokens", "8", "-q", "Hallo.",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert 1 <= len(lines) <= 2 and all(line.startswith("  2. ") for line in lines[1:])


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (("--parallel", "0"), "parallel"),
        (("--parallel", "-3"), "parallel"),
        (("--parallel", "100000"), "parallel"),
        (("--beam", "0"), "beam"),
        (("--beam", "-1"), "beam"),
        (("--beam", "999"), "beam"),
        (("--beam", "2", "--alternatives", "3"), "--alternatives 3 needs"),
        (("--alternatives", "0"), "--alternatives must be at least 1"),
        (("--parallel", "64", "--beam", "16"), "sequences"),
    ],
)
def test_bad_batch_values(tiny_spm_gguf: Path, flags: tuple[str, ...], fragment: str) -> None:
    result = run("translate", "-m", str(tiny_spm_gguf), "-t", "de", *flags, "Hallo.")
    one_line_error(result, 2, fragment)


def test_kv_cache_that_does_not_fit(tiny_spm_gguf: Path) -> None:
    result = run(
        "translate", "-m", str(tiny_spm_gguf), "-t", "de", "--parallel", "8", "--beam", "4", "Hallo.",
        env={"BAYLING_LOCAL_KV_BUDGET_MB": "2"},
    )  # fmt: skip
    one_line_error(result, 2, "KV cache", "fits")


def test_bench_fits_the_context_and_runs_parallel(tiny_spm_gguf: Path) -> None:
    result = run(
        "bench", "-m", str(tiny_spm_gguf), "-r", "1", "-p", "512", "-n", "128",
        "--parallel", "1,2", "--json", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["prompt_tokens"] + data["gen_tokens"] < data["n_ctx"]
    assert "do not fit" in data["adjusted"] and "do not fit" in result.stderr.decode()
    assert [p["parallel"] for p in data["parallel"]] == [1, 2]
    assert all(p["tg_tps"] > 0 for p in data["parallel"])
    one_line_error(run("bench", "-m", str(tiny_spm_gguf), "--parallel", "0"), 2, "--parallel")


def test_bench_translate(tiny_spm_gguf: Path, lines_file: Path) -> None:
    result = run(
        "bench", "translate", "-m", str(tiny_spm_gguf), "-i", str(lines_file), "-t", "de",
        "--lines", "4", "--parallel", "2", "--max-tokens", "8", "--json", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["segments"] == 4 and data["parallel"] == 2
    assert data["sequential_sps"] > 0 and data["batched_sps"] > 0
    assert data["identical"] == 4
