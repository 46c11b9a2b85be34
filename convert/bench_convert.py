"""Benchmark: convert a >=1B-parameter random LLaMA checkpoint and measure time and memory.

    python -m bayling_convert.bench_convert                  # TinyLlama-1.1B shape, fp16, 4 shards
    python -m bayling_convert.bench_convert --outtype q8_0 --quant Q4_K_M --keep

The checkpoint is made on the spot, shard by shard and tensor by tensor, with random fp16
weights written straight into safetensors files (so making it needs little memory either), and
a synthetic 32,000-piece SentencePiece vocabulary. Each conversion runs as
``bayling-local convert`` in a child process, whose wall time and peak resident memory (its
VmHWM) are reported with the checkpoint's size: the goal is peak memory under a quarter of the
checkpoint. Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK = 1 << 24  # values generated at a time


@dataclass(frozen=True)
class BenchShape:
    """A LLaMA shape; the defaults are TinyLlama-1.1B's (grouped-query attention)."""

    vocab: int = 32000
    hidden: int = 2048
    intermediate: int = 5632
    layers: int = 22
    heads: int = 32
    kv_heads: int = 4

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        kv = self.hidden // self.heads * self.kv_heads
        names: list[tuple[str, tuple[int, ...]]] = [
            ("model.embed_tokens.weight", (self.vocab, self.hidden))
        ]
        for i in range(self.layers):
            p = f"model.layers.{i}"
            names += [
                (f"{p}.input_layernorm.weight", (self.hidden,)),
                (f"{p}.self_attn.q_proj.weight", (self.hidden, self.hidden)),
                (f"{p}.self_attn.k_proj.weight", (kv, self.hidden)),
                (f"{p}.self_attn.v_proj.weight", (kv, self.hidden)),
                (f"{p}.self_attn.o_proj.weight", (self.hidden, self.hidden)),
                (f"{p}.post_attention_layernorm.weight", (self.hidden,)),
                (f"{p}.mlp.gate_proj.weight", (self.intermediate, self.hidden)),
                (f"{p}.mlp.up_proj.weight", (self.intermediate, self.hidden)),
                (f"{p}.mlp.down_proj.weight", (self.hidden, self.intermediate)),
            ]
        names += [
            ("model.norm.weight", (self.hidden,)),
            ("lm_head.weight", (self.vocab, self.hidden)),
        ]
        return names

    @property
    def params(self) -> int:
        return sum(int(np.prod(shape)) for _, shape in self.tensors())


def _write_random(handle, count: int, rng: np.random.Generator, ones: bool) -> None:
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        if ones:
            values = np.ones(n, dtype=np.float16)
        else:
            values = (rng.standard_normal(n, dtype=np.float32) * 0.02).astype(np.float16)
        handle.write(values.tobytes())


def write_checkpoint(directory: Path, shape: BenchShape, shards: int = 4, seed: int = 0) -> int:
    """Write a random fp16 safetensors checkpoint in ``shards`` files; returns its byte size."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tensors = shape.tensors()
    total = sum(int(np.prod(s)) * 2 for _, s in tensors)
    per_shard = total / shards
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for item in tensors:
        if size >= per_shard * len(groups) and len(groups) < shards:
            groups.append([])
        groups[-1].append(item)
        size += int(np.prod(item[1])) * 2
    weight_map: dict[str, str] = {}
    for index, group in enumerate(groups, 1):
        name = f"model-{index:05d}-of-{len(groups):05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for tensor, dims in group:
            nbytes = int(np.prod(dims)) * 2
            header[tensor] = {
                "dtype": "F16",
                "shape": list(dims),
                "data_offsets": [offset, offset + nbytes],
            }
            offset += nbytes
            weight_map[tensor] = name
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(directory / name, "wb") as handle:
            handle.write(struct.pack("<Q", len(raw)) + raw)
            for tensor, dims in group:
                _write_random(handle, int(np.prod(dims)), rng, ones=tensor.endswith("norm.weight"))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": shape.vocab,
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float16",
    }
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    write_synthetic_spm(directory / "tokenizer.model", shape.vocab)
    return total


def write_synthetic_spm(path: Path, size: int) -> None:
    """A valid LLaMA-shaped SentencePiece BPE model: specials, 256 byte pieces, filler pieces."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    for text, kind in (("<unk>", 2), ("<s>", 3), ("</s>", 3)):
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = text, 0.0, kind
    for byte in range(256):
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = f"<0x{byte:02X}>", 0.0, 6
    for index in range(size - len(proto.pieces)):
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = f"▁w{index}", -float(index), 1
    proto.trainer_spec.model_type = pb.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = size
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id, proto.trainer_spec.eos_id = 0, 1, 2
    proto.trainer_spec.pad_id = -1
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.remove_extra_whitespaces = False
    path.write_bytes(proto.SerializeToString())


@dataclass(frozen=True)
class Measurement:
    command: str
    seconds: float
    peak_rss: int  # bytes
    output_bytes: int


def _high_water_mark(pid: int) -> int:
    """The process's peak resident set (VmHWM) in bytes; 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(args: list[str], output: Path) -> Measurement:
    """Run a command as a child process; its wall time and peak resident set size.

    The peak is the child's own VmHWM, polled while it runs: ``ru_maxrss`` would also count
    the memory of this (parent) process, which the child inherits until it execs.
    """
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _high_water_mark(proc.pid))
        time.sleep(0.02)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(args)}")
    return Measurement(" ".join(args[2:]), seconds, peak, output.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="Working directory (default: a temporary one).")
    parser.add_argument("--layers", type=int, default=BenchShape.layers)
    parser.add_argument("--hidden", type=int, default=BenchShape.hidden)
    parser.add_argument("--intermediate", type=int, default=BenchShape.intermediate)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--outtype", action="append", help="Output type(s) to time (default f16).")
    parser.add_argument("--quant", help="Also time convert --quant TYPE (llama.cpp quantizer).")
    parser.add_argument("--keep", action="store_true", help="Keep the checkpoint and outputs.")
    args = parser.parse_args(argv)

    shape = BenchShape(hidden=args.hidden, intermediate=args.intermediate, layers=args.layers)
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-convert-"))
    ckpt = work / "checkpoint"
    try:
        started = time.monotonic()
        size = write_checkpoint(ckpt, shape, shards=args.shards)
        made = time.monotonic() - started
        print(
            f"checkpoint: {shape.params / 1e9:.2f}B parameters, {size / 1e9:.2f} GB fp16 "
            f"in {args.shards} shards (made in {made:.0f}s)",
            flush=True,
        )
        runs: list[tuple[str, list[str]]] = [
            (outtype, ["--outtype", outtype]) for outtype in (args.outtype or ["f16"])
        ]
        if args.quant:
            runs.append((args.quant, ["--quant", args.quant]))
        print("| output | wall time | MB/s (checkpoint bytes) | peak RSS | peak RSS / checkpoint |")
        print("| --- | --- | --- | --- | --- |")
        for label, flags in runs:
            out = work / f"bench.{label}.gguf"
            command = [
                sys.executable,
                "-m",
                "bayling_local",
                "convert",
                str(ckpt),
                "-o",
                str(out),
                *flags,
                "-q",
                "--force",
            ]
            m = measure(command, out)
            print(
                f"| {label} ({m.output_bytes / 1e9:.2f} GB) | {m.seconds:.1f} s | "
                f"{size / 1e6 / m.seconds:.0f} | {m.peak_rss / 2**20:.0f} MiB | "
                f"{m.peak_rss / size:.1%} |",
                flush=True,
            )
            if not args.keep:
                out.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(work if args.dir is None else ckpt, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
