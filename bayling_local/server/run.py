"""Running the app under uvicorn: bind first (a taken port is one clear line, not a log dump),
serve, and drain on SIGTERM or Ctrl-C.

On the first signal uvicorn stops accepting connections and waits up to ``grace`` seconds for
the requests in flight to finish; then it cancels what is left, and the app's shutdown cancels
any decode still running and stops the batch engine. A second Ctrl-C ends at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType

from ..errors import UsageError
from .app import create_app
from .backend import Backend


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    backend: Backend,
    *,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
    access_log: bool = False,
) -> None:
    """Serve until a signal; returns after the drain (the backend is closed by then)."""
    import uvicorn

    config = backend.config
    sock = bind(config.host, config.port)
    app = create_app(backend)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:  # a second Ctrl-C: stop now, quietly
                logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
                backend.cancel_all()
            super().handle_exit(sig, frame)

    server = Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=access_log,
            timeout_graceful_shutdown=max(1, math.ceil(config.grace)),
            timeout_keep_alive=5,
            lifespan="on",
            server_header=False,
        )
    )

    async def main() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started and on_ready is not None:
            on_ready(url_of(sock))
        watcher = asyncio.ensure_future(cancel_at_end_of_grace())
        try:
            await task
        finally:
            watcher.cancel()

    async def cancel_at_end_of_grace() -> None:
        """Requests still running just before uvicorn's grace period ends are cancelled here,
        so each ends with an answer ("shutting down") instead of being cut off."""
        loop = asyncio.get_running_loop()
        while not server.should_exit:
            await asyncio.sleep(0.05)
        deadline = loop.time() + max(0.0, config.grace - 0.5)
        while not server.force_exit and loop.time() < deadline:
            await asyncio.sleep(0.05)
        backend.cancel_all()

    # uvicorn re-raises the signal it stopped on once it has drained; a no-op SIGTERM handler
    # makes that a normal exit (SIGINT still ends as KeyboardInterrupt: exit code 130).
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        asyncio.run(main())
    finally:
        backend.close()
        sock.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
