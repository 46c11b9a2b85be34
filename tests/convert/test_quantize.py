"""Quantization through llama.cpp: every type we offer loads and generates; the rest refuse.

K-quants work on 256-value blocks, so the model here has hidden size 256 (with hidden 64
llama.cpp silently falls back to other types for most tensors and the test would prove less).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling_convert import (
    QUANT_TYPES,
    convert_checkpoint,
    quantize_gguf,
    resolve_quant_type,
    verify_gguf,
)
from bayling_convert.quantize import usable_types
from bayling_local.cli import main
from bayling_local.cli.convert import quantize_command
from bayling_local.errors import ModelError, OutputError, UsageError
from bayling_local.gguf_file import inspect_gguf
from tests.support.tiny import TinyShape, make_tiny_checkpoint, sample_lines

SHAPE = TinyShape(hidden_size=256, num_layers=2, num_heads=4, intermediate_size=512)


@pytest.fixture(scope="module")
def quant_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("quant")
    checkpoint = make_tiny_checkpoint(root / "hf", "spm", shape=SHAPE, dtype="float16")
    f16 = convert_checkpoint(
        checkpoint, root / "model.f16.gguf", outtype="f16", show_progress=False
    )
    return checkpoint, f16


@pytest.fixture(scope="module")
def llama_runner():
    from llama_cpp import Llama

    def run(path: Path) -> str:
        llm = Llama(model_path=str(path), n_ctx=64, verbose=False, n_threads=1)
        try:
            out = llm.create_completion("Die Ware hat", max_tokens=6, temperature=0.0)
            assert out["usage"]["completion_tokens"] >= 1
            return out["choices"][0]["text"]
        finally:
            llm.close()

    return run


@pytest.mark.parametrize("qtype", usable_types())
def test_every_offered_type_loads_and_generates(
    qtype, quant_source, llama_runner, tmp_path
) -> None:
    _, f16 = quant_source
    out = quantize_gguf(f16, tmp_path / f"m.{qtype}.gguf", qtype, show_progress=False)
    info = inspect_gguf(out)
    assert int(info.metadata["general.file_type"]) == QUANT_TYPES[qtype].ftype
    if QUANT_TYPES[qtype].bits < 9:
        assert out.stat().st_size < f16.stat().st_size
    llama_runner(out)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary files left


def test_ftypes_match_llama_cpp() -> None:
    import llama_cpp

    for qtype in QUANT_TYPES.values():
        prefix = "LLAMA_FTYPE_ALL_" if qtype.name == "F32" else "LLAMA_FTYPE_MOSTLY_"
        assert getattr(llama_cpp, prefix + qtype.name) == qtype.ftype, qtype.name


def test_cli_help_lists_the_offered_types() -> None:
    listed = " ".join((quantize_command.help or "").split())
    assert all(name in listed.split() or f"{name}." in listed.split() for name in usable_types())
    assert not any(t.name in listed.split() for t in QUANT_TYPES.values() if t.needs_imatrix)


@pytest.mark.parametrize("qtype", [t.name for t in QUANT_TYPES.values() if t.needs_imatrix])
def test_imatrix_types_are_refused(qtype, quant_source, tmp_path) -> None:
    _, f16 = quant_source
    with pytest.raises(UsageError, match="importance matrix"):
        quantize_gguf(f16, tmp_path / "out.gguf", qtype, show_progress=False)
    assert not list(tmp_path.iterdir())


def test_llama_cpp_really_needs_imatrix_for_refused_types(quant_source, tmp_path) -> None:
    """The refusal list is llama.cpp's own: asked anyway, it fails and says why."""
    from bayling_convert.quantize import _QuantLog, _run_quantize

    _, f16 = quant_source
    for qtype in (t for t in QUANT_TYPES.values() if t.needs_imatrix):
        log = _QuantLog()
        assert _run_quantize(f16, tmp_path / f"{qtype.name}.gguf", qtype, 1, log) != 0
        assert any("imatrix" in line for line in log.errors), qtype.name


def test_unknown_type_lists_valid_ones(quant_source, tmp_path, capsys) -> None:
    _, f16 = quant_source
    code = main(["quantize", str(f16), str(tmp_path / "out.gguf"), "Q9_X"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "unknown quant type 'Q9_X'" in err and "Q4_K_M" in err
    assert not list(tmp_path.iterdir())
    assert resolve_quant_type("q4_k_m").name == "Q4_K_M"


def test_cli_quantize(quant_source, tmp_path, capsys) -> None:
    _, f16 = quant_source
    out = tmp_path / "m.gguf"
    assert main(["quantize", str(f16), str(out), "q5_k_m", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert inspect_gguf(out).quantization == "Q5_K_M"
    # An existing output needs --force, and is left untouched without it.
    before = out.read_bytes()
    assert main(["quantize", str(f16), str(out), "Q4_0", "-q"]) == OutputError.exit_code
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["quantize", str(f16), str(out), "Q4_0", "-q", "--force"]) == 0
    assert inspect_gguf(out).quantization == "Q4_0"


def test_bad_inputs(tmp_path) -> None:
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="not a GGUF"):
        quantize_gguf(not_gguf, tmp_path / "y.gguf", "Q4_0", show_progress=False)
    with pytest.raises(ModelError, match="not found"):
        quantize_gguf(tmp_path / "missing.gguf", tmp_path / "y.gguf", "Q4_0", show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.gguf"]


def test_convert_chains_quant(quant_source, llama_runner, tmp_path) -> None:
    checkpoint, _ = quant_source
    out = convert_checkpoint(checkpoint, tmp_path / "m.gguf", quant="Q4_K_M", show_progress=False)
    assert inspect_gguf(out).quantization == "Q4_K_M"
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]  # the F16 intermediate is gone
    llama_runner(out)


def test_verify_quantized(quant_source, tmp_path) -> None:
    checkpoint, f16 = quant_source
    out = quantize_gguf(f16, tmp_path / "m.gguf", "Q8_0", show_progress=False)
    prompts = [line for line in sample_lines()[::20] if line.strip()]
    report = verify_gguf(
        out, checkpoint, prompts=prompts, lines=sample_lines()[:20], greedy_tokens=0, threads=1
    )
    assert report.quantized and report.gguf_type == "Q8_0"
    assert report.top1_agreement > 0.9 and report.mean_kl < 0.05
    assert report.ok, report.lines()
