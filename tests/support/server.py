"""Helpers for the server tests: real ``bayling-local serve`` processes on free loopback ports.

No tests here; the server test modules import these.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = REPO_ROOT / "bayling_local" / "demo" / "bayling-demo.gguf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(home: Path) -> dict[str, str]:
    """The environment of a server process: its own empty user directories, one thread."""
    env = dict(os.environ)
    env.update(
        BAYLING_LOCAL_CONFIG_DIR=str(home / "config"),
        BAYLING_LOCAL_DATA_DIR=str(home / "data"),
        BAYLING_LOCAL_THREADS="1",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("BAYLING_LOCAL_API_KEY", None)
    return env


class ServerProcess:
    """``bayling-local serve ARGS`` in a subprocess, ready when ``/health`` answers."""

    def __init__(self, home: Path, *args: str, ready_timeout: float = 90.0) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / f"server-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bayling_local", "serve", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_env(home),
            cwd=home,
        )
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}): {self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start: {self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=5).json()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_long_model(out_dir: Path) -> Path:
    """A tiny random model with an 8k context: greedy decoding runs for thousands of tokens
    (it almost never picks its end token), long enough to hold a slot while a test acts."""
    from bayling_convert import convert_checkpoint
    from tests.support.tiny import TinyShape, make_tiny_checkpoint

    hf = make_tiny_checkpoint(out_dir / "long-hf", "spm", shape=TinyShape(context_length=8192))
    return convert_checkpoint(
        hf, out_dir / "long.gguf", outtype="f32", force=True, show_progress=False
    )


# -- a client process for the concurrency tests ------------------------------------------------


def send(client: httpx.Client, url: str, job: dict) -> dict:
    """One request of the mixed load; returns the text answered, the status and the latency."""
    start = time.perf_counter()
    if job["kind"] == "chat":
        response = client.post(url + "/v1/chat/completions", json=job["body"])
        text = response.json()["choices"][0]["message"]["content"] if response.is_success else None
    else:
        response = client.post(url + "/translate", json=job["body"])
        text = response.json()["translatedText"] if response.is_success else None
    return {
        "status": response.status_code,
        "text": text,
        "seconds": time.perf_counter() - start,
        "error": None if response.is_success else response.text,
    }


def run_client(url: str, jobs: list[dict], threads: int) -> list[dict]:
    """Send ``jobs`` all at once from ``threads`` threads; results in job order."""
    from concurrent.futures import ThreadPoolExecutor

    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with (
        httpx.Client(timeout=600, limits=limits) as client,
        ThreadPoolExecutor(threads) as pool,
    ):
        return list(pool.map(lambda job: send(client, url, job), jobs))


if __name__ == "__main__":  # python tests/support/server.py URL THREADS < jobs.json > out.json
    import json

    _url, _threads = sys.argv[1], int(sys.argv[2])
    json.dump(run_client(_url, json.load(sys.stdin), _threads), sys.stdout)
