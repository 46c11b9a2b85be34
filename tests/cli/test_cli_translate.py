"""``bayling-local translate`` as a user runs it: every input path and every bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.cli import one_line_error, run
from tests.support.scripted import Scripted


def test_from_arguments(scripted_spm: Scripted) -> None:
    result = run("translate", "-m", str(scripted_spm.gguf), "-t", "de", "Hello", "world")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == scripted_spm.text + "\n"
    assert b"\x1b" not in result.stdout  # no control codes into a pipe


def test_from_stdin_keeps_lines(scripted_spm: Scripted) -> None:
    result = run(
        "translate", "-m", str(scripted_spm.gguf), "-t", "German", "-s", "en", stdin="one\n\ntwo\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"{scripted_spm.text}\n\n{scripted_spm.text}\n"


def test_file_to_file(tmp_path: Path, scripted_spm: Scripted) -> None:
    source = tmp_path / "in.txt"
    source.write_text("Guten Morgen.\nWie geht es?\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    result = run(
        "translate", "-m", str(scripted_spm.gguf), "-t", "en", "-i", str(source), "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert out.read_text(encoding="utf-8") == f"{scripted_spm.text}\n{scripted_spm.text}\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_json_output(scripted_spm: Scripted) -> None:
    result = run(
        "translate",
        "-m",
        str(scripted_spm.gguf),
        "-t",
        "zh-CN",
        "--json",
        "The weather is very nice today.",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["translation"] == scripted_spm.text
    assert data["target"] == "zh" and data["source"] == "en"
    assert data["prompt_format"] == "bayling"
    assert data["stats"]["generated_tokens"] == scripted_spm.tokens


def test_show_prompt(scripted_spm: Scripted) -> None:
    result = run(
        "translate",
        "-m",
        str(scripted_spm.gguf),
        "-t",
        "ja",
        "--show-prompt",
        "--instruction-lang",
        "zh",
        "Good morning",
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert text.endswith("### Instruction:\n提供这句话的日语翻译：Good morning\n### Response:\n")


def test_settings_and_environment(tmp_path: Path, scripted_spm: Scripted) -> None:
    config = Path(os.environ["BAYLING_LOCAL_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.toml").write_text(
        f'model = "{scripted_spm.gguf}"\ntarget = "fr"\n', encoding="utf-8"
    )
    result = run("translate", "--show-prompt", "Hello")
    assert "Provide the French translation" in result.stdout.decode()
    result = run("translate", "--show-prompt", "Hello", env={"BAYLING_LOCAL_TARGET": "es"})
    assert "Provide the Spanish translation" in result.stdout.decode()
    result = run(
        "translate", "--show-prompt", "-t", "it", "Hello", env={"BAYLING_LOCAL_TARGET": "es"}
    )
    assert "Provide the Italian translation" in result.stdout.decode()


def test_bad_inputs(tmp_path: Path, scripted_spm: Scripted, tiny_spm_gguf: Path) -> None:
    model = str(scripted_spm.gguf)
    one_line_error(run("translate", "-m", str(tmp_path / "nope.gguf"), "hi"), 3, "not found")
    text_file = tmp_path / "model.gguf"
    text_file.write_text("not a model")
    one_line_error(run("translate", "-m", str(text_file), "hi"), 3, "not a GGUF")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_spm_gguf.read_bytes()[:-1000])
    one_line_error(run("translate", "-m", str(cut), "hi"), 3, "truncated")
    one_line_error(run("translate", "-m", model, "-t", "Klingonish", "hi"), 2, "unknown language")
    one_line_error(run("translate", "-m", model, "-t", "de", stdin=b""), 2, "empty")
    one_line_error(run("translate", "-m", model, "-t", "de", stdin=b"  \n "), 2, "empty")
    one_line_error(
        run("translate", "-m", model, "-t", "de", stdin=b"\x7fELF\x00\x00binary"), 2, "binary"
    )
    one_line_error(run("translate", "-m", model, "-t", "de", stdin=b"caf\xe9 au lait"), 2, "UTF-8")
    one_line_error(
        run("translate", "-m", model, "-t", "de", "-i", str(tmp_path / "missing.txt")),
        2,
        "not found",
    )
    one_line_error(
        run("translate", "-m", model, "-t", "de", "-o", str(tmp_path / "no" / "dir.txt"), "hi"), 4
    )
    locked = tmp_path / "locked"
    locked.mkdir()
    existing = locked / "out.txt"
    existing.write_text("keep me")
    locked.chmod(0o500)
    try:
        if os.geteuid() != 0:  # root writes anywhere
            one_line_error(
                run("translate", "-m", model, "-t", "de", "-o", str(existing), "hi"),
                4,
                "permission",
            )
            assert existing.read_text() == "keep me"
    finally:
        locked.chmod(0o700)
    one_line_error(
        run("translate", "-m", model, "-t", "de", "-o", str(tmp_path), "hi"), 4, "directory"
    )


def test_ctrl_c_keeps_existing_output(tmp_path: Path, tiny_spm_gguf: Path) -> None:
    """Ctrl-C in the middle of a long translation: exit 130, one line, old output untouched."""
    source = tmp_path / "long.txt"
    source.write_text(
        "\n".join(f"Sentence number {i} of a long document." for i in range(3000)), encoding="utf-8"
    )
    out = tmp_path / "out.txt"
    out.write_text("previous translation")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bayling_local",
            "translate",
            "-m",
            str(tiny_spm_gguf),
            "-t",
            "de",
            "-i",
            str(source),
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(4.0)
    assert process.poll() is None, "the translation finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.decode() == "bayling-local: error: interrupted\n"
    assert out.read_text() == "previous translation"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.txt", "out.txt"]
