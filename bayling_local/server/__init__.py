"""``bayling-local serve``: BayLing behind the OpenAI and LibreTranslate HTTP APIs.

One :class:`~bayling_local.server.backend.Backend` (a loaded engine and its batch engine) serves
every request, so concurrent requests are decoded together. See docs/SERVING.md.
"""

from __future__ import annotations

from .config import ServerConfig, is_loopback

__all__ = ["ServerConfig", "is_loopback"]
