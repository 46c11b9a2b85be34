"""A small Hugging Face hub look-alike on 127.0.0.1, for tests of ``models pull``.

It serves the few endpoints the real huggingface-hub client uses to list a repository and
download from it:

- ``GET /api/models/{repo}`` and ``GET /api/models/{repo}/revision/{rev}`` (``?blobs=true``
  adds sizes, git blob ids and LFS sha256s, as the hub does);
- ``HEAD`` and ``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag``,
  ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, ``Accept-Ranges`` and ``Range`` requests
  (206 + ``Content-Range``, 416 past the end);
- errors with the hub's ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``,
  ``EntryNotFound``).

Knobs make it misbehave the way networks do: cut a response off halfway, stall halfway until
released, publish a wrong checksum. Every request is logged. All waits are bounded.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".model")
STALL_LIMIT_S = 60.0


@dataclass(frozen=True)
class HostedFile:
    data: bytes

    @property
    def is_lfs(self) -> bool:
        return self.data[:4] == b"GGUF" or len(self.data) > 10_000

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_sha1(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    range: str | None


@dataclass
class FakeHub:
    """The hub's state and knobs; ``start()`` serves it on a random port of 127.0.0.1."""

    repos: dict[str, dict[str, HostedFile]] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)
    cut_once: set[str] = field(default_factory=set)  # file paths: first GET stops halfway
    stall: dict[str, threading.Event] = field(default_factory=dict)  # GET stops halfway until set
    wrong_sha256: set[str] = field(default_factory=set)  # file paths with a wrong published sha256
    refuse_downloads: bool = False
    requests: list[LoggedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # --- content ---

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> str:
        self.repos[repo_id] = {name: HostedFile(data) for name, data in files.items()}
        digest = hashlib.sha1(repo_id.encode())
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name])
        commit = digest.hexdigest()
        self.commits[repo_id] = commit
        return commit

    def add_dir(self, repo_id: str, directory: Path) -> str:
        files = {
            str(p.relative_to(directory)).replace("\\", "/"): p.read_bytes()
            for p in sorted(directory.rglob("*"))
            if p.is_file()
        }
        return self.add_repo(repo_id, files)

    def set_file(self, repo_id: str, name: str, data: bytes) -> None:
        """Add or change one file (the commit stays: tests use this to break a repo)."""
        self.repos[repo_id][name] = HostedFile(data)

    def downloads_of(self, path_suffix: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(path_suffix)]

    def downloaded_files(self) -> list[str]:
        """Paths inside their repository of every file GET, in order."""
        return [
            r.path.split("/resolve/", 1)[1].split("/", 1)[1]
            for r in self.requests
            if r.method == "GET" and "/resolve/" in r.path
        ]

    # --- serving ---

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        for event in self.stall.values():
            event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    timeout = 20  # a client that goes silent cannot hold a server thread for long

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet in tests
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(head=True)

    def _dispatch(self, *, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(LoggedRequest(self.command, path, self.headers.get("Range")))
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 4 and parts[:2] == ["api", "models"]:
            self._model_info(parts[2:])
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), head=head)
        else:
            self._error(404, "NotFound", "no such endpoint")

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _repo(self, repo_id: str, revision: str) -> dict[str, HostedFile] | None:
        if repo_id not in self.hub.repos:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if revision not in ("main", self.hub.commits[repo_id]):
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return None
        return self.hub.repos[repo_id]

    def _model_info(self, parts: list[str]) -> None:
        repo_id = "/".join(parts[:2])
        revision = parts[3] if len(parts) >= 4 and parts[2] == "revision" else "main"
        files = self._repo(repo_id, revision)
        if files is None:
            return
        with_blobs = "blobs=true" in (urlsplit(self.path).query or "").lower()
        siblings = []
        for name, hosted in sorted(files.items()):
            item: dict[str, object] = {"rfilename": name}
            if with_blobs:
                item["size"] = len(hosted.data)
                item["blobId"] = hosted.git_sha1
                if hosted.is_lfs:
                    sha = "0" * 64 if name in self.hub.wrong_sha256 else hosted.sha256
                    item["lfs"] = {"sha256": sha, "size": len(hosted.data), "pointerSize": 134}
            siblings.append(item)
        body = json.dumps(
            {
                "_id": repo_id,
                "id": repo_id,
                "modelId": repo_id,
                "sha": self.hub.commits[repo_id],
                "private": False,
                "siblings": siblings,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _resolve(self, repo_id: str, revision: str, name: str, *, head: bool) -> None:
        files = self._repo(repo_id, revision)
        if files is None:
            return
        hosted = files.get(name)
        if hosted is None:
            self._error(404, "EntryNotFound", f"{name} does not exist")
            return
        if self.hub.refuse_downloads and not head:
            self._error(503, "Unavailable", "downloads are switched off")
            return
        data = hosted.data
        start = 0
        status = 200
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            start = int(first or 0)
            end = int(last) + 1 if last else len(data)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data, status = data[start:end], 206
        sha = "0" * 64 if name in self.hub.wrong_sha256 else hosted.sha256
        self.send_response(status)
        self.send_header("X-Repo-Commit", self.hub.commits[repo_id])
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        if hosted.is_lfs:
            self.send_header("ETag", f'"{sha}"')
            self.send_header("X-Linked-Etag", f'"{sha}"')
            self.send_header("X-Linked-Size", str(len(hosted.data)))
        else:
            self.send_header("ETag", f'"{hosted.git_sha1}"')
        if status == 206:
            self.send_header(
                "Content-Range", f"bytes {start}-{start + len(data) - 1}/{len(hosted.data)}"
            )
        self.end_headers()
        if head:
            return
        half = len(hosted.data) // 2 - start
        if name in self.hub.cut_once and half > 0:
            self.hub.cut_once.discard(name)
            self._send_then_close(data[:half])
            return
        event = self.hub.stall.get(name)
        if event is not None and half > 0 and not event.is_set():
            self._send_then_close(data[:half], wait_for=event)
            return
        self.wfile.write(data)

    def _send_then_close(self, data: bytes, wait_for: threading.Event | None = None) -> None:
        """Send part of the body, optionally hang (bounded), then drop the connection."""
        self.wfile.write(data)
        self.wfile.flush()
        if wait_for is not None:
            deadline = time.monotonic() + STALL_LIMIT_S
            while not wait_for.wait(0.1) and time.monotonic() < deadline:
                pass
        self.close_connection = True
        self.connection.close()


def use_fake_hub(fake: FakeHub, monkeypatch, tmp_path: Path) -> None:
    """Point bayling-local and huggingface-hub at ``fake``, with a fresh HF_HOME (conftest.py
    already gives each test fresh bayling-local directories)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "BAYLING_LOCAL_MODEL"):
        monkeypatch.delenv(var, raising=False)
    # huggingface-hub read its environment when it was imported (conftest.py turns offline mode
    # on for every test): undo that, and keep its own side requests local too.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", fake.url)
    monkeypatch.setattr(
        huggingface_hub.constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        fake.url + "/{repo_id}/resolve/{revision}/{filename}",
    )


def write_tiny_gguf(
    path: Path, *, name: str = "tiny-test", arch: str = "llama", extra: dict[str, str] | None = None
) -> Path:
    """A small valid GGUF (one tensor) for store tests that never load the weights."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_context_length(64)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for key, value in (extra or {}).items():
        writer.add_string(key, value)
    writer.add_tensor("token_embd.weight", np.arange(4096, dtype=np.float16).reshape(64, 64))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def pull(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``models pull`` in-process; return (exit code, stdout, stderr)."""
    from bayling_local.cli import main

    code = main(["models", "pull", *args])
    out, err = capsys.readouterr()
    return code, out, err
