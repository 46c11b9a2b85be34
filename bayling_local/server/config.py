"""What ``bayling-local serve`` is told: address, limits, keys and origins, checked once."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..errors import UsageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# 1 MiB holds a long document's worth of JSON; /translate_file uploads get the larger cap.
DEFAULT_MAX_BODY = 1 << 20
DEFAULT_MAX_FILE = 8 << 20
# LibreTranslate's ``q`` may be a list; more than this in one request is a batch job, not a call.
DEFAULT_MAX_SEGMENTS = 256
DEFAULT_MAX_CHARS = 100_000


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``localhost`` or a loopback address)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it could resolve to anything, so it is not loopback


@dataclass(frozen=True)
class ServerConfig:
    """Limits and safety settings of one server. ``queue`` counts requests waiting for a slot."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    parallel: int = 4  # requests decoded together
    queue: int = 64  # requests admitted beyond ``parallel`` before new ones get 503
    beam: int = 1  # beams per translation: LibreTranslate's ``alternatives`` go up to beam - 1
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body: int = DEFAULT_MAX_BODY
    max_file: int = DEFAULT_MAX_FILE
    max_tokens: int | None = None  # cap on generated tokens per request; None: the context
    max_segments: int = DEFAULT_MAX_SEGMENTS
    max_chars: int = DEFAULT_MAX_CHARS
    grace: float = 30.0  # seconds in-flight requests get to finish on shutdown
    model_id: str = "bayling"  # the name /v1/models lists and requests use
    model_aliases: tuple[str, ...] = field(default=())
    glossary: str | None = None  # named glossary used by /translate (documents helper's store)
    memory: bool = True  # translation memory consulted and filled by /translate

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise UsageError("--parallel must be at least 1")
        if self.beam < 1:
            raise UsageError("--beam must be at least 1")
        if self.queue < 0:
            raise UsageError("--queue must be 0 or more")
        if not 0 <= self.port < 65536:
            raise UsageError(f"--port must be between 0 (any free port) and 65535, not {self.port}")
        if self.api_key is not None and not self.api_key.strip():
            raise UsageError("--api-key must not be empty")
        if not is_loopback(self.host) and not self.api_key:
            raise UsageError(
                f"refusing to listen on {self.host} without --api-key: anyone who can reach it "
                "could use the model; pass --api-key KEY (or BAYLING_LOCAL_API_KEY) or bind "
                "127.0.0.1"
            )
        for origin in self.cors_origins:
            if origin != "*" and "://" not in origin:
                raise UsageError(
                    f"--cors-origin {origin!r} is not an origin such as https://example.com"
                )

    @property
    def capacity(self) -> int:
        """Requests admitted at once (decoding plus waiting)."""
        return self.parallel + self.queue
