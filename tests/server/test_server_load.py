"""The server under load and at its edges: 64 concurrent requests from several client
processes, a full queue, clients that leave, and SIGTERM while requests are in flight.

The slot-holding tests use a tiny random model with an 8k context: greedy decoding on it runs
for thousands of tokens (several milliseconds each), so a request holds its slot for seconds.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import DEMO_MODEL, REPO_ROOT, ServerProcess, make_long_model, send

pytestmark = pytest.mark.timeout(600)

SUBJECTS = ("the happy cat", "the old dog", "the teacher", "the small bird")
OBJECTS = ("the red apple", "the blue ball", "the green book", "the yellow hat")
TARGETS = ("zh", "de", "fr", "ja")


def mixed_jobs(count: int) -> list[dict]:
    """Half OpenAI chat, half LibreTranslate, all greedy, all different."""
    jobs = []
    for index in range(count):
        sentence = (
            f"{SUBJECTS[index % 4].capitalize()} finds {OBJECTS[(index // 4) % 4]} in the garden."
        )
        target = TARGETS[(index // 16) % 4]
        if index % 2:
            jobs.append(
                {
                    "kind": "translate",
                    "body": {"q": sentence, "source": "en", "target": target},
                }
            )
        else:
            names = {"zh": "Chinese", "de": "German", "fr": "French", "ja": "Japanese"}
            jobs.append(
                {
                    "kind": "chat",
                    "body": {
                        "model": "bayling-demo",
                        "temperature": 0,
                        "max_tokens": 32,
                        "messages": [
                            {
                                "role": "user",
                                "content": f"Provide the {names[target]} translation for this "
                                f"sentence: {sentence}",
                            }
                        ],
                    },
                }
            )
    return jobs


@pytest.fixture(scope="module")
def long_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_long_model(tmp_path_factory.mktemp("long-model"))


def test_64_concurrent_requests_from_4_processes_match_sequential(tmp_path: Path) -> None:
    jobs = mixed_jobs(64)
    with ServerProcess(
        tmp_path, "--model", str(DEMO_MODEL), "--parallel", "8", "--queue", "64", "--no-memory"
    ) as server:
        with httpx.Client(timeout=120) as client:
            sequential = [send(client, server.url, job) for job in jobs]
        assert all(r["status"] == 200 for r in sequential), sequential
        processes = []
        for _ in range(4):
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(REPO_ROOT / "tests" / "support" / "server.py"),
                    server.url,
                    "16",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            processes.append(proc)
        outputs = []
        for part, proc in enumerate(processes):
            out, _ = proc.communicate(json.dumps(jobs[part::4]), timeout=300)
            assert proc.returncode == 0
            outputs.append(json.loads(out))
        concurrent = [None] * 64
        for part, results in enumerate(outputs):
            for offset, result in enumerate(results):
                concurrent[part + 4 * offset] = result
        assert all(r["status"] == 200 for r in concurrent), [r["error"] for r in concurrent]
        assert [r["text"] for r in concurrent] == [r["text"] for r in sequential]
        health = server.health()
        assert health["completed"] == 128 and health["rejected"] == 0 and health["active"] == 0


def _chat(max_tokens: int, stream: bool = False) -> dict:
    return {
        "model": "long",
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": stream,
        "messages": [{"role": "user", "content": "Tell me a long story."}],
    }


def _wait_health(server: ServerProcess, predicate, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = server.health()
        if predicate(health) or time.monotonic() > deadline:
            return health
        time.sleep(0.05)


def test_full_queue_503_fast_and_disconnect_frees_the_slot(
    tmp_path: Path, long_model: Path
) -> None:
    with ServerProcess(
        tmp_path, "--model", str(long_model), "--parallel", "1", "--queue", "0"
    ) as server:
        url = server.url + "/v1/chat/completions"
        # A streaming request takes the only slot; read its first event, then the rest waits.
        with httpx.stream("POST", url, json=_chat(6000, stream=True), timeout=60) as held:
            assert held.status_code == 200
            lines = held.iter_lines()  # kept: a dropped iterator closes the response
            first = next(lines)
            assert first.startswith('data: {"id"'), first
            start = time.perf_counter()
            busy = httpx.post(url, json=_chat(4), timeout=30)
            elapsed = time.perf_counter() - start
            assert busy.status_code == 503, (busy.text, server.health(), server.log())
            assert busy.headers["retry-after"].isdigit()
            assert busy.json()["error"]["code"] == "server_busy"
            assert elapsed < 2.0, f"503 took {elapsed:.2f}s"  # the slot is held for ~30 s
            lt_busy = httpx.post(server.url + "/translate", json={"q": "hello", "target": "de"})
            assert lt_busy.status_code == 503, (lt_busy.text, server.health(), server.log())
            assert isinstance(lt_busy.json()["error"], str)
        # Leaving the stream closed the connection: the slot is freed long before 6000 tokens.
        health = _wait_health(server, lambda h: h["active"] == 0)
        assert health["active"] == 0 and health["cancelled"] == 1, health
        assert httpx.post(url, json=_chat(4), timeout=30).status_code == 200

        # A non-streaming request whose client goes away is cancelled too.
        body = json.dumps(_chat(6000)).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            _wait_health(server, lambda h: h["active"] == 1)
        health = _wait_health(server, lambda h: h["active"] == 0)
        assert health["active"] == 0 and health["cancelled"] == 2, health
        assert httpx.post(url, json=_chat(4), timeout=30).status_code == 200

        # So is a LibreTranslate request (a long text: hundreds of tokens to generate).
        body = json.dumps({"q": "word " * 1500, "source": "en", "target": "de"}).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(
                b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            _wait_health(server, lambda h: h["active"] == 1)
        start = time.monotonic()
        health = _wait_health(server, lambda h: h["active"] == 0)
        assert health["active"] == 0 and health["cancelled"] == 3, health
        assert time.monotonic() - start < 3


def test_sigterm_drains_in_flight_requests(tmp_path: Path, long_model: Path) -> None:
    server = ServerProcess(tmp_path, "--model", str(long_model), "--parallel", "2")
    events: list[dict] = []
    with httpx.stream(
        "POST", server.url + "/v1/chat/completions", json=_chat(250, stream=True), timeout=60
    ) as stream:
        lines = stream.iter_lines()
        next(lines)
        server.signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # no new connections while draining
            try:
                httpx.get(server.url + "/health", timeout=2)
            except httpx.ConnectError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the server still accepts connections after SIGTERM")
        for line in lines:
            if line.startswith("data: {"):
                events.append(json.loads(line[6:]))
            elif line == "data: [DONE]":
                events.append({"done": True})
    assert events[-1] == {"done": True}
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert server.wait(30) == 0
    assert "server stopped" in server.log()
    server.stop()


def test_sigterm_cancels_after_the_grace_period(tmp_path: Path, long_model: Path) -> None:
    server = ServerProcess(tmp_path, "--model", str(long_model), "--grace", "1")
    finished = threading.Event()
    answers: list[httpx.Response] = []

    def long_request() -> None:
        with contextlib.suppress(httpx.HTTPError):
            answers.append(
                httpx.post(server.url + "/v1/chat/completions", json=_chat(8000), timeout=60)
            )
        finished.set()

    worker = threading.Thread(target=long_request)
    worker.start()
    _wait_health(server, lambda h: h["active"] == 1)
    start = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(20) == 0
    assert time.monotonic() - start < 10, "shutdown should not wait for 8000 tokens"
    assert finished.wait(10)
    worker.join()
    # Cut off by the grace period, the request still gets an answer in OpenAI's shape.
    assert answers and answers[0].status_code == 503, answers
    assert answers[0].json()["error"]["code"] == "shutting_down"
    assert "Traceback" not in server.log()
    server.stop()


def test_ctrl_c_stops_with_exit_code_130(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--model", str(DEMO_MODEL))
    server.signal(signal.SIGINT)
    assert server.wait(30) == 130
    log = server.log()
    assert "interrupted" in log and "Traceback" not in log
    server.stop()


def test_second_ctrl_c_stops_at_once(tmp_path: Path, long_model: Path) -> None:
    server = ServerProcess(tmp_path, "--model", str(long_model))
    answers: list[httpx.Response] = []

    def long_request() -> None:
        with contextlib.suppress(httpx.HTTPError):
            answers.append(
                httpx.post(server.url + "/v1/chat/completions", json=_chat(8000), timeout=60)
            )

    worker = threading.Thread(target=long_request)
    worker.start()
    _wait_health(server, lambda h: h["active"] == 1)
    server.signal(signal.SIGINT)  # drains: the request would run on for many seconds
    time.sleep(0.5)
    start = time.monotonic()
    server.signal(signal.SIGINT)  # stops now
    assert server.wait(20) == 130
    assert time.monotonic() - start < 10
    worker.join(30)
    log = server.log()
    assert "Traceback" not in log and "interrupted" in log
    if answers:  # the request is cancelled with an answer in OpenAI's shape, not dropped
        assert answers[0].status_code == 503
        assert answers[0].json()["error"]["code"] == "shutting_down"
    server.stop()
