"""Talking to the Hugging Face hub: repository metadata and resumable, checked downloads.

The file list, sizes and checksums come from the hub's repository metadata (``model_info``
with file metadata: the LFS sha256 of big files, the git blob id of small ones). A download
goes to ``FILE.partial`` and is continued with an HTTP Range request by the next call after an
interruption (Ctrl-C, a dropped connection, a full disk); huggingface-hub itself only resumes
within one process. A file gets its final name only after its checksum matched.

Respected environment: ``HF_ENDPOINT`` (the hub to talk to), ``HF_HUB_OFFLINE`` (no network:
fail at once), ``HF_HOME`` / ``HF_HUB_CACHE`` (files already in the huggingface-hub cache are
reused instead of downloaded; the token is read from there), ``HF_TOKEN``,
``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..atomic import describe_os_error
from ..errors import ModelError, OutputError
from ..progress import Progress, progress
from ..store import free_bytes

Notify = Callable[[str], None]

DEFAULT_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
MAX_RETRIES = 5
_CHUNK = 1 << 20


# --- talking to the hub --------------------------------------------------------------------


@dataclass(frozen=True)
class HubConfig:
    """The hub endpoint and network limits, read from the environment at call time."""

    endpoint: str
    offline: bool
    metadata_timeout: float
    download_timeout: float
    cache_dir: Path

    @classmethod
    def from_env(cls) -> HubConfig:
        from huggingface_hub import constants

        def number(var: str) -> float:
            try:
                return float(os.environ.get(var) or DEFAULT_TIMEOUT_S)
            except ValueError:
                return DEFAULT_TIMEOUT_S

        flag = (
            os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
        ).upper()
        hf_home = os.environ.get("HF_HOME")
        cache = os.environ.get("HF_HUB_CACHE") or (
            os.path.join(hf_home, "hub") if hf_home else constants.HF_HUB_CACHE
        )
        return cls(
            endpoint=(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/"),
            offline=flag in ("1", "ON", "YES", "TRUE") or constants.is_offline_mode(),
            metadata_timeout=number("HF_HUB_ETAG_TIMEOUT"),
            download_timeout=number("HF_HUB_DOWNLOAD_TIMEOUT"),
            cache_dir=Path(os.path.expanduser(os.path.expandvars(cache))),
        )


@dataclass(frozen=True)
class RemoteFile:
    """A file of a hub repository and the checksum the hub publishes for it."""

    name: str
    size: int | None
    sha256: str | None  # LFS files
    git_sha1: str | None  # small files kept in git: the blob id


@dataclass(frozen=True)
class RemoteRepo:
    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]

    def file(self, name: str) -> RemoteFile | None:
        return next((f for f in self.files if f.name == name), None)


def _offline_error(config: HubConfig) -> ModelError:
    return ModelError(
        "cannot pull: offline mode is on (HF_HUB_OFFLINE is set); "
        "models already in the store work without a network"
    )


class NetworkError(ModelError):
    """The hub could not be reached or the connection broke: worth a retry."""


def _unreachable(config: HubConfig, reason: str) -> NetworkError:
    return NetworkError(
        f"cannot reach the Hugging Face hub at {config.endpoint} ({reason}); "
        "check the network or HF_ENDPOINT (models already in the store work offline)"
    )


def _check_resolvable(config: HubConfig) -> None:
    """Fail in seconds when the hub's host name cannot be resolved (a machine with no network
    can otherwise hang in the system resolver well past any HTTP timeout)."""
    from urllib.parse import urlparse

    host = urlparse(config.endpoint).hostname or ""
    if not host or re.fullmatch(r"[\d.]+|\[?[0-9a-fA-F:]+\]?", host) or host == "localhost":
        return
    outcome: list[BaseException | None] = []

    def probe() -> None:
        try:
            socket.getaddrinfo(host, 443)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    if not outcome:
        raise _unreachable(config, f"looking up {host} timed out")
    if outcome[0] is not None:
        raise _unreachable(config, f"cannot resolve {host}")


@contextlib.contextmanager
def _hub_errors(config: HubConfig, what: str):
    """Turn huggingface-hub and network exceptions into one-line user errors."""
    import httpx2
    from huggingface_hub import errors as hf_errors

    try:
        yield
    except hf_errors.OfflineModeIsEnabled:
        raise _offline_error(config) from None
    except hf_errors.GatedRepoError:
        raise ModelError(
            f"{what} is gated: accept its terms on its page at {config.endpoint}, "
            "then log in with `hf auth login` (or set HF_TOKEN)"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise ModelError(
            f"{what} was not found on the hub at {config.endpoint} "
            "(if it is private, log in with `hf auth login` or set HF_TOKEN)"
        ) from None
    except hf_errors.RevisionNotFoundError:
        raise ModelError(f"{what}: that revision does not exist on the hub") from None
    except hf_errors.EntryNotFoundError:
        raise ModelError(f"{what} was not found on the hub") from None
    except hf_errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status == 404:
            raise ModelError(f"{what} was not found on the hub at {config.endpoint}") from None
        if status in (401, 403):
            raise ModelError(
                f"the hub refused access to {what} (HTTP {status}); "
                "log in with `hf auth login` or set HF_TOKEN"
            ) from None
        error = NetworkError if status >= 500 or status in (408, 429) else ModelError
        raise error(f"the hub answered HTTP {status or '?'} for {what}; try again later") from None
    except httpx2.ConnectError as exc:
        raise _unreachable(config, _short_reason(exc)) from None
    except httpx2.TimeoutException:
        raise _unreachable(config, "timed out") from None
    except httpx2.TransportError as exc:
        raise _unreachable(config, _short_reason(exc)) from None


def _short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text[:120]


def fetch_repo(repo_id: str, config: HubConfig, *, revision: str = "main") -> RemoteRepo:
    """The repository's current commit and its files with sizes and checksums."""
    import httpx2
    from huggingface_hub import HfApi

    if config.offline:
        raise _offline_error(config)
    _check_resolvable(config)
    timeout = httpx2.Timeout(config.metadata_timeout, connect=CONNECT_TIMEOUT_S)
    with _hub_errors(config, repo_id):
        info = HfApi(endpoint=config.endpoint).model_info(
            repo_id,
            revision=revision,
            files_metadata=True,
            timeout=timeout,  # type: ignore[arg-type]
        )
    files = tuple(
        RemoteFile(
            name=s.rfilename,
            size=s.lfs.size if s.lfs is not None else s.size,
            sha256=s.lfs.sha256 if s.lfs is not None else None,
            git_sha1=s.blob_id if s.lfs is None else None,
        )
        for s in (info.siblings or [])
    )
    if not info.sha:
        raise ModelError(f"the hub did not say which commit {repo_id} is at; try again later")
    return RemoteRepo(repo_id=repo_id, commit=info.sha, files=files)


