"""Every source layout converts to the same GGUF: shards, .bin, bf16/fp16, v1.0 deltas."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from bayling_convert import convert_checkpoint
from bayling_convert.tensors import BLOCK_PARTS
from bayling_local.errors import InputError
from tests.support.tiny import REPO_ROOT, make_tiny_checkpoint


def tensors_of(path: Path) -> dict[str, tuple[str, bytes]]:
    reader = GGUFReader(path)
    return {t.name: (t.tensor_type.name, bytes(t.data.tobytes())) for t in reader.tensors}


def convert(src: Path, out: Path, **kwargs) -> Path:
    return convert_checkpoint(src, out, show_progress=False, **kwargs)


@pytest.fixture(scope="module")
def reference(tiny_spm_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "ref.gguf"
    return tensors_of(convert(tiny_spm_checkpoint, out, outtype="f32"))


def test_tensor_names_and_types(reference: dict) -> None:
    names = set(reference)
    assert {"token_embd.weight", "output_norm.weight", "output.weight"} <= names
    for part in BLOCK_PARTS:
        assert f"blk.0.{part}.weight" in names and f"blk.1.{part}.weight" in names
    assert len(names) == 3 + 2 * 9
    assert {kind for kind, _ in reference.values()} == {"F32"}


def test_sharded_checkpoint(tmp_path: Path, reference: dict) -> None:
    sharded = make_tiny_checkpoint(tmp_path / "hf", "spm", max_shard_size="200KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    assert len(list(sharded.glob("model-*.safetensors"))) > 1
    assert tensors_of(convert(sharded, tmp_path / "m.gguf", outtype="f32")) == reference


def test_pytorch_bin_written_by_torch(
    tiny_spm_checkpoint: Path, tmp_path: Path, reference: dict
) -> None:
    """A sharded ``pytorch_model-*.bin`` checkpoint (how BayLing 1 was published)."""
    import torch
    from safetensors.torch import load_file

    src = tmp_path / "hf"
    shutil.copytree(tiny_spm_checkpoint, src)
    state = load_file(src / "model.safetensors")
    (src / "model.safetensors").unlink()
    names = sorted(state)
    halves = {
        "pytorch_model-00001-of-00002.bin": names[::2],
        "pytorch_model-00002-of-00002.bin": names[1::2],
    }
    weight_map = {}
    for file, part in halves.items():
        torch.save({n: state[n] for n in part}, src / file)
        weight_map.update(dict.fromkeys(part, file))
    (src / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert tensors_of(convert(src, tmp_path / "m.gguf", outtype="f32")) == reference


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_sources(dtype: str, tmp_path: Path) -> None:
    """fp16 and bf16 weights reach the GGUF exactly (f32 output widens without rounding)."""
    import torch
    from safetensors.torch import load_file

    src = make_tiny_checkpoint(tmp_path / "hf", "bpe", dtype=dtype)
    gguf = tensors_of(convert(src, tmp_path / "m.gguf", outtype="f32"))
    state = load_file(src / "model.safetensors")
    embed = state["model.embed_tokens.weight"].to(torch.float32).numpy()
    kind, data = gguf["token_embd.weight"]
    assert kind == "F32"
    assert np.array_equal(np.frombuffer(data, dtype=np.float32).reshape(embed.shape), embed)


def test_permutation_is_applied(tiny_bpe_checkpoint: Path, tmp_path: Path) -> None:
    """q and k rows are reordered for llama.cpp's rotary layout (k with the key/value heads)."""
    from safetensors.numpy import load_file

    from bayling_convert.tensors import permute_rotary

    state = load_file(tiny_bpe_checkpoint / "model.safetensors")
    gguf = tensors_of(convert(tiny_bpe_checkpoint, tmp_path / "m.gguf", outtype="f32"))
    config = json.loads((tiny_bpe_checkpoint / "config.json").read_text())
    for hf, name, heads in (
        ("q_proj", "attn_q", config["num_attention_heads"]),
        ("k_proj", "attn_k", config["num_key_value_heads"]),
    ):
        weights = state[f"model.layers.0.self_attn.{hf}.weight"]
        got = np.frombuffer(gguf[f"blk.0.{name}.weight"][1], dtype=np.float32).reshape(
            weights.shape
        )
        assert np.array_equal(got, permute_rotary(weights, heads))
        assert not np.array_equal(got, weights)


