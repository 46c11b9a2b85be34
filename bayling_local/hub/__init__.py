"""The Hugging Face hub: :mod:`.transfer` talks HTTP (metadata, resumable checked downloads),
:mod:`.pipeline` turns a model name into an installed GGUF (``models pull``).

``pull`` and the names callers use are re-exported here; the heavy clients
(huggingface-hub, httpx) are imported only when a pull runs.
"""

from __future__ import annotations

from .pipeline import PullResult, PullTarget, checkpoint_files, parse_target, pull
from .transfer import HubConfig, NetworkError, RemoteFile, RemoteRepo

__all__ = [
    "HubConfig",
    "NetworkError",
    "PullResult",
    "PullTarget",
    "RemoteFile",
    "RemoteRepo",
    "checkpoint_files",
    "parse_target",
    "pull",
]
