"""Prefill and decode speed, measured the way llama-bench measures them.

``ppN``: N prompt tokens evaluated on a fresh context in batches; ``tgN``: N tokens decoded one
at a time. The figures are medians over repetitions after one warm-up, so they can be quoted
beside ``llama-bench``'s on the same GGUF and threads.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import asdict, dataclass

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

    def as_dict(self) -> dict:
        data = asdict(self)
        data["pp_runs"] = list(self.pp_runs)
        data["tg_runs"] = list(self.tg_runs)
        return data

    def format_table(self) -> str:
        rows = [
            ("model", self.model),
            ("quantization", self.quantization),
            ("threads", str(self.threads)),
            (f"pp{self.prompt_tokens}", f"{self.pp_tps:10.2f} tokens/s"),
            (f"tg{self.gen_tokens}", f"{self.tg_tps:10.2f} tokens/s"),
        ]
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_bench(
    engine: Engine, *, prompt_tokens: int = 512, gen_tokens: int = 128, repetitions: int = 3
) -> BenchResult:
    """Measure ``pp{prompt_tokens}`` and ``tg{gen_tokens}`` on ``engine``'s model."""
    llm = engine.llama
    rng = random.Random(0)
    n_vocab = llm.n_vocab()
    prompt = [rng.randrange(n_vocab) for _ in range(prompt_tokens)]
    token = prompt[0]

    def prefill() -> None:
        llm.reset()
        llm.eval(prompt)

    def decode() -> None:
        llm.reset()
        for _ in range(gen_tokens):
            llm.eval([token])

    prefill()  # warm-up: first-touch of mmapped weights, allocator
    pp = tuple(prompt_tokens / _timed(prefill) for _ in range(repetitions))
    decode()
    tg = tuple(gen_tokens / _timed(decode) for _ in range(repetitions))
    llm.reset()
    return BenchResult(
        model=engine.model_name,
        quantization=engine.info.quantization,
        threads=llm.n_threads,
        n_ctx=engine.n_ctx,
        prompt_tokens=prompt_tokens,
        gen_tokens=gen_tokens,
        repetitions=repetitions,
        pp_tps=statistics.median(pp),
        tg_tps=statistics.median(tg),
        pp_runs=pp,
        tg_runs=tg,
    )
