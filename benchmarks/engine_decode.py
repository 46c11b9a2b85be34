"""Engine overhead: decode tokens/s through ``Engine`` over a bare llama-cpp-python loop.

Both run on the same loaded model, same threads, same prompt, greedy, alternating A/B runs so
that machine noise hits both alike; the ratio of medians is reported. Usage:

    python benchmarks/engine_decode.py [--gguf PATH] [--tokens 128] [--runs 7]

Without ``--gguf`` it builds a random LLaMA model (hidden 768, 12 layers, ~85M parameters, F16)
with the project's own converter, so decode time is dominated by the matrix work as with a
real model rather than by Python.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bayling_local.engine import Engine, EngineConfig, SamplingConfig  # noqa: E402
from bayling_local.prompts import Message  # noqa: E402

PROMPT = [
    Message("user", "Provide the German translation for this sentence: The weather is nice today.")
]


def build_model(workdir: Path) -> Path:
    from bayling_convert import convert_checkpoint
    from tests.support.tiny import TinyShape, make_tiny_checkpoint

    shape = TinyShape(
        hidden_size=768, intermediate_size=2048, num_layers=12, num_heads=12, context_length=2048
    )
    hf_dir = make_tiny_checkpoint(workdir / "hf", "spm", shape=shape, dtype="float16")
    return convert_checkpoint(
        hf_dir, workdir / "bench-85m.f16.gguf", outtype="f16", show_progress=False
    )


def bare_loop(llm, prompt_tokens: list[int], n: int) -> float:
    """Decode tokens/s of the plainest llama-cpp-python loop: ``Llama.generate``, greedy."""
    llm.reset()
    tokens = llm.generate(prompt_tokens, temp=0.0, repeat_penalty=1.0)
    next(tokens)  # the first token comes from the prefill
    start = time.perf_counter()
    for _ in range(n - 1):
        next(tokens)
    elapsed = time.perf_counter() - start
    tokens.close()
    return (n - 1) / elapsed


def engine_run(engine: Engine, n: int) -> float:
    engine.decoder.drop_prefix()  # no KV reuse: the same work as the bare loop
    generation = engine.chat(PROMPT, SamplingConfig(max_tokens=n, temperature=0.0, stop=()))
    generation.result()
    if generation.stats.generated_tokens < n:
        print(f"note: stopped after {generation.stats.generated_tokens} tokens", file=sys.stderr)
    return generation.stats.decode_tps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gguf = args.gguf or build_model(Path(tmp))
        import llama_cpp

        engine = Engine(EngineConfig(gguf, threads=args.threads))
        llm = llama_cpp.Llama(  # the same file and threads, its own context
            model_path=str(gguf),
            n_ctx=engine.n_ctx,
            n_threads=engine.threads,
            n_threads_batch=engine.threads,
            verbose=False,
        )
        prompt_tokens = engine.tokenize(engine.render(PROMPT))
        bare_loop(llm, prompt_tokens, 16)  # warm-up
        engine_run(engine, 16)
        bare, ours = [], []
        for _ in range(args.runs):
            bare.append(bare_loop(llm, prompt_tokens, args.tokens))
            ours.append(engine_run(engine, args.tokens))
        result = {
            "model": str(gguf.name),
            "threads": engine.threads,
            "tokens": args.tokens,
            "runs": args.runs,
            "bare_tps_median": round(statistics.median(bare), 2),
            "engine_tps_median": round(statistics.median(ours), 2),
            "ratio": round(statistics.median(ours) / statistics.median(bare), 4),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
