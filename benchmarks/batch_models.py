"""Build (once) the models the batch benchmarks run on, outside the repository.

    python benchmarks/batch_models.py            # prints the paths, building what is missing

- ``f32-256x4-llama32k.gguf``: a random LLaMA, 256 wide, 4 layers, F32, with the real 32,000-token
  LLaMA SentencePiece vocabulary (rebuilt from ``../shared/vocab/ggml-vocab-llama-spm.gguf``), so
  reading the 32k x 256 output matrix dominates a decode step, as with a real model;
- ``bench-85m.f16.gguf``: the 85M-parameter F16 model of ``engine_decode.py``;
- ``bench.Q4_K_M.gguf``: the random 1.1B (TinyLlama-shaped) Q4_K_M that
  ``python -m bayling_convert.bench_convert --quant Q4_K_M --keep`` makes.

All are made by the project's own code (``tests/support/tiny.py``, ``bayling_convert``) and kept in
``~/.cache/bayling-local/bench-models`` (``--dir`` to change).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CACHE = Path.home() / ".cache" / "bayling-local" / "bench-models"
VOCAB = ROOT.parent / "shared" / "vocab" / "ggml-vocab-llama-spm.gguf"


def f32_llama32k(directory: Path) -> Path:
    out = directory / "f32-256x4-llama32k.gguf"
    if out.is_file():
        return out
    from bayling_convert import convert_checkpoint
    from tests.support.tiny import TinyShape, make_tiny_checkpoint, rebuild_hf_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        vocab_dir = Path(tmp) / "vocab"
        rebuild_hf_tokenizer(VOCAB, vocab_dir)
        shape = TinyShape(
            hidden_size=256,
            num_layers=4,
            num_heads=4,
            intermediate_size=688,
            context_length=2048,
            initializer_range=0.02,
        )
        hf = make_tiny_checkpoint(Path(tmp) / "hf", "spm", shape=shape, tokenizer_dir=vocab_dir)
        convert_checkpoint(hf, out, outtype="f32", force=True, show_progress=False)
    return out


def f16_85m(directory: Path) -> Path:
    out = directory / "bench-85m.f16.gguf"
    if out.is_file():
        return out
    from engine_decode import build_model

    with tempfile.TemporaryDirectory() as tmp:
        built = build_model(Path(tmp))
        built.replace(out)
    return out


def q4km_1b(directory: Path) -> Path:
    work = directory / "bench-1.1b"
    out = work / "bench.Q4_K_M.gguf"
    if out.is_file():
        return out
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bayling_convert.bench_convert",
            "--quant",
            "Q4_K_M",
            "--keep",
            "--dir",
            str(work),
        ],
        check=True,
    )
    import shutil

    (work / "bench.f16.gguf").unlink(missing_ok=True)  # only the Q4_K_M is benchmarked
    shutil.rmtree(work / "checkpoint", ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=CACHE)
    parser.add_argument("--only", choices=["f32", "85m", "1b"], action="append")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    makers = {"f32": f32_llama32k, "85m": f16_85m, "1b": q4km_1b}
    for name in args.only or list(makers):
        print(makers[name](args.dir), flush=True)


if __name__ == "__main__":
    main()
