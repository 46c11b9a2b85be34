"""``models pull`` against a hub look-alike on 127.0.0.1, with the real huggingface-hub client.

GGUF pulls, resuming after a cut connection / Ctrl-C / a full disk, checksum refusal,
offline failures and bad targets. Pulls of checkpoints that get converted are in
``test_hub_convert.py``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bayling_local.cli import main
from bayling_local.hub import transfer as hub_module  # the HTTP side: writes, free space
from bayling_local.store import Store
from tests.support.hubserver import FakeHub, pull, use_fake_hub, write_tiny_gguf

REPO = "someone/tiny-GGUF"
FILE = "tiny-chat.Q8_0.gguf"
TARGET = f"hf:{REPO}/{FILE}"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory) -> bytes:
    return write_tiny_gguf(tmp_path_factory.mktemp("hubgguf") / FILE).read_bytes()


@pytest.fixture
def hub(tmp_path, monkeypatch, gguf_bytes):
    """A fresh hub look-alike, and an environment that points bayling-local at it."""
    fake = FakeHub()
    fake.add_repo(REPO, {"README.md": b"# tiny\n", FILE: gguf_bytes, "sub/other.gguf": gguf_bytes})
    fake.start()
    use_fake_hub(fake, monkeypatch, tmp_path)
    yield fake
    fake.stop()


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("bayling-local: error: "), err
    assert "Traceback" not in err
    return lines[-1]


def partial_files() -> list[Path]:
    return (
        sorted(Store().downloads_dir.rglob("*.partial")) if Store().downloads_dir.exists() else []
    )


def assert_nothing_registered() -> None:
    store = Store()
    assert store.entries() == []
    assert not list(store.root.glob("*.gguf")) if store.root.exists() else True


def test_pull_gguf(hub, gguf_bytes, capsys):
    code, out, err = pull(capsys, TARGET)
    assert code == 0, err
    assert "installed tiny-chat" in out
    entry = Store().get("tiny-chat")
    assert entry.sha256 == hashlib.sha256(gguf_bytes).hexdigest()
    assert entry.source == f"hf:{REPO}/{FILE}@{hub.commits[REPO]}"
    assert (Store().root / entry.file).read_bytes() == gguf_bytes
    assert [p for p in Store().downloads_dir.iterdir() if p.suffix != ".lock"] == []  # nothing left
    assert [r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path] == [
        f"/{REPO}/resolve/{hub.commits[REPO]}/{FILE}"
    ]
    before = len(hub.requests)
    code, out, _ = pull(capsys, TARGET)
    assert code == 0 and "already installed" in out
    assert len(hub.requests) == before  # no network when it is already there


def test_pull_gguf_from_a_subfolder(hub, capsys):
    code, out, _ = pull(capsys, f"hf:{REPO}/sub/other.gguf", "--name", "other")
    assert code == 0, out
    assert Store().get("other").source.startswith(f"hf:{REPO}/sub/other.gguf@")


def test_resume_after_the_connection_is_cut(hub, gguf_bytes, capsys):
    hub.cut_once.add(FILE)
    code, out, err = pull(capsys, TARGET)
    assert code == 0, err
    gets = hub.downloads_of(FILE)
    assert [g.range for g in gets] == [None, f"bytes={len(gguf_bytes) // 2}-"]
    assert Store().get("tiny-chat").sha256 == hashlib.sha256(gguf_bytes).hexdigest()


def test_checksum_mismatch_is_refused(hub, capsys):
    hub.wrong_sha256.add(FILE)
    code, _, err = pull(capsys, TARGET)
    assert code == 3
    assert "does not match the checksum" in error_line(err)
    assert_nothing_registered()
    assert partial_files() == []


def test_offline_mode_fails_at_once(hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    code, _, err = pull(capsys, TARGET)
    assert time.monotonic() - start < 3
    assert code == 3 and "offline" in error_line(err)
    assert hub.requests == []


def test_unreachable_hub_fails_fast(hub, monkeypatch, capsys):
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    code, _, err = pull(capsys, TARGET)
    assert time.monotonic() - start < 5
    line = error_line(err)
    assert code == 3 and "cannot reach the Hugging Face hub" in line and "refused" in line
    assert_nothing_registered()


def test_disk_full_during_the_download_then_resume(hub, gguf_bytes, monkeypatch, capsys):
    real_write = hub_module._write_chunk
    written = {"n": 0}

    def write_until_full(handle, chunk):
        if written["n"] >= 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(handle, chunk[:1000])
        written["n"] += 1000
        if len(chunk) > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hub_module, "_write_chunk", write_until_full)
    code, _, err = pull(capsys, TARGET)
    line = error_line(err)
    assert code == 4 and "no space left" in line and "continues where it stopped" in line
    assert_nothing_registered()
    assert [p.stat().st_size for p in partial_files()] == [1000]

    monkeypatch.setattr(hub_module, "_write_chunk", real_write)
    code, out, err = pull(capsys, TARGET)
    assert code == 0, err
    assert hub.downloads_of(FILE)[-1].range == "bytes=1000-"
    assert Store().get("tiny-chat").sha256 == hashlib.sha256(gguf_bytes).hexdigest()
    assert partial_files() == []


def test_not_enough_free_space_is_checked_first(hub, monkeypatch, capsys):
    monkeypatch.setattr(hub_module, "free_bytes", lambda _path: 100)
    code, _, err = pull(capsys, TARGET)
    assert code == 4 and "not enough free disk space" in error_line(err)
    assert hub.downloads_of(FILE) == []
    assert_nothing_registered()


def test_ctrl_c_during_a_pull_then_the_next_pull_resumes(hub, gguf_bytes, tmp_path, capsys):
    release = threading.Event()
    hub.stall[FILE] = release
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bayling_local", "models", "pull", TARGET],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        half = len(gguf_bytes) // 2
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            p.stat().st_size >= half for p in partial_files()
        ):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        assert [p.stat().st_size for p in partial_files()] == [half]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "run the same pull again" in error_line(err)
    assert_nothing_registered()

    code, _, err = pull(capsys, TARGET)
    assert code == 0, err
    assert hub.downloads_of(FILE)[-1].range == f"bytes={half}-"
    assert Store().get("tiny-chat").sha256 == hashlib.sha256(gguf_bytes).hexdigest()


def test_files_already_in_the_huggingface_cache_are_reused(hub, gguf_bytes, tmp_path, capsys):
    from huggingface_hub import hf_hub_download

    # The real client downloading from the look-alike fills the cache under HF_HOME.
    cached = hf_hub_download(REPO, FILE, cache_dir=str(tmp_path / "hf" / "hub"), endpoint=hub.url)
    assert Path(cached).read_bytes() == gguf_bytes
    hub.refuse_downloads = True
    code, out, err = pull(capsys, TARGET)
    assert code == 0, err
    assert Store().get("tiny-chat").sha256 == hashlib.sha256(gguf_bytes).hexdigest()
    assert Path(cached).read_bytes() == gguf_bytes  # the cache is left intact


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["hf:just-a-name"], 2, "expected hf:USER/REPO/FILE.gguf"),
        (["hf:someone/repo/notes.txt"], 2, "expected hf:USER/REPO/FILE.gguf"),
        (["bayling-2-8"], 2, "did you mean bayling-2-8b"),
        (["bayling-2-7b:Q9_X"], 2, "unknown quant type"),
        (["bayling-7b-v1.0"], 2, "--base DIR"),
        (["bayling-2-7b", "--base", "/nonexistent"], 2, "only needed for the v1.0"),
        ([f"hf:{REPO}/missing.gguf"], 3, f"its GGUF files: sub/other.gguf, {FILE}"),
        (["hf:nobody/nothing/x.gguf"], 3, "nobody/nothing was not found on the hub"),
        ([TARGET, "--name", "a/b"], 2, "invalid model name"),
    ],
)
def test_bad_targets(hub, capsys, args, code, message):
    got, _, err = pull(capsys, *args)
    assert got == code
    assert message in error_line(err)
    assert_nothing_registered()


def test_name_already_taken(hub, gguf_bytes, tmp_path, capsys):
    mine = tmp_path / "tiny-chat.gguf"
    mine.write_bytes(gguf_bytes)
    assert main(["models", "import", str(mine)]) == 0
    code, _, err = pull(capsys, TARGET)
    assert code == 2 and "--name" in error_line(err)
    assert hub.downloads_of(FILE) == []
    code, _, err = pull(capsys, TARGET, "--force")
    assert code == 0, err
    entries = Store().entries()
    assert [e.name for e in entries] == ["tiny-chat"] and entries[0].source.startswith("hf:")
    assert len(list(Store().root.glob("*.gguf"))) == 1


def test_two_pulls_of_the_same_file_do_not_mix(hub, capsys):
    import filelock

    work = Store().downloads_dir / f"{REPO.replace('/', '--')}@{hub.commits[REPO]}"
    work.parent.mkdir(parents=True)
    with filelock.FileLock(str(work) + ".lock"):  # as another pull holds it
        code, _, err = pull(capsys, TARGET)
    assert code == 3 and "already pulling" in error_line(err)
    assert hub.downloads_of(FILE) == []
    assert pull(capsys, TARGET)[0] == 0
