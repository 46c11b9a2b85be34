"""Many requests at once on one loaded model: a request queue and a decode scheduler.

Callers submit :class:`DecodeRequest` objects from any thread and get a :class:`RequestHandle`
back: iterate it for streamed text, ``cancel()`` it, or wait for its :class:`DecodeResult`.
A single scheduler thread owns the model and decodes the live requests.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .decoder import BeamJob, Decoder, Job, SampleJob
from .engine import (
    GREEDY,
    Engine,
    FinishReason,
    GenerationStats,
    SamplingConfig,
    _copy_stats,
    to_native,
)
from .errors import BaylingError, Cancelled, ContextOverflowError, UsageError
from .prompts import Message


@dataclass(frozen=True)
class DecodeRequest:
    """One prompt to continue."""

    prompt: str  # fully rendered prompt text (engine.render(messages))
    sampling: SamplingConfig = GREEDY
    stops: tuple[str, ...] = ()  # stop strings; raw requests give their own
    beam: int = 1  # 1: greedy/sampling; N > 1: beam search (no sampling)
    n_best: int = 1  # how many results to return (<= beam)
    required: tuple[str, ...] = ()  # phrases that must appear (lexically constrained beams)

    def __post_init__(self) -> None:
        if self.beam < 1:
            raise ValueError("beam must be at least 1")
        if not 1 <= self.n_best <= self.beam:
            raise ValueError("n_best must be between 1 and beam")


@dataclass
class DecodeResult:
    """A finished request."""

    text: str
    alternatives: list[tuple[str, float]]  # n-best including the best first: (text, score)
    finish_reason: FinishReason
    stats: GenerationStats


_END = object()


class RequestHandle:
    """A submitted request: stream its text, cancel it, or wait for its result."""

    def __init__(self, request: DecodeRequest) -> None:
        self.request = request
        self.stats = GenerationStats()
        self._pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._done = threading.Event()
        self._cancel = threading.Event()
        self._result: DecodeResult | None = None
        self._error: BaseException | None = None

    # -- consumer side ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[str]:
        while True:
            item = self._pieces.get()
            if item is _END:
                self._pieces.put(_END)  # a second iteration ends at once
                if self._error is not None:
                    raise self._error
                return
            yield item  # type: ignore[misc]

    def cancel(self) -> None:
        """Stop this request (any thread); its slot is freed at the scheduler's next step."""
        self._cancel.set()
        job = getattr(self, "_job", None)
        if job is not None:
            job.cancelled = True
        wake = getattr(self, "_wake", None)
        if wake is not None:
            wake()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> DecodeResult:
        """Block until the request is finished (raises its error, if it failed)."""
        if not self._done.wait(timeout):
            raise TimeoutError("the request is still running")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    # -- scheduler side --------------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        if text:
            self._pieces.put(text)

    def _finish(self, result: DecodeResult) -> None:
        if self._done.is_set():
            return
        self._result = result
        self._pieces.put(_END)
        self._done.set()
        self._notify()

    def _fail(self, error: BaseException) -> None:
        if self._done.is_set():
            return
        self._error = error
        self._pieces.put(_END)
        self._done.set()
        self._notify()

    def _notify(self) -> None:
        callback = getattr(self, "_on_done", None)
        if callback is not None:
            callback()


MAX_PARALLEL = 64  # live requests; llama.cpp's sequence ids are the hard limit
MAX_BEAM = 16
DEFAULT_PARALLEL_CAP = 16  # batched decode gains little beyond this on CPUs (docs/ENGINE.md)


