"""The inference engine: a GGUF model run through llama.cpp, with BayLing's prompt formats.

No UI code lives here. The CLI, the terminal UI and the batch tools all call :class:`Engine`.
It fixes the defaults that bite users of llama-cpp-python: the context comes from the model's
own metadata (never the 512-token default), ``max_tokens`` is always explicit, threads default
to the physical cores, and generation stops on every end-of-generation token (eos, Llama-3's
``<|eot_id|>``) and on the format's stop strings. A generation streams text, can be cancelled
between tokens, and reports prefill and decode speed.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import Cancelled, ContextOverflowError, ModelError
from .gguf_file import GGUFInfo, inspect_gguf
from .prompts import FormatChoice, Message, PromptFormat, get_format, select_format

FinishReason = Literal["stop", "length", "context", "cancelled"]


def physical_cores() -> int:
    """Physical cores (hyper-threads slow llama.cpp's decode down), at least 1."""
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency
        count = None
    return max(1, count or os.cpu_count() or 1)


@dataclass(frozen=True)
class EngineConfig:
    """How to load a model."""

    model_path: Path
    context: int | None = None  # cap on the context; None: the model's own length
    threads: int | None = None  # None: physical cores
    gpu_layers: int = -1  # -1: all layers (where a GPU build is installed), 0: none, N: N
    use_mmap: bool = True
    batch_size: int = 512
    prompt_format: str | None = None  # force a format by name; None: chosen from the model


@dataclass(frozen=True)
class SamplingConfig:
    """How to generate. ``temperature == 0`` is greedy decoding."""

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")


GREEDY = SamplingConfig()


@dataclass
class GenerationStats:
    """What one call cost: token counts and speeds."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the previous call's KV cache
    generated_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    finish_reason: FinishReason | None = None

    @property
    def prefill_tps(self) -> float:
        evaluated = self.prompt_tokens - self.cached_tokens
        return evaluated / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tps(self) -> float:
        # The first generated token is produced by the prefill; the rest by decode steps.
        steps = self.generated_tokens - 1
        return steps / self.decode_seconds if steps > 0 and self.decode_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "generated_tokens": self.generated_tokens,
            "prefill_seconds": round(self.prefill_seconds, 4),
            "decode_seconds": round(self.decode_seconds, 4),
            "prefill_tps": round(self.prefill_tps, 2),
            "decode_tps": round(self.decode_tps, 2),
            "finish_reason": self.finish_reason,
        }


class _StopMatcher:
    """Holds back text that might be the start of a stop string until it is decided."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return ``(text safe to emit, stopped)``."""
        self.pending += text
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.pending = self.pending[:cut], ""
            return out, True
        hold = 0
        for stop in self.stops:
            for length in range(min(len(stop) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(stop[:length]):
                    hold = max(hold, length)
                    break
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(self.pending) - hold :]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


@dataclass
class Generation:
    """A streaming generation: iterate it for text pieces; ``text`` and ``stats`` at the end.

    Iterating drives the model; stop early with :meth:`cancel` (any thread) or by breaking
    out of the loop.
    """

    _pieces: Iterator[str]
    stats: GenerationStats
    cancel_event: threading.Event = field(default_factory=threading.Event)
    text: str = ""

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            self.text += piece
            yield piece

    def cancel(self) -> None:
        self.cancel_event.set()

    def result(self) -> str:
        """Run to the end and return the whole text."""
        for _ in self:
            pass
        return self.text


class Engine:
    """One loaded GGUF model. Not thread-safe: one generation at a time (a lock enforces it)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.info: GGUFInfo = inspect_gguf(config.model_path)
        if self.info.architecture not in ("llama", ""):
            raise ModelError(
                f"{config.model_path} is a {self.info.architecture!r} model; bayling-local runs LLaMA-family models"
            )
        if self.info.tensor_count == 0:
            raise ModelError(f"{config.model_path} holds only a vocabulary, no weights")
        self.format_choice: FormatChoice = (
            FormatChoice(get_format(config.prompt_format), "chosen by the user")
            if config.prompt_format
            else select_format(
                self.info.format_metadata(), ["<|eot_id|>"] if self.info.has_eot else []
            )
        )
        self._lock = threading.Lock()
        self._llm = self._load()
        self._stop_ids = self._end_of_generation_ids()

    # -- loading -------------------------------------------------------------------------------

    def _load(self):  # -> llama_cpp.Llama
        import llama_cpp

        n_ctx = self._requested_context()
        threads = self.config.threads or physical_cores()
        try:
            with _quiet_stderr():
                return llama_cpp.Llama(
                    model_path=str(self.config.model_path),
                    n_ctx=n_ctx,
                    n_batch=min(self.config.batch_size, n_ctx),
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=self.config.gpu_layers,
                    use_mmap=self.config.use_mmap,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp could not load {self.config.model_path}: {exc}") from None

    def _requested_context(self) -> int:
        trained = self.info.context_length or 2048
        return min(self.config.context, trained) if self.config.context else trained

    def _end_of_generation_ids(self) -> frozenset[int]:
        import llama_cpp

        vocab = self._llm._model.vocab
        ids = {self._llm.token_eos()}
        eot = llama_cpp.llama_vocab_eot(vocab)
        if eot >= 0:
            ids.add(eot)
        for text in ("<|eot_id|>", "<|end_of_text|>", "</s>"):
            tokens = self._llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(tokens) == 1 and llama_cpp.llama_vocab_is_eog(vocab, tokens[0]):
                ids.add(tokens[0])
        return frozenset(i for i in ids if i >= 0)

    # -- facts -----------------------------------------------------------------------------------

    @property
    def prompt_format(self) -> PromptFormat:
        return self.format_choice.format

    @property
    def n_ctx(self) -> int:
        """Usable context: llama.cpp rounds its cache up to 256 tokens; a user's cap still holds."""
        return min(self._llm.n_ctx(), self._requested_context())

    @property
    def llama(self):  # -> llama_cpp.Llama
        """The underlying llama-cpp-python model, for tools that measure it (``bench``)."""
        return self._llm

    @property
    def model_name(self) -> str:
        return self.info.name

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return self._stop_ids

    def tokenize(self, text: str, *, add_bos: bool = True) -> list[int]:
        """Token ids as the model will see them (special tokens such as ``</s>`` recognised)."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._llm.detokenize(list(tokens)).decode("utf-8", errors="replace")

    def render(self, messages: Sequence[Message]) -> str:
        return self.prompt_format.render(messages)

    # -- generation ------------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[Message],
        sampling: SamplingConfig = GREEDY,
        *,
        cancel: threading.Event | None = None,
    ) -> Generation:
        """Generate the next assistant turn of a conversation."""
        stops = tuple(dict.fromkeys((*self.prompt_format.stop_strings, *sampling.stop)))
        return self.complete(self.render(messages), sampling, stops=stops, cancel=cancel)

    def complete(
        self,
        prompt: str,
        sampling: SamplingConfig = GREEDY,
        *,
        stops: Sequence[str] | None = None,
        cancel: threading.Event | None = None,
    ) -> Generation:
        """Continue raw prompt text. The prompt must fit the context with room for one token."""
        tokens = self.tokenize(prompt)
        if len(tokens) >= self.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {len(tokens)} tokens but the context holds {self.n_ctx}"
            )
        stats = GenerationStats(prompt_tokens=len(tokens))
        event = cancel or threading.Event()
        stop_strings = tuple(stops) if stops is not None else sampling.stop
        pieces = self._stream(tokens, sampling, stop_strings, stats, event)
        return Generation(pieces, stats, event)

    def _cached_prefix(self, tokens: Sequence[int]) -> int:
        llm = self._llm
        if llm.n_tokens == 0:
            return 0
        common = 0
        for a, b in zip(llm.input_ids[: llm.n_tokens], tokens):
            if a != b:
                break
            common += 1
        return min(common, len(tokens) - 1)

    def _stream(
        self,
        tokens: list[int],
        sampling: SamplingConfig,
        stops: Sequence[str],
        stats: GenerationStats,
        cancel: threading.Event,
    ) -> Iterator[str]:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("the engine is already generating")
        llm = self._llm
        try:
            if sampling.seed is not None:
                llm.set_seed(sampling.seed)
            stats.cached_tokens = self._cached_prefix(tokens)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            matcher = _StopMatcher(stops)
            room = self.n_ctx - len(tokens)
            limit = min(sampling.max_tokens, room)
            start = time.perf_counter()
            first_at = start
            generator = llm.generate(
                tokens,
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                min_p=sampling.min_p,
                temp=sampling.temperature,
                repeat_penalty=sampling.repeat_penalty,
            )
            finish: FinishReason = "length" if limit == sampling.max_tokens else "context"
            try:
                for token in generator:
                    now = time.perf_counter()
                    if stats.generated_tokens == 0:
                        first_at = now
                        stats.prefill_seconds = now - start
                    if token in self._stop_ids:
                        finish = "stop"
                        break
                    stats.generated_tokens += 1
                    stats.decode_seconds = now - first_at
                    piece = decoder.decode(llm.detokenize([token]))
                    text, stopped = matcher.feed(piece)
                    if text:
                        yield text
                    if stopped:
                        finish = "stop"
                        break
                    if cancel.is_set():
                        finish = "cancelled"
                        break
                    if stats.generated_tokens >= limit:
                        break
                else:
                    finish = "stop"
            finally:
                generator.close()
            stats.decode_seconds = (
                time.perf_counter() - first_at if stats.generated_tokens > 1 else 0.0
            )
            if finish != "stop":
                tail = matcher.flush() + decoder.decode(b"", final=True)
                if tail:
                    yield tail
            stats.finish_reason = finish
        except KeyboardInterrupt:
            stats.finish_reason = "cancelled"
            raise Cancelled("interrupted") from None
        finally:
            self._lock.release()

    def close(self) -> None:
        """Free the model's memory now rather than at garbage collection."""
        llm, self._llm = self._llm, None
        if llm is not None:
            with contextlib.suppress(Exception):
                llm.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence llama.cpp's C-level loading chatter (it writes to fd 2 directly)."""
    if os.environ.get("BAYLING_LOCAL_DEBUG"):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no stderr at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_engine(config: EngineConfig) -> Engine:
    """Load a model; every failure is a one-line :class:`ModelError`."""
    path = Path(config.model_path).expanduser()
    return Engine(EngineConfig(**{**config.__dict__, "model_path": path}))
