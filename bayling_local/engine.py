"""The inference engine: a GGUF model run through llama.cpp, with BayLing's prompt formats.

No UI code lives here. The CLI, the terminal UI and the batch tools all call :class:`Engine`.
It fixes the defaults that bite users of llama-cpp-python: the context comes from the model's
own metadata (never the 512-token default), ``max_tokens`` is always explicit, threads default
to the physical cores, and generation stops on every end-of-generation token (eos, Llama-3's
``<|eot_id|>``) and on the format's stop strings. A generation streams text, can be cancelled
between tokens, and reports prefill and decode speed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .decoder import BeamJob, Decoder, Job, SampleJob, Sampling, SeqStats, load_model
from .errors import Cancelled, ContextOverflowError, ModelError
from .gguf_file import GGUFInfo, inspect_gguf
from .prompts import FormatChoice, Message, PromptFormat, get_format, select_format

if TYPE_CHECKING:
    from .batch import BatchEngine

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
    parallel: int | None = None  # live sequences of batch decoding; None: chosen (batch.py)


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
    beam: int = 1  # > 1: beam search (no sampling); the text comes in one piece at the end

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if self.beam < 1:
            raise ValueError("beam must be at least 1")


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
        self._lock = threading.Lock()  # one Engine.chat/complete generation at a time
        self.step_lock = threading.RLock()  # one decoder step at a time (engine and batch)
        self._threads = self.config.threads or physical_cores()
        self._model = self._load()
        self._stop_ids = self._end_of_generation_ids()
        self._decoder: Decoder | None = None
        self._decoder = self._make_decoder(cells=self._requested_context(), max_seqs=4)
        self._batch: BatchEngine | None = None  # the one open batch engine (batch.py)

    # -- loading -------------------------------------------------------------------------------

    def _load(self):  # -> llama_cpp._internals.LlamaModel
        try:
            with _quiet_stderr():
                return load_model(
                    self.config.model_path,
                    gpu_layers=self.config.gpu_layers,
                    use_mmap=self.config.use_mmap,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp could not load {self.config.model_path}: {exc}") from None

    def _make_decoder(self, *, cells: int, max_seqs: int, unified: bool = True) -> Decoder:
        n_ctx = self._requested_context()
        n_batch = min(self.config.batch_size, max(n_ctx, 64))
        try:
            with _quiet_stderr():
                return Decoder(
                    self._model,
                    n_ctx_seq=n_ctx,
                    cells=max(cells, n_ctx),
                    max_seqs=max_seqs,
                    threads=self._threads,
                    n_batch=n_batch,
                    n_ubatch=n_batch,
                    stop_ids=self._stop_ids,
                    unified=unified,
                )
        except MemoryError as exc:
            raise ModelError(str(exc)) from None

    def reserve(self, *, cells: int, max_seqs: int, unified: bool = True) -> Decoder:
        """A decoder with at least ``cells`` KV cells for ``max_seqs`` sequences, in one shared
        pool (``unified``) or a stream per sequence (remade only when the current one is
        smaller or of the other kind; the engine must be idle then)."""
        with self.step_lock:
            current = self._decoder
            assert current is not None
            if (
                current.cells >= cells
                and current.max_seqs >= max_seqs
                and current.unified == unified
            ):
                return current
            if not current.idle:
                raise RuntimeError("the decoder is busy; it cannot grow now")
            with _quiet_stderr():
                current.close()
            self._decoder = None
            self._decoder = self._make_decoder(
                cells=cells if unified != current.unified else max(cells, current.cells),
                max_seqs=max_seqs
                if unified != current.unified
                else max(max_seqs, current.max_seqs),
                unified=unified,
            )
            return self._decoder

    def _requested_context(self) -> int:
        trained = self.info.context_length or 2048
        return min(self.config.context, trained) if self.config.context else trained

    def _end_of_generation_ids(self) -> frozenset[int]:
        import llama_cpp

        vocab = self._model.vocab
        ids = {self._model.token_eos()}
        eot = llama_cpp.llama_vocab_eot(vocab)
        if eot >= 0:
            ids.add(eot)
        for text in ("<|eot_id|>", "<|end_of_text|>", "</s>"):
            tokens = self._model.tokenize(text.encode(), add_bos=False, special=True)
            if len(tokens) == 1 and llama_cpp.llama_vocab_is_eog(vocab, tokens[0]):
                ids.add(tokens[0])
        return frozenset(i for i in ids if i >= 0)

    # -- facts -----------------------------------------------------------------------------------

    @property
    def prompt_format(self) -> PromptFormat:
        return self.format_choice.format

    @property
    def n_ctx(self) -> int:
        """Usable context per sequence: the model's own length or the user's cap."""
        return self._requested_context()

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def decoder(self) -> Decoder:
        """The native multi-sequence decode loop (shared by chat, translate and batches)."""
        assert self._decoder is not None, "the engine is closed"
        return self._decoder

    @property
    def batch_engine(self) -> BatchEngine | None:
        """The open :class:`~bayling_local.batch.BatchEngine` on this engine, if any: there is
        at most one (it owns the decoder's layout), so other callers share it."""
        return self._batch

    def _attach_batch(self, batch: BatchEngine) -> None:
        with self.step_lock:
            owner = self._batch
            if owner is not None and owner is not batch:
                raise RuntimeError(
                    f"this engine already has a batch engine (parallel {owner.parallel}, "
                    f"beam {owner.beam}); share it (Translator(engine, batch=...)) or close "
                    "it first"
                )
            self._batch = batch

    def _detach_batch(self, batch: BatchEngine) -> None:
        with self.step_lock:
            if self._batch is batch:
                self._batch = None

    @property
    def n_vocab(self) -> int:
        return self.decoder.n_vocab

    def kv_bytes_per_cell(self) -> int:
        """Bytes of F16 KV cache one token of one sequence costs."""
        return kv_bytes_per_cell(self.info)

    @property
    def model_name(self) -> str:
        return self.info.name

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return self._stop_ids

    def tokenize(self, text: str, *, add_bos: bool = True) -> list[int]:
        """Token ids as the model will see them (special tokens such as ``</s>`` recognised)."""
        return self._model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._model.detokenize(list(tokens)).decode("utf-8", errors="replace")

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

    def _stream(
        self,
        tokens: list[int],
        sampling: SamplingConfig,
        stops: Sequence[str],
        stats: GenerationStats,
        cancel: threading.Event,
    ) -> Iterator[str]:
        """Drive the shared decoder for one sequence, one token per request of the consumer."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("the engine is already generating")
        room = self.n_ctx - len(tokens)
        limit = min(sampling.max_tokens, room)
        pieces: list[str] = []
        job: Job
        if sampling.beam > 1:
            job = BeamJob(tokens, limit, sampling.beam, 1, stops)
            job.pull = True
            job.wanted = False
        else:
            job = SampleJob(
                tokens, limit, to_native(sampling), stops, pull=True, on_text=pieces.append
            )
            job.limit_reason = "length" if limit == sampling.max_tokens else "context"
        decoder = self.decoder
        try:
            self._admit(decoder, job)
            while not job.finished:
                if cancel.is_set():
                    with self.step_lock:
                        decoder.cancel(job)
                    break
                job.wanted = True
                while job.wanted and not job.finished:
                    with self.step_lock:
                        if job.wanted and not job.finished:
                            decoder.step()
                _copy_stats(job.stats, stats)
                if pieces:
                    text = "".join(pieces)
                    pieces.clear()
                    yield text
            _copy_stats(job.stats, stats)
            if isinstance(job, BeamJob) and job.results and not cancel.is_set():
                pieces.append(beam_text(decoder, job, stops))
                if job.stats.finish_reason == "stop" and job.step_no >= job.max_new:
                    stats.finish_reason = "length" if limit == sampling.max_tokens else "context"
            if pieces:
                yield "".join(pieces)
        except KeyboardInterrupt:
            with self.step_lock:
                decoder.cancel(job)
            _copy_stats(job.stats, stats)
            raise Cancelled("interrupted") from None
        finally:
            if not job.finished:
                with self.step_lock:
                    decoder.cancel(job)
                _copy_stats(job.stats, stats)
            self._lock.release()

    def _admit(self, decoder: Decoder, job: Job) -> None:
        """Start ``job`` as soon as the decoder has room (a batch may hold it for a while)."""
        while True:
            with self.step_lock:
                if decoder.fits(job):
                    decoder.admit(job)
                    return
                if decoder.idle:
                    raise ContextOverflowError("the request does not fit in the KV cache")
                decoder.step()

    def close(self) -> None:
        """Free the model's memory now rather than at garbage collection."""
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            with self.step_lock, contextlib.suppress(Exception), _quiet_stderr():
                decoder.close()
        model, self._model = self._model, None
        if model is not None:
            with contextlib.suppress(Exception):
                model.close()

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


def to_native(sampling: SamplingConfig) -> Sampling:
    """The decoder's sampler-chain settings for ``sampling``."""
    return Sampling(
        temperature=sampling.temperature,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        min_p=sampling.min_p,
        repeat_penalty=sampling.repeat_penalty,
        seed=sampling.seed,
    )


def beam_text(decoder: Decoder, job: BeamJob, stops: Sequence[str], index: int = 0) -> str:
    """The text of a finished beam search's ``index``-th hypothesis, cut at a stop string."""
    text = decoder.detokenize(job.results[index].tokens)
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return text[: min(cuts)] if cuts else text


def _copy_stats(source: SeqStats, target: GenerationStats) -> None:
    target.prompt_tokens = source.prompt_tokens
    target.cached_tokens = source.cached_tokens
    target.generated_tokens = source.generated_tokens
    target.prefill_seconds = source.prefill_seconds
    target.decode_seconds = source.decode_seconds
    target.finish_reason = source.finish_reason


def kv_bytes_per_cell(info: GGUFInfo) -> int:
    """F16 K and V for every layer: 2 tensors x layers x (kv heads x head size) x 2 bytes."""
    arch = info.architecture or "llama"

    def meta(key: str, default: int) -> int:
        value = info.metadata.get(f"{arch}.{key}")
        return int(value) if isinstance(value, int) and value > 0 else default

    heads = meta("attention.head_count", 32)
    kv_heads = meta("attention.head_count_kv", heads)
    head_dim = meta("attention.key_length", meta("embedding_length", 4096) // heads)
    return 2 * meta("block_count", 32) * kv_heads * head_dim * 2


def load_engine(config: EngineConfig) -> Engine:
    """Load a model; every failure is a one-line :class:`ModelError`."""
    path = Path(config.model_path).expanduser()
    return Engine(EngineConfig(**{**config.__dict__, "model_path": path}))
