"""Prefill and decode speed, measured the way llama.cpp's own tools measure them.

``ppN``: N prompt tokens evaluated on a fresh sequence in batches; ``tgN``: N tokens decoded
one at a time (llama-bench). ``parallel``: N sequences prefilled with a prompt each and then
decoded together, one token per sequence per step, through the engine's real decode loop
(sampler chains included) — llama-batched-bench's S_TG. Figures are medians over repetitions
after one warm-up, so they can be quoted beside llama.cpp's on the same GGUF and threads.

Sizes are fitted to the model: a prompt and its generated tokens must fit the context (the
demo model has 512 tokens), so requested sizes larger than that are reduced and the result
says so.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass, field, replace

from .decoder import Decoder, SampleJob, Sampling
from .engine import Engine


@dataclass(frozen=True)
class BenchResult:
    model: str
    quantization: str
    threads: int
    n_ctx: int
    prompt_tokens: int
    gen_tokens: int
    repetitions: int
    pp_tps: float
    tg_tps: float
    pp_runs: tuple[float, ...]
    tg_runs: tuple[float, ...]
    parallel: tuple[ParallelResult, ...] = ()
    adjusted: str | None = None  # why the sizes differ from the ones asked for

    def as_dict(self) -> dict:
        data = asdict(self)
        data["pp_runs"] = list(self.pp_runs)
        data["tg_runs"] = list(self.tg_runs)
        data["parallel"] = [p.as_dict() for p in self.parallel]
        return data

    def format_table(self) -> str:
        rows = [
            ("model", self.model),
            ("quantization", self.quantization),
            ("threads", str(self.threads)),
            (f"pp{self.prompt_tokens}", f"{self.pp_tps:10.2f} tokens/s"),
            (f"tg{self.gen_tokens}", f"{self.tg_tps:10.2f} tokens/s"),
        ]
        for p in self.parallel:
            rows.append(
                (
                    f"tg{p.gen_tokens} x{p.parallel}",
                    f"{p.tg_tps:10.2f} tokens/s  ({p.speedup:.2f}x of one sequence)",
                )
            )
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


@dataclass(frozen=True)
class ParallelResult:
    """Aggregate decode speed of ``parallel`` sequences decoded together."""

    parallel: int
    prompt_tokens: int
    gen_tokens: int
    tg_tps: float  # all sequences' generated tokens / decode time
    pp_tps: float  # all sequences' prompt tokens / prefill time
    tg_runs: tuple[float, ...] = field(default=())
    speedup: float = 1.0  # tg_tps / the one-sequence tg_tps of the same run

    def as_dict(self) -> dict:
        data = asdict(self)
        data["tg_runs"] = list(self.tg_runs)
        return data


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fit_sizes(n_ctx: int, prompt_tokens: int, gen_tokens: int) -> tuple[int, int, str | None]:
    """Shrink ``prompt_tokens``/``gen_tokens`` proportionally so that they fit ``n_ctx``."""
    if prompt_tokens + gen_tokens + 1 < n_ctx:
        return prompt_tokens, gen_tokens, None
    scale = (n_ctx - 2) / (prompt_tokens + gen_tokens)
    pp = max(1, int(prompt_tokens * scale))
    tg = max(1, min(gen_tokens, n_ctx - 2 - pp))
    note = (
        f"pp{prompt_tokens} + tg{gen_tokens} do not fit the model's {n_ctx}-token context; "
        f"measured pp{pp} and tg{tg}"
    )
    return pp, tg, note


class _Forced(SampleJob):
    """A greedy sequence that never stops early (end tokens are decoded like any other)."""

    def on_rows(self, decoder: Decoder, rows: list[int]) -> None:
        saved = decoder.stop_ids
        decoder.stop_ids = frozenset()
        try:
            super().on_rows(decoder, rows)
        finally:
            decoder.stop_ids = saved


def _parallel_run(engine: Engine, prompts: list[list[int]], gen_tokens: int) -> tuple[float, float]:
    """Prefill every prompt, then decode ``gen_tokens`` per sequence; (prefill s, decode s)."""
    decoder = engine.decoder
    with engine.step_lock:
        decoder.drop_prefix()
        jobs = [_Forced(p, gen_tokens, Sampling(), ()) for p in prompts]
        for job in jobs:
            decoder.admit(job)
        start = time.perf_counter()
        while any(j.prefilling for j in jobs):
            decoder.step()
        middle = time.perf_counter()
        decoder.run_until_idle()
        end = time.perf_counter()
        decoder.drop_prefix()
    return middle - start, end - middle


def run_bench(
    engine: Engine,
    *,
    prompt_tokens: int = 512,
    gen_tokens: int = 128,
    repetitions: int = 3,
    parallel: tuple[int, ...] = (),
    parallel_prompt: int = 128,
    parallel_gen: int = 128,
) -> BenchResult:
    """Measure ``pp{prompt_tokens}``, ``tg{gen_tokens}`` and, for each N in ``parallel``, the
    aggregate decode speed of N sequences (prompt ``parallel_prompt``, ``parallel_gen`` new)."""
    n_ctx = engine.n_ctx
    prompt_tokens, gen_tokens, note = fit_sizes(n_ctx, prompt_tokens, gen_tokens)
    rng = random.Random(0)
    n_vocab = engine.n_vocab
    prompt = [rng.randrange(n_vocab) for _ in range(prompt_tokens)]
    decoder = engine.decoder

    def prefill() -> None:
        with engine.step_lock:
            decoder.drop_prefix()
            job = _Forced(prompt, 1, Sampling(), ())
            decoder.admit(job)
            decoder.run_until_idle()
            decoder.drop_prefix()

    def decode() -> float:
        # one prompt token, then gen_tokens decode steps of one token each (llama-bench's tgN)
        return _parallel_run(engine, [prompt[:1]], gen_tokens + 1)[1]

    prefill()  # warm-up: first-touch of mmapped weights, allocator
    pp = tuple(prompt_tokens / _timed(prefill) for _ in range(repetitions))
    decode()
    tg = tuple(gen_tokens / decode() for _ in range(repetitions))
    results: list[ParallelResult] = []
    if parallel:
        pp_n, tg_n, note_n = fit_sizes(n_ctx, parallel_prompt, parallel_gen)
        note = note or note_n
        from .batch import plan_kv

        largest = max(parallel)
        engine.reserve(  # the batch engine's layout: a stream per sequence
            cells=plan_kv(engine, largest, 1, budget=2**62).cells,
            max_seqs=largest,
            unified=False,
        )
        base = None
        for n in sorted(set(parallel)):
            prompts = [[rng.randrange(n_vocab) for _ in range(pp_n)] for _ in range(n)]
            _parallel_run(engine, prompts, tg_n + 1)  # warm-up
            runs = [_parallel_run(engine, prompts, tg_n + 1) for _ in range(repetitions)]
            tg_rates = tuple(n * tg_n / d for _, d in runs if d > 0)
            pp_rates = tuple(n * pp_n / p for p, _ in runs if p > 0)
            tg_tps = statistics.median(tg_rates) if tg_rates else 0.0
            if base is None:
                base = tg_tps if n == 1 else statistics.median(tg)
            results.append(
                ParallelResult(
                    parallel=n,
                    prompt_tokens=pp_n,
                    gen_tokens=tg_n,
                    tg_tps=tg_tps,
                    pp_tps=statistics.median(pp_rates) if pp_rates else 0.0,
                    tg_runs=tg_rates,
                    speedup=tg_tps / base if base else 0.0,
                )
            )
    return BenchResult(
        model=engine.model_name,
        quantization=engine.info.quantization,
        threads=engine.threads,
        n_ctx=n_ctx,
        prompt_tokens=prompt_tokens,
        gen_tokens=gen_tokens,
        repetitions=repetitions,
        pp_tps=statistics.median(pp),
        tg_tps=statistics.median(tg),
        pp_runs=pp,
        tg_runs=tg,
        parallel=tuple(results),
        adjusted=note,
    )


def run_translate_bench(
    engine: Engine,
    sentences: list[str],
    target,  # languages.Language
    *,
    parallel: int,
    beam: int = 1,
    max_tokens: int = 256,
    repetitions: int = 1,
) -> dict:
    """Segments per second translating ``sentences`` one at a time and ``parallel`` at once,
    and how many of the batched translations are identical to the one-at-a-time ones."""
    from .batch import BatchEngine
    from .translate import TRANSLATION_SAMPLING, Translator

    sampling = replace(TRANSLATION_SAMPLING, max_tokens=max_tokens)
    # one batch engine per engine: "alone" sends it one segment at a time (beams) or streams
    # through Engine.chat (greedy); "together" sends it every segment at once
    shared = BatchEngine(engine, parallel, beam=beam)
    alone = Translator(engine, sampling, parallel=1, batch=shared)
    together = Translator(engine, sampling, parallel=parallel, batch=shared)

    def sequential() -> list[str]:
        return [alone.translate(s, target, beam=beam).text for s in sentences]

    def batched() -> list[str]:
        return [r.text for r in together.translate_segments(sentences, target, beam=beam)]

    seq_times: list[float] = []
    batch_times: list[float] = []
    sequential_texts: list[str] = []
    batched_texts: list[str] = []
    try:
        alone.translate(sentences[0], target, beam=beam)  # warm-up
        for _ in range(repetitions):
            start = time.perf_counter()
            sequential_texts = sequential()
            seq_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            batched_texts = batched()
            batch_times.append(time.perf_counter() - start)
    finally:
        shared.close()
    seq_sps = len(sentences) / statistics.median(seq_times)
    batch_sps = len(sentences) / statistics.median(batch_times)
    return {
        "model": engine.model_name,
        "quantization": engine.info.quantization,
        "threads": engine.threads,
        "segments": len(sentences),
        "parallel": parallel,
        "beam": beam,
        "max_tokens": max_tokens,
        "sequential_sps": round(seq_sps, 3),
        "batched_sps": round(batch_sps, 3),
        "ratio": round(batch_sps / seq_sps, 3),
        "identical": sum(a == b for a, b in zip(sequential_texts, batched_texts)),
        "sequential_seconds": [round(t, 3) for t in seq_times],
        "batched_seconds": [round(t, 3) for t in batch_times],
    }
