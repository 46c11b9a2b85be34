"""Bad input to ``bayling-local convert``: one clear line, a non-zero exit, nothing half-written."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

import bayling_convert.core
from bayling_local.cli import main
from bayling_local.errors import InputError, OutputError, UsageError
from bayling_local.gguf_file import inspect_gguf


@pytest.fixture
def ckpt(tiny_spm_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny checkpoint that a test may damage."""
    return Path(shutil.copytree(tiny_spm_checkpoint, tmp_path / "hf"))


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["convert", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayling-local: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_cli_converts(ckpt: Path, out_dir: Path, capsys) -> None:
    out = out_dir / "m.gguf"
    code, stdout, _ = run(capsys, ckpt, "-o", out, "--outtype", "q8_0", "-q")
    assert code == 0 and stdout.strip() == str(out)
    info = inspect_gguf(out)
    assert info.quantization == "Q8_0" and info.chat_template
    assert sorted(p.name for p in out_dir.iterdir()) == ["m.gguf"]


def test_cli_names_a_known_model(ckpt: Path, out_dir: Path, capsys) -> None:
    out = out_dir / "m.gguf"
    assert run(capsys, ckpt, "-o", out, "--name", "bayling-2-7b", "-q")[0] == 0
    meta = inspect_gguf(out).metadata
    assert meta["general.name"] == "bayling-2-7b"
    assert meta["general.source.huggingface.repository"] == "ICTNLP/bayling-2-7b"
    assert meta["general.license"] == "llama2"
    from bayling_local.registry import find_known_model

    assert find_known_model(meta).name == "bayling-2-7b"


def test_cli_default_output_name(ckpt: Path, out_dir: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(out_dir)
    code, stdout, _ = run(capsys, ckpt, "-q")
    assert code == 0 and stdout.strip() == "hf.F16.gguf"
    assert (out_dir / "hf.F16.gguf").is_file()


def test_cli_verify(ckpt: Path, out_dir: Path, capsys) -> None:
    out = out_dir / "m.gguf"
    code, _, err = run(capsys, ckpt, "-o", out, "--outtype", "f32", "--verify", "--threads", "1")
    assert code == 0, err
    assert "verification passed" in err and "max |delta logit|" in err
    code = main(["verify-gguf", str(out), str(ckpt), "--tokens", "4", "--threads", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] and report["rel_logit_diff"] < 1e-3


def test_verify_gguf_fails_on_the_wrong_model(tiny_spm_gguf: Path, tmp_path: Path, capsys) -> None:
    from tests.support.tiny import make_tiny_checkpoint

    other = make_tiny_checkpoint(tmp_path / "other", "spm", seed=7)  # same shapes and tokenizer
    code = main(["verify-gguf", str(tiny_spm_gguf), str(other), "--tokens", "4", "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "verification FAILED" in out
    assert "max |delta logit|" in one_line_error(err)


def test_not_a_llama_checkpoint(ckpt: Path, out_dir: Path, capsys) -> None:
    config = json.loads((ckpt / "config.json").read_text())
    config.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
    (ckpt / "config.json").write_text(json.dumps(config))
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf")
    assert code == InputError.exit_code
    assert "is not a LLaMA-family checkpoint (model type gpt2)" in one_line_error(err)
    assert not list(out_dir.iterdir())


def test_not_a_checkpoint(tmp_path: Path, out_dir: Path, capsys) -> None:
    code, _, err = run(capsys, tmp_path / "missing", "-o", out_dir / "m.gguf")
    assert code == 2 and "is not a directory" in one_line_error(err)
    code, _, err = run(capsys, out_dir, "-o", out_dir / "m.gguf")
    assert code == 2 and "no config.json" in one_line_error(err)
    assert not list(out_dir.iterdir())


def test_missing_tokenizer(ckpt: Path, out_dir: Path, capsys) -> None:
    for name in ("tokenizer.model", "tokenizer.json"):
        (ckpt / name).unlink()
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf")
    assert code == 2 and "has no tokenizer" in one_line_error(err)
    assert not list(out_dir.iterdir())


def test_missing_weights_and_truncated_weights(ckpt: Path, out_dir: Path, capsys) -> None:
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf")
    assert code == 2 and "truncated" in one_line_error(err)
    weights.unlink()
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf")
    assert code == 2 and "has no model weights" in one_line_error(err)
    assert not list(out_dir.iterdir())


def test_tokenizer_that_does_not_fit_the_weights(
    ckpt: Path, tiny_bpe_checkpoint: Path, out_dir: Path, capsys
) -> None:
    (ckpt / "tokenizer.model").unlink()
    shutil.copy(tiny_bpe_checkpoint / "tokenizer.json", ckpt / "tokenizer.json")
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf")
    assert code == 2 and "do not belong together" in one_line_error(err)


def test_delta_shape_mismatch_cli(ckpt: Path, tmp_path: Path, out_dir: Path, capsys) -> None:
    from tests.support.tiny import TinyShape, make_tiny_checkpoint

    base = make_tiny_checkpoint(
        tmp_path / "base", "spm", shape=TinyShape(hidden_size=32, num_heads=2)
    )
    code, _, err = run(capsys, ckpt, "--base", base, "-o", out_dir / "m.gguf")
    assert code == 2 and "does not belong to this base" in one_line_error(err)
    assert not list(out_dir.iterdir())


def test_unknown_quant_and_outtype(ckpt: Path, out_dir: Path, capsys) -> None:
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf", "--quant", "Q9_K")
    assert code == UsageError.exit_code and "valid types: F32" in one_line_error(err)
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf", "--quant", "IQ2_XS")
    assert code == UsageError.exit_code and "importance matrix" in one_line_error(err)
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf", "--outtype", "q4")
    assert code == 2 and "q4" in one_line_error(err)
    assert not list(out_dir.iterdir())


def test_output_exists(ckpt: Path, out_dir: Path, capsys) -> None:
    out = out_dir / "m.gguf"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, ckpt, "-o", out)
    assert code == OutputError.exit_code and "already exists (use --force" in one_line_error(err)
    assert out.read_bytes() == b"precious"
    assert run(capsys, ckpt, "-o", out, "--force", "-q")[0] == 0
    assert inspect_gguf(out).quantization == "F16"
    code, _, err = run(capsys, ckpt, "-o", out_dir)
    assert code == OutputError.exit_code and "is a directory" in one_line_error(err)
    code, _, err = run(capsys, ckpt, "-o", out_dir / "nowhere" / "m.gguf")
    assert code == OutputError.exit_code and "directory does not exist" in one_line_error(err)


def _fail_after(monkeypatch, calls: int, exc: BaseException) -> None:
    """Make the converter's tensor-data write fail on its ``calls``-th use."""
    real = bayling_convert.core._write_bytes
    count = {"n": 0}

    def write(handle, data) -> None:
        count["n"] += 1
        if count["n"] >= calls:
            raise exc
        real(handle, data)

    monkeypatch.setattr(bayling_convert.core, "_write_bytes", write)


def test_full_disk(ckpt: Path, out_dir: Path, capsys, monkeypatch) -> None:
    out = out_dir / "m.gguf"
    out.write_bytes(b"previous version")
    _fail_after(monkeypatch, 6, OSError(errno.ENOSPC, "No space left on device"))
    code, _, err = run(capsys, ckpt, "-o", out, "--force")
    assert code == OutputError.exit_code
    assert f"no space left on the device to write {out}" in one_line_error(err)
    assert [p.name for p in out_dir.iterdir()] == [
        "m.gguf"
    ] and out.read_bytes() == b"previous version"


def test_full_disk_while_chaining_quant(ckpt: Path, out_dir: Path, capsys, monkeypatch) -> None:
    _fail_after(monkeypatch, 6, OSError(errno.ENOSPC, "No space left on device"))
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf", "--quant", "Q4_0")
    assert code == OutputError.exit_code and "no space left" in one_line_error(err)
    assert not list(out_dir.iterdir())


def test_ctrl_c_leaves_nothing(ckpt: Path, out_dir: Path, capsys, monkeypatch) -> None:
    _fail_after(monkeypatch, 10, KeyboardInterrupt())
    code, _, err = run(capsys, ckpt, "-o", out_dir / "m.gguf")
    assert code == 130 and "interrupted" in one_line_error(err)
    assert not list(out_dir.iterdir())