@dataclass(frozen=True)
class KVPlan:
    """The KV cache a batch engine needs: every live sequence may grow to the full context."""

    parallel: int
    beam: int
    n_ctx: int
    cells: int
    bytes: int
    budget_bytes: int

    @property
    def fits(self) -> bool:
        return self.bytes <= self.budget_bytes

    def describe(self) -> str:
        return (
            f"{self.parallel} x {self.beam} sequence(s) of {self.n_ctx} tokens: "
            f"KV cache {_gib(self.bytes)} of {_gib(self.budget_bytes)} allowed"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


KV_BUDGET_ENV = "BAYLING_LOCAL_KV_BUDGET_MB"


def kv_budget_bytes() -> int:
    """Half the memory available now (the rest is the model's, the OS's and other programs'),
    or ``BAYLING_LOCAL_KV_BUDGET_MB`` when set."""
    import os

    limit = os.environ.get(KV_BUDGET_ENV)
    if limit:
        try:
            return int(float(limit) * 2**20)
        except ValueError:
            raise UsageError(f"{KV_BUDGET_ENV} must be a number of MiB, not {limit!r}") from None
    try:
        import psutil

        return int(psutil.virtual_memory().available * 0.5)
    except Exception:  # pragma: no cover - psutil is a dependency
        return 4 * 2**30


def plan_kv(engine: Engine, parallel: int, beam: int = 1, budget: int | None = None) -> KVPlan:
    """KV cells and bytes for ``parallel`` requests of ``beam`` beams on ``engine``'s context."""
    n_ctx = engine.n_ctx
    cells = parallel * beam * n_ctx + n_ctx  # + the shared-prefix sequence
    return KVPlan(
        parallel,
        beam,
        n_ctx,
        cells,
        cells * engine.kv_bytes_per_cell(),
        kv_budget_bytes() if budget is None else budget,
    )


def default_parallel(engine: Engine, beam: int = 1, budget: int | None = None) -> int:
    """The largest power of two up to 16 whose KV cache fits the budget (at least 1)."""
    budget = kv_budget_bytes() if budget is None else budget
    best = 1
    n = 2
    while n <= DEFAULT_PARALLEL_CAP:
        if plan_kv(engine, n, beam, budget).fits:
            best = n
        n *= 2
    return best


def check_parallel(engine: Engine, parallel: int, beam: int = 1) -> KVPlan:
    """Validate ``parallel`` x ``beam`` (range and memory); raise UsageError saying what fits."""
    if parallel < 1 or parallel > MAX_PARALLEL:
        raise UsageError(f"--parallel must be between 1 and {MAX_PARALLEL}, not {parallel}")
    if beam < 1 or beam > MAX_BEAM:
        raise UsageError(f"--beam must be between 1 and {MAX_BEAM}, not {beam}")
    if parallel * beam + 1 > _max_sequences():
        raise UsageError(
            f"--parallel {parallel} x --beam {beam} needs {parallel * beam} sequences; "
            f"llama.cpp allows {_max_sequences() - 1}"
        )
    plan = plan_kv(engine, parallel, beam)
    if not plan.fits:
        fitting = max(
            (n for n in range(1, parallel) if plan_kv(engine, n, beam, plan.budget_bytes).fits),
            default=0,
        )
        hint = (
            f"--parallel {fitting} fits"
            if fitting
            else "not even one sequence fits; use a smaller --context"
        )
        raise UsageError(
            f"--parallel {parallel} x --beam {beam} needs {_gib(plan.bytes)} of KV cache but "
            f"only {_gib(plan.budget_bytes)} is free to use; {hint} (or lower --context)"
        )
    return plan


def _max_sequences() -> int:
    try:
        import llama_cpp

        return int(llama_cpp.llama_max_parallel_sequences())
    except Exception:  # pragma: no cover
        return 64


class BatchEngine:
    """Decodes many requests at once on one :class:`Engine`.

    Up to ``parallel`` requests are live; the rest wait in a queue and join as soon as a live
    one finishes and frees its cache cells. A scheduler thread steps the engine's shared
    decoder (see :mod:`bayling_local.decoder`): every step decodes one token of each live
    sequence and prefills a chunk of the prompts that are starting.
    """

    def __init__(self, engine: Engine, parallel: int | None = None, *, beam: int = 1) -> None:
        self.engine = engine
        if parallel is None:
            parallel = engine.config.parallel or default_parallel(engine, beam)
        self._parallel = parallel
        if self._parallel < 1:
            raise ValueError("parallel must be at least 1")
        self._beam = max(1, beam)
        self._closed = False
        # One per engine: two schedulers would each resize and step the other's cache.
        engine._attach_batch(self)
        plan = plan_kv(engine, self._parallel, self._beam, budget=2**62)
        # Without beams every sequence gets its own stream of cells, so a row attends only to
        # its own sequence (a shared pool makes attention grow with the square of the batch);
        # beams fork every step, which a shared pool does by tagging cells instead of copying.
        try:
            engine.reserve(
                cells=plan.cells,
                max_seqs=self._parallel * max(self._beam, 4) + 1
                if self._beam > 1
                else self._parallel,
                unified=self._beam > 1,
            )
        except BaseException:
            engine._detach_batch(self)
            raise
        self._waiting: deque[tuple[RequestHandle, Job]] = deque()
        self._live: dict[Job, RequestHandle] = {}
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="bayling-batch", daemon=True)
        self._thread.start()

    @property
    def parallel(self) -> int:
        """Requests decoded at once (the rest wait in the queue)."""
        return self._parallel

    @property
    def beam(self) -> int:
        """Beams per request the cache was laid out for (wider requests are narrowed to the
        decoder's sequences and fork by copying cache streams)."""
        return self._beam

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def decoder(self) -> Decoder:
        """The engine's current decoder (another batch engine may have grown it since)."""
        return self.engine.decoder

    def submit(self, request: DecodeRequest) -> RequestHandle:
        """Queue ``request`` (thread-safe); it starts when a slot is free."""
        return self.submit_many([request])[0]

    def submit_many(self, requests: Sequence[DecodeRequest]) -> list[RequestHandle]:
        """Queue several requests at once: the scheduler sees them together, so the batches
        (and with them every floating-point sum) are the same from run to run."""
        if self._closed:
            raise RuntimeError("the batch engine is closed")
        handles: list[RequestHandle] = []
        ready: list[tuple[RequestHandle, Job]] = []
        for request in requests:
            handle = RequestHandle(request)
            handle._wake = self._wake  # type: ignore[attr-defined]
            handles.append(handle)
            try:
                ready.append((handle, self._job_for(request, handle)))
            except BaylingError as exc:
                handle._fail(exc)
        with self._cond:
            self._waiting.extend(ready)
            self._cond.notify()
        return handles

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _job_for(self, request: DecodeRequest, handle: RequestHandle) -> Job:
        engine = self.engine
        tokens = engine.tokenize(request.prompt)
        if len(tokens) >= engine.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {len(tokens)} tokens but the context holds {engine.n_ctx}"
            )
        room = engine.n_ctx - len(tokens)
        limit = min(request.sampling.max_tokens, room)
        reason: FinishReason = "length" if limit == request.sampling.max_tokens else "context"
        stops = tuple(dict.fromkeys((*request.stops, *request.sampling.stop)))
        if request.beam > 1 or request.required:
            constraints = [
                engine.tokenize(phrase, add_bos=False) for phrase in request.required if phrase
            ]
            width = request.beam
            if constraints:
                width = max(width, min(MAX_BEAM, len(constraints) + 2))
                # forcing needs room for every constraint token
                limit = max(limit, min(room, sum(len(c) for c in constraints) + 1))
            # never more beams than the decoder has sequences (a request would wait forever)
            width = max(1, min(width, self.decoder.max_seqs))
            beams = BeamJob(tokens, limit, width, min(request.n_best, width), stops, constraints)
            beams.required_text = tuple(p for p in request.required if p)
            job: Job = beams
        else:
            job = SampleJob(tokens, limit, to_native(request.sampling), stops)
            job.on_text = handle._emit
            job.limit_reason = reason
        job.on_finish = lambda done: self._finished(done, handle)
        handle._job = job  # type: ignore[attr-defined]
        return job

    def _finished(self, job: Job, handle: RequestHandle) -> None:
        stats = GenerationStats()
        _copy_stats(job.stats, stats)
        if isinstance(job, BeamJob):
            alternatives = self._beam_texts(job)
            text = alternatives[0][0] if alternatives else ""
            handle._emit(text)
            finish: FinishReason = stats.finish_reason or "stop"
            if finish == "stop" and job.results and job.step_no >= job.max_new:
                finish = "length"
        else:
            text = job.stream.text  # type: ignore[attr-defined]
            alternatives = [(text, 0.0)]
            finish = stats.finish_reason or "stop"
        stats.finish_reason = finish
        handle.stats = stats
        handle._finish(DecodeResult(text, alternatives, finish, stats))

    def _beam_texts(self, job: BeamJob) -> list[tuple[str, float]]:
        seen: dict[str, float] = {}
        required = job_required(job)
        for hyp in job.results:
            text = _cut_at_stops(self.decoder.detokenize(hyp.tokens), job.stops, required)
            if text not in seen:
                seen[text] = hyp.score
        return list(seen.items())

    def submit_chat(
        self,
        messages: Sequence[Message],
        sampling: SamplingConfig = GREEDY,
        *,
        stops: Sequence[str] = (),
        **kw: Any,
    ) -> RequestHandle:
        """Render a conversation and queue it with the format's stop strings."""
        stops = tuple(
            dict.fromkeys((*self.engine.prompt_format.stop_strings, *sampling.stop, *stops))
        )
        request = DecodeRequest(self.engine.render(messages), sampling, stops, **kw)
        return self.submit(request)

    def run(
        self,
        requests: Sequence[DecodeRequest],
        on_done: Callable[[int, DecodeResult], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[DecodeResult]:
        """Decode ``requests`` and return their results in input order.

        ``on_done(index, result)`` is called (in this thread) as each one finishes; setting
        ``cancel`` cancels every request not yet finished (they come back "cancelled").
        """
        finished: queue.SimpleQueue[int] = queue.SimpleQueue()
        handles = self.submit_many(requests)
        for index, handle in enumerate(handles):
            handle._on_done = lambda i=index: finished.put(i)  # type: ignore[attr-defined]
            if handle.done():
                finished.put(index)
        results: list[DecodeResult | None] = [None] * len(handles)
        left = len(handles)
        try:
            while left:
                try:
                    index = finished.get(timeout=0.05)
                except queue.Empty:
                    if cancel is not None and cancel.is_set():
                        for handle in handles:
                            handle.cancel()
                    continue
                if results[index] is not None:
                    continue
                results[index] = handles[index].result()
                left -= 1
                if on_done is not None:
                    on_done(index, results[index])  # type: ignore[arg-type]
        except BaseException:
            for handle in handles:
                handle.cancel()
            raise
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Cancel what is queued or running and stop the scheduler."""
        if self._closed:
            return
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        self.engine._detach_batch(self)

    def __enter__(self) -> BatchEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scheduler -------------------------------------------------------------------------------

    def _loop(self) -> None:
        lock = self.engine.step_lock
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self._live:
                    self._cond.wait()
                if self._closed:
                    self._shutdown()
                    return
                admitted: list[tuple[RequestHandle, Job]] = []
                for handle, job in [w for w in self._waiting if w[0].cancelled]:
                    self._waiting.remove((handle, job))
                    job.cancelled = True
                    job.finish("cancelled")
                with lock:
                    decoder = self.decoder  # read under the lock: reserve() may replace it
                    while self._waiting and len(self._live) < self._parallel:
                        handle, job = self._waiting[0]
                        if handle.cancelled:
                            self._waiting.popleft()
                            job.cancelled = True
                            job.finish("cancelled")
                            continue
                        if not decoder.fits(job):
                            break
                        self._waiting.popleft()
                        decoder.admit(job)
                        self._live[job] = handle
                        admitted.append((handle, job))
            try:
                with lock:
                    decoder = self.decoder
                    for job, handle in list(self._live.items()):
                        if handle.cancelled:
                            job.cancelled = True
                    progressed = decoder.step() if decoder.jobs else False
                    for job in [j for j in self._live if j.finished]:
                        del self._live[job]
                if not progressed and not admitted:
                    with self._cond:  # waiting for room held by another caller's sequence
                        self._cond.wait(0.005)
            except BaseException as exc:  # delivered to every caller, never lost here
                with lock:
                    for job, handle in list(self._live.items()):
                        self.decoder.cancel(job)
                        handle._fail(exc)
                    self._live.clear()

    def _shutdown(self) -> None:
        with self.engine.step_lock:
            for job, handle in list(self._live.items()):
                self.decoder.cancel(job)
                handle._fail(Cancelled("the batch engine was closed"))
            self._live.clear()
            while self._waiting:
                handle, _job = self._waiting.popleft()
                handle._fail(Cancelled("the batch engine was closed"))


def job_required(job: BeamJob) -> tuple[str, ...]:
    return job.required_text


def _cut_at_stops(text: str, stops: Sequence[str], required: Sequence[str] = ()) -> str:
    """Text up to the first stop string that does not cut off a required phrase."""
    cuts = sorted(i for i in (text.find(s) for s in stops if s) if i >= 0)
    for cut in cuts:
        if all(phrase in text[:cut] for phrase in required):
            return text[:cut]
    return text