def test_delta_reproduces_target_exactly(tmp_path: Path) -> None:
    """v1.0 checkpoints: target = base + delta for every parameter of matching name and shape."""
    from safetensors.numpy import load_file, save_file

    base = make_tiny_checkpoint(tmp_path / "base", "spm", seed=0)
    delta = make_tiny_checkpoint(tmp_path / "delta", "spm", seed=1)
    target = tmp_path / "target"
    shutil.copytree(delta, target)
    base_state, delta_state = (
        load_file(base / "model.safetensors"),
        load_file(delta / "model.safetensors"),
    )
    save_file(
        {n: base_state[n] + delta_state[n] for n in delta_state}, target / "model.safetensors"
    )
    applied = tensors_of(convert(delta, tmp_path / "applied.gguf", outtype="f32", base_dir=base))
    expected = tensors_of(convert(target, tmp_path / "target.gguf", outtype="f32"))
    assert applied == expected
    # Without the base, the delta alone is a different model.
    assert tensors_of(convert(delta, tmp_path / "alone.gguf", outtype="f32")) != expected
    # Verification applies the delta in transformers too.
    from bayling_convert import verify_gguf

    report = verify_gguf(
        tmp_path / "applied.gguf",
        delta,
        base_dir=base,
        prompts=["Hello world"],
        lines=["Hi"],
        greedy_tokens=8,
        threads=1,
    )
    assert report.ok and report.rel_logit_diff < 1e-3, report.lines()


def test_delta_without_tokenizer_uses_the_base_one(tmp_path: Path) -> None:
    base = make_tiny_checkpoint(tmp_path / "base", "spm", seed=0)
    delta = make_tiny_checkpoint(tmp_path / "delta", "spm", seed=1)
    for name in ("tokenizer.model", "tokenizer.json"):
        (delta / name).unlink()
    assert convert(delta, tmp_path / "m.gguf", outtype="f16", base_dir=base).is_file()


def test_delta_shape_mismatch(tmp_path: Path) -> None:
    from tests.support.tiny import TinyShape

    base = make_tiny_checkpoint(tmp_path / "base", "spm", shape=TinyShape(intermediate_size=96))
    delta = make_tiny_checkpoint(tmp_path / "delta", "spm")
    with pytest.raises(InputError, match="does not belong to this base"):
        convert(delta, tmp_path / "m.gguf", base_dir=base)
    assert not (tmp_path / "m.gguf").exists()


def test_known_delta_needs_base(tiny_spm_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="weight delta over LLaMA-7B: pass --base"):
        convert(tiny_spm_checkpoint, tmp_path / "m.gguf", name="bayling-7b-v1.0")


def test_safetensors_conversion_needs_no_torch(tiny_bpe_checkpoint: Path, tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from bayling_convert import convert_checkpoint\n"
        f"convert_checkpoint({str(tiny_bpe_checkpoint)!r}, {str(tmp_path / 'm.gguf')!r}, "
        "outtype='q8_0', show_progress=False)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
    assert (tmp_path / "m.gguf").stat().st_size > 0


@pytest.mark.parametrize("outtype", ["f32", "f16", "bf16", "q8_0"])
def test_row_blocks_convert_like_whole_tensors(outtype: str, tmp_path: Path) -> None:
    """Large tensors are converted a block of rows at a time; the bytes must not change."""
    from bayling_convert import plan_conversion

    base = make_tiny_checkpoint(tmp_path / "base", "bpe", seed=0, dtype="bfloat16")
    delta = make_tiny_checkpoint(tmp_path / "delta", "bpe", seed=1, dtype="float16")
    for plan in (
        plan_conversion(delta, outtype=outtype),
        plan_conversion(delta, outtype=outtype, base_dir=base),
    ):
        for tensor in plan.tensors:
            whole = b"".join(c.tobytes() for c in tensor.chunks(chunk_bytes=1 << 30))
            pieces = [c.tobytes() for c in tensor.chunks(chunk_bytes=1000)]
            assert b"".join(pieces) == whole, tensor.gguf_name
            assert len(whole) == tensor.nbytes
            if tensor.gguf_name == "token_embd.weight":
                assert len(pieces) > 10