# --- downloading -----------------------------------------------------------------------------


def _write_chunk(handle: BinaryIO, chunk: bytes) -> None:
    """One write of downloaded bytes (a seam tests use to simulate a full disk)."""
    handle.write(chunk)


class _Checksum:
    """sha256 for LFS files, git's blob sha1 for small ones; None when the hub gave neither."""

    def __init__(self, remote: RemoteFile) -> None:
        self.remote = remote
        self.digest: Any
        if remote.sha256:
            self.digest = hashlib.sha256()
        elif remote.git_sha1 and remote.size is not None:
            self.digest = hashlib.sha1(f"blob {remote.size}\0".encode())
        else:
            self.digest = None

    @property
    def expected(self) -> str | None:
        return self.remote.sha256 or (self.remote.git_sha1 if self.digest is not None else None)

    def update(self, data: bytes) -> None:
        if self.digest is not None:
            self.digest.update(data)

    def matches(self) -> bool:
        return self.digest is None or self.digest.hexdigest() == (self.expected or "").lower()


def _hash_existing(path: Path, check: _Checksum) -> int:
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            check.update(chunk)
            size += len(chunk)
    return size


def resolve_url(config: HubConfig, repo: RemoteRepo, filename: str) -> str:
    """The hub's download URL of a file at the pinned commit (what ``hf_hub_url`` builds)."""
    from urllib.parse import quote

    return (
        f"{config.endpoint}/{repo.repo_id}/resolve/{quote(repo.commit, safe='')}/{quote(filename)}"
    )


