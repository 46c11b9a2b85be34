"""The model behind the server: one :class:`BatchEngine`, a bounded admission count, and the
bridge from its threads to the event loop.

Every endpoint that generates goes through :meth:`Backend.admit` (a request that finds every
slot and queue place taken gets 503 at once instead of waiting until its client times out) and
then submits to the one batch engine, so concurrent requests are decoded together. A client
that goes away cancels its requests, which frees their slots at the scheduler's next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..batch import BatchEngine, DecodeRequest, RequestHandle
from ..engine import Engine, SamplingConfig
from ..translate import Translator
from .config import ServerConfig
from .errors import APIError, busy

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected; its work was cancelled and nobody is left to answer."""


@dataclass
class Counters:
    """What the server has done, for ``GET /health`` and the tests."""

    active: int = 0
    rejected: int = 0
    completed: int = 0
    cancelled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {
                "active": self.active,
                "rejected": self.rejected,
                "completed": self.completed,
                "cancelled": self.cancelled,
            }


class Ticket:
    """An admitted request's place; released exactly once."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._released = False
        self.cancelled = False

    def release(self) -> None:
        with self._counters.lock:
            if self._released:
                return
            self._released = True
            self._counters.active -= 1
            if self.cancelled:
                self._counters.cancelled += 1
            else:
                self._counters.completed += 1


class Backend:
    """The loaded model, its batch engine and the admission count."""

    def __init__(
        self,
        engine: Engine,
        config: ServerConfig,
        *,
        chat_sampling: SamplingConfig | None = None,
        translation_sampling: SamplingConfig | None = None,
        glossaries: dict[str, Any] | None = None,
    ) -> None:
        from ..translate import TRANSLATION_SAMPLING

        self.engine = engine
        self.config = config
        self.batch = BatchEngine(engine, config.parallel, beam=config.beam)
        self.counters = Counters()
        self.created = int(time.time())
        # Chat defaults for fields a request leaves out; translation is greedy (BayLing's setup).
        self.chat_sampling = chat_sampling or SamplingConfig(temperature=0.7, top_p=0.9)
        sampling = translation_sampling or TRANSLATION_SAMPLING
        if config.max_tokens:  # the server's cap holds for translations too
            sampling = replace(sampling, max_tokens=min(sampling.max_tokens, config.max_tokens))
        self.translation_sampling = sampling
        # Glossaries the operator loaded at start-up, by name; requests pick one by name only.
        self.glossaries: dict[str, Any] = dict(glossaries or {})
        self.closing = False
        # What stops each request in flight (a handle's cancel, a translation's event), so the
        # end of the shutdown grace period can cancel them all and each still gets an answer.
        self._cancels: set[Callable[[], None]] = set()
        self._cancels_lock = threading.Lock()

    def glossary(self, name: str | None) -> Any:
        """The named glossary; no name: the one loaded without a name (``default``), if any."""
        if name is None or name == "":
            return self.glossaries.get("default")
        if name not in self.glossaries:
            known = ", ".join(sorted(self.glossaries)) or "none is loaded"
            raise APIError(400, f"glossary: no glossary named {name!r} on this server ({known})")
        return self.glossaries[name]

    # -- admission -------------------------------------------------------------------------------

    def admit(self) -> Ticket:
        """A place for one request, or 503 (with Retry-After) when all are taken."""
        with self.counters.lock:
            if self.closing:
                raise APIError(
                    503,
                    "the server is shutting down",
                    code="shutting_down",
                    headers={"Retry-After": "5"},
                )
            if self.counters.active >= self.config.capacity:
                self.counters.rejected += 1
                raise busy()
            self.counters.active += 1
        return Ticket(self.counters)

    # -- submitting ------------------------------------------------------------------------------

    def submit(self, request: DecodeRequest) -> RequestHandle:
        handle = self.batch.submit(request)
        self.track(handle.cancel)
        return handle

    def forget(self, handle: RequestHandle) -> None:
        self.untrack(handle.cancel)

    def track(self, cancel: Callable[[], None]) -> None:
        with self._cancels_lock:
            self._cancels.add(cancel)

    def untrack(self, cancel: Callable[[], None]) -> None:
        with self._cancels_lock:
            self._cancels.discard(cancel)

    def translator(self, **kwargs: Any) -> Translator:
        kwargs.setdefault("sampling", self.translation_sampling)
        # decodes on the server's batch engine (the server closes it), not one of its own
        return Translator(self.engine, batch=self.batch, **kwargs)

    def cancel_all(self) -> None:
        """Cancel everything in flight (the shutdown grace period is over)."""
        with self._cancels_lock:
            cancels = list(self._cancels)
        for cancel in cancels:
            cancel()

    def close(self) -> None:
        self.closing = True
        self.cancel_all()
        self.batch.close()


# -- from threads to the event loop ------------------------------------------------------------


async def wait_for_disconnect(receive: Callable[[], Any]) -> None:
    """Return when the client has gone (the request body must already be read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def run_in_thread(
    work: Callable[[], T], receive: Callable[[], Any], on_disconnect: Callable[[], None]
) -> T:
    """Run blocking ``work`` in its own thread; if the client leaves first, ``on_disconnect``.

    A thread per request rather than the default pool: the pool's 40 threads would cap how
    many requests could wait on the batch engine at once.
    """
    future: Future[T] = Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to the awaiting coroutine
            future.set_exception(exc)

    threading.Thread(target=target, name="bayling-request", daemon=True).start()
    waiting: asyncio.Future[T] = asyncio.wrap_future(future)
    watcher: asyncio.Future[None] = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        pending: set[asyncio.Future[Any]] = {waiting, watcher}
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:
            on_disconnect()
            with contextlib.suppress(Exception):
                await waiting  # the cancelled work ends at the scheduler's next step
            raise ClientGone
        return waiting.result()
    except asyncio.CancelledError:
        on_disconnect()
        raise
    finally:
        watcher.cancel()


_END = object()


async def stream_pieces(handle: RequestHandle) -> AsyncIterator[str]:
    """The handle's text pieces as they come, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[object] = asyncio.Queue()

    def put(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under us at shutdown
            loop.call_soon_threadsafe(pieces.put_nowait, item)

    def pump() -> None:
        try:
            for piece in handle:
                put(piece)
            put(_END)
        except BaseException as exc:
            put(exc)

    threading.Thread(target=pump, name="bayling-stream", daemon=True).start()
    while True:
        item = await pieces.get()
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item  # type: ignore[misc]
