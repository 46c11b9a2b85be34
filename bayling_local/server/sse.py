"""Server-Sent Events that notice a departed client and always clean up.

Starlette's ``StreamingResponse`` finds out that a client left only when the next write fails,
and a generator that never started never runs its ``finally``. This response watches the
connection itself while it streams, and calls ``on_close`` exactly once however it ends
(finished, client gone, server cancelling at shutdown), so the request's slot and admission
place are always given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .backend import wait_for_disconnect


def sse_event(data: Any) -> bytes:
    """One ``data:`` event; dicts are sent as compact JSON."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


class EventStream(StreamingResponse):
    """``text/event-stream`` from an async iterator of ready-made events."""

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[bytes],
        *,
        on_disconnect: Callable[[], None],
        on_close: Callable[[], None],
    ) -> None:
        super().__init__(
            events,
            media_type=self.media_type,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.events = events
        self.on_disconnect = on_disconnect
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            await wait_for_disconnect(receive)
            gone.set()
            self.on_disconnect()

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for event in self.events:
                if gone.is_set():
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write (uvicorn's ClientDisconnected)
            self.on_disconnect()
        except asyncio.CancelledError:
            self.on_disconnect()
            raise
        finally:
            watcher.cancel()
            with contextlib.suppress(Exception):
                await self.events.aclose()  # type: ignore[attr-defined]
            self.on_close()