def download_file(
    repo: RemoteRepo, remote: RemoteFile, dest: Path, config: HubConfig, bar: Progress
) -> str | None:
    """Download (or continue downloading) one file to ``dest``; returns its verified sha256.

    Bytes go to ``dest.partial``; ``dest`` appears only once the checksum matched. Transient
    network errors are retried with a Range request from where the data stopped.
    """
    import httpx2
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    partial = dest.with_name(dest.name + ".partial")
    check = _Checksum(remote)
    have = _hash_existing(partial, check) if partial.exists() else 0
    if remote.size is not None and have > remote.size:
        partial.unlink()
        check, have = _Checksum(remote), 0
    bar.advance(have)
    partial.touch()  # an empty file needs no request, but still gets a name
    url = resolve_url(config, repo, remote.name)
    timeout = httpx2.Timeout(
        config.download_timeout, connect=min(CONNECT_TIMEOUT_S, config.download_timeout)
    )
    failures = 0
    while remote.size is None or have < remote.size:
        if config.offline:
            raise _offline_error(config)
        headers = build_hf_headers()
        headers["Accept-Encoding"] = "identity"
        if have:
            headers["Range"] = f"bytes={have}-"
        before = have
        try:
            with (
                _hub_errors(config, f"{repo.repo_id}/{remote.name}"),
                get_session().stream("GET", url, headers=headers, timeout=timeout) as response,
            ):
                if response.status_code == 416 and have:  # the partial file is stale: start over
                    bar.advance(-have)
                    partial.unlink(missing_ok=True)
                    check, have = _Checksum(remote), 0
                    continue
                if response.status_code >= 400:
                    response.read()
                    hf_raise_for_status(response)
                if have and response.status_code == 200:  # the server ignored the Range
                    bar.advance(-have)
                    partial.unlink(missing_ok=True)
                    check, have = _Checksum(remote), 0
                try:
                    with open(partial, "ab") as out:
                        for chunk in response.iter_bytes():
                            _write_chunk(out, chunk)
                            check.update(chunk)
                            have += len(chunk)
                            bar.advance(len(chunk))
                except OSError as exc:
                    raise OutputError(
                        f"{describe_os_error(exc, partial)}; free some space and run the same pull "
                        "again: it continues where it stopped"
                    ) from None
            if remote.size is None:
                break
            error: ModelError | None = None
        except NetworkError as exc:
            error = exc
        failures = 0 if have > before else failures + 1
        if failures > MAX_RETRIES:
            raise error or ModelError(
                f"the download of {remote.name} keeps stopping; run the same pull again to continue"
            )
        if failures:
            time.sleep(min(2.0, 0.25 * failures))
    if remote.size is not None and have != remote.size:
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"{remote.name} from {repo.repo_id} has the wrong size; run the pull again"
        )
    if not check.matches():
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"{remote.name} from {repo.repo_id} does not match the checksum the hub publishes "
            f"({check.expected}); the download was discarded, run the pull again"
        )
    os.replace(partial, dest)
    return remote.sha256


def _cached_copy(repo: RemoteRepo, remote: RemoteFile, config: HubConfig) -> Path | None:
    """A file huggingface-hub already downloaded for this commit (it verified it then)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        repo.repo_id, remote.name, cache_dir=str(config.cache_dir), revision=repo.commit
    )
    if not isinstance(found, str):
        return None
    path = Path(found)
    if not path.is_file() or (remote.size is not None and path.stat().st_size != remote.size):
        return None
    return path


def fetch_files(
    repo: RemoteRepo,
    files: Iterable[RemoteFile],
    dest_dir: Path,
    config: HubConfig,
    *,
    extra_bytes: int = 0,
    notify: Notify,
) -> dict[str, str | None]:
    """Bring every file into ``dest_dir``: from the huggingface-hub cache where it is there,
    else downloaded. Checks free disk space first. Returns each file's sha256 (if known)."""
    files = list(files)
    dest_dir.mkdir(parents=True, exist_ok=True)
    plan: list[RemoteFile] = []
    digests: dict[str, str | None] = {}
    for remote in files:
        dest = dest_dir / remote.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            digests[remote.name] = remote.sha256
            continue
        cached = _cached_copy(repo, remote, config)
        if cached is not None:
            _link_or_copy(cached, dest)
            digests[remote.name] = remote.sha256
            continue
        plan.append(remote)
    total = sum(f.size or 0 for f in plan)
    partial_bytes = sum(
        (dest_dir / f"{f.name}.partial").stat().st_size
        for f in plan
        if (dest_dir / f"{f.name}.partial").exists()
    )
    need = total - partial_bytes + extra_bytes
    available = free_bytes(dest_dir)
    if need > available:
        raise OutputError(
            f"not enough free disk space in {dest_dir}: this pull needs about {_gb(need)}, "
            f"{_gb(available)} is free"
        )
    if not plan:
        return digests
    if partial_bytes:
        notify(f"resuming the download of {repo.repo_id} ({_gb(partial_bytes)} already here)")
    with progress(f"downloading {repo.repo_id}", total or None, unit="bytes") as bar:
        for remote in plan:
            digests[remote.name] = download_file(repo, remote, dest_dir / remote.name, config, bar)
    return digests


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src.resolve(), dest)
    except OSError:
        shutil.copyfile(src, dest)


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
