"""``bayling-local serve`` through real clients: the official ``openai`` package, plain HTTP as
LibreTranslate documents it, a schemathesis fuzz run, and the bad inputs each API must refuse
with a 4xx in its own error shape. One server process (the bundled demo model) serves them all.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import httpx
import pytest

from tests.support.server import DEMO_MODEL, ServerProcess

pytestmark = pytest.mark.timeout(300)

MODEL_ID = "bayling-demo"
SENTENCE = "Every day, the happy cat finds the red apple in the garden."


GLOSSARY = "source,target\ncat,Mieze\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("serve")
    (home / "pets.csv").write_text(GLOSSARY, encoding="utf-8")
    with ServerProcess(
        home,
        "--glossary",
        f"pets={home / 'pets.csv'}",
        "--model",
        str(DEMO_MODEL),
        "--parallel",
        "4",
        "--max-tokens",
        "48",
        "--queue",
        "64",
        "--beam",
        "3",
    ) as proc:
        yield proc


def openai_error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body
    assert body["error"]["message"]
    return body["error"]


def lt_error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return body["error"]


# -- OpenAI ------------------------------------------------------------------------------------


def test_openai_client_models_and_chat(server: ServerProcess) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]

    messages = [
        {
            "role": "user",
            "content": f"Provide the Chinese translation for this sentence: {SENTENCE}",
        }
    ]
    reply = client.chat.completions.create(
        model=MODEL_ID, messages=messages, temperature=0, max_tokens=40
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "每天，快乐的猫在花园里找到红色的苹果。"
    assert choice.finish_reason == "stop"
    assert reply.usage.prompt_tokens > 10
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

    stream = client.chat.completions.create(
        model=MODEL_ID,
        messages=messages,
        temperature=0,
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            finish = c.finish_reason or finish
    assert len(pieces) > 1, "the reply should arrive in several pieces"
    assert "".join(pieces) == choice.message.content
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == reply.usage.completion_tokens


def test_openai_max_tokens_stop_and_completions(server: ServerProcess) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=60)
    messages = [
        {"role": "user", "content": f"Provide the German translation for this sentence: {SENTENCE}"}
    ]
    short = client.chat.completions.create(
        model=MODEL_ID, messages=messages, temperature=0, max_tokens=2
    )
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 2
    full = client.chat.completions.create(
        model=MODEL_ID, messages=messages, temperature=0, max_tokens=40
    )
    text = full.choices[0].message.content
    word = text.split()[2]
    stopped = client.chat.completions.create(
        model=MODEL_ID, messages=messages, temperature=0, max_tokens=40, stop=[word]
    )
    assert stopped.choices[0].message.content == text[: text.index(word)]
    assert stopped.choices[0].finish_reason == "stop"
    seeded = [
        client.chat.completions.create(
            model=MODEL_ID, messages=messages, temperature=1.0, seed=7, max_tokens=12
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]

    completion = client.completions.create(
        model=MODEL_ID,
        prompt="### Instruction:\nhello\n### Response:\n",
        max_tokens=5,
        temperature=0,
    )
    assert completion.object == "text_completion"
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens <= 5
    streamed = client.completions.create(
        model=MODEL_ID,
        prompt="### Instruction:\nhello\n### Response:\n",
        max_tokens=5,
        temperature=0,
        stream=True,
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == completion.choices[0].text


def test_openai_errors_in_openai_shape(server: ServerProcess) -> None:
    url = server.url + "/v1/chat/completions"
    ok = {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    bad = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert "JSON" in openai_error(bad)["message"]

    unknown = httpx.post(url, json={**ok, "model": "gpt-4"})
    assert unknown.status_code == 404
    error = openai_error(unknown)
    assert error["code"] == "model_not_found" and "gpt-4" in error["message"]

    too_many = httpx.post(url, json={**ok, "max_tokens": 100000})
    assert too_many.status_code == 400
    assert "max_tokens" in openai_error(too_many)["message"]

    over_context = httpx.post(
        url, json={**ok, "messages": [{"role": "user", "content": "cat " * 5000}]}
    )
    assert over_context.status_code == 400
    assert openai_error(over_context)["code"] == "context_length_exceeded"

    for body in (
        {**ok, "messages": []},
        {**ok, "temperature": 5},
        {**ok, "n": 3},
        {**ok, "messages": [{"role": "tool", "content": "x"}]},
        {**ok, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        {"messages": ok["messages"]},
        [1, 2, 3],
    ):
        response = httpx.post(url, json=body)
        assert response.status_code == 400, (body, response.text)
        openai_error(response)

    oversized = httpx.post(
        url, content=b"x" * (2 << 20), headers={"content-type": "application/json"}
    )
    assert oversized.status_code == 413
    openai_error(oversized)

    missing = httpx.get(server.url + "/v1/nothing")
    assert missing.status_code == 404
    openai_error(missing)


# -- LibreTranslate ----------------------------------------------------------------------------


def test_libretranslate_translate_detect_languages(server: ServerProcess) -> None:
    # As LibreTranslate's API documentation shows it: a JSON POST to /translate.
    response = httpx.post(
        server.url + "/translate",
        json={"q": SENTENCE, "source": "auto", "target": "zh", "format": "text", "api_key": ""},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["translatedText"] == "每天，快乐的猫在花园里找到红色的苹果。"
    assert body["detectedLanguage"]["language"] == "en"
    assert 50 <= body["detectedLanguage"]["confidence"] <= 100

    # libretranslatepy posts form data; q may be a list.
    form = httpx.post(
        server.url + "/translate",
        data={"q": [SENTENCE, "The old cat"], "source": "en", "target": "de"},
        timeout=60,
    )
    assert form.status_code == 200, form.text
    texts = form.json()["translatedText"]
    assert isinstance(texts, list) and len(texts) == 2
    assert "detectedLanguage" not in form.json() or form.json()["detectedLanguage"] is None

    html = httpx.post(
        server.url + "/translate",
        json={
            "q": f"<p class='x'>{SENTENCE}</p>",
            "source": "en",
            "target": "zh",
            "format": "html",
        },
        timeout=60,
    )
    assert (
        html.json()["translatedText"] == "<p class='x'>每天，快乐的猫在花园里找到红色的苹果。</p>"
    )

    alternatives = httpx.post(
        server.url + "/translate",
        json={"q": SENTENCE, "source": "en", "target": "zh", "alternatives": 2},
        timeout=60,
    )
    assert alternatives.status_code == 200, alternatives.text
    alts = alternatives.json()["alternatives"]
    assert isinstance(alts, list) and len(alts) <= 2 and all(isinstance(a, str) for a in alts)
    assert alternatives.json()["translatedText"] == "每天，快乐的猫在花园里找到红色的苹果。"

    detected = httpx.post(
        server.url + "/detect", data={"q": "Guten Morgen, wie geht es dir heute?"}
    )
    assert detected.status_code == 200
    assert detected.json()[0]["language"] == "de"

    languages = httpx.get(server.url + "/languages").json()
    codes = {entry["code"] for entry in languages}
    assert {"en", "zh", "de", "fr", "ja"} <= codes
    english = next(e for e in languages if e["code"] == "en")
    assert english["name"] == "English" and "zh" in english["targets"]


def test_glossary_and_memory(server: ServerProcess) -> None:
    url = server.url + "/translate"
    body = {"q": "The old cat", "source": "en", "target": "de"}
    plain = httpx.post(url, json=body, timeout=60).json()["translatedText"]
    assert "Mieze" not in plain
    termed = httpx.post(url, json={**body, "glossary": "pets"}, timeout=60)
    assert termed.status_code == 200, termed.text
    assert "Mieze" in termed.json()["translatedText"]
    unknown = httpx.post(url, json={**body, "glossary": "../../etc/passwd"})
    assert unknown.status_code == 400 and "pets" in unknown.json()["error"]
    # The memory is on by default: the server's own store holds what it translated.
    memory = server.home / "data" / "memory.sqlite3"
    assert memory.is_file()
    with sqlite3.connect(memory) as db:
        rows = db.execute("SELECT source_text, target_text FROM units").fetchall()
    assert ("The old cat", plain) in rows


def test_translate_file(server: ServerProcess) -> None:
    subtitles = "1\n00:00:01,000 --> 00:00:02,000\nThe old cat\n"
    srt = httpx.post(
        server.url + "/translate_file",
        files={"file": ("clip.srt", subtitles.encode())},
        data={"source": "en", "target": "de"},
        timeout=60,
    )
    assert srt.status_code == 200, srt.text
    assert httpx.get(srt.json()["translatedFileUrl"]).text.startswith(
        "1\n00:00:01,000 --> 00:00:02,000\n"
    )
    response = httpx.post(
        server.url + "/translate_file",
        files={"file": ("../../etc/notes.txt", (SENTENCE + "\n\n" + SENTENCE + "\n").encode())},
        data={"source": "en", "target": "zh"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    url = response.json()["translatedFileUrl"]
    assert url.startswith(server.url + "/download_file/") and url.endswith("notes.zh.txt")
    downloaded = httpx.get(url)
    assert downloaded.status_code == 200
    assert (
        downloaded.text
        == "每天，快乐的猫在花园里找到红色的苹果。\n\n每天，快乐的猫在花园里找到红色的苹果。\n"
    )
    assert 'filename="notes.zh.txt"' in downloaded.headers["content-disposition"]
    assert httpx.get(server.url + "/download_file/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_libretranslate_errors_in_its_shape(server: ServerProcess) -> None:
    url = server.url + "/translate"
    cases = [
        httpx.post(url, content=b"{oops", headers={"content-type": "application/json"}),
        httpx.post(url, json={"q": "", "source": "en", "target": "de"}),
        httpx.post(url, json={"q": [], "source": "en", "target": "de"}),
        httpx.post(url, json={"source": "en", "target": "de"}),
        httpx.post(url, json={"q": "hello", "source": "en", "target": "klingonish"}),
        httpx.post(url, json={"q": "hello", "source": "xx-nope", "target": "de"}),
        httpx.post(url, json={"q": "hello", "target": "de", "format": "pdf"}),
        httpx.post(url, json={"q": "hello", "target": "de", "alternatives": 99}),
        httpx.post(url, json={"q": ["a"] * 1000, "target": "de"}),
        httpx.post(server.url + "/detect", json={"q": ""}),
        httpx.post(
            server.url + "/translate_file",
            files={"file": ("report.exe", b"MZ\x00\x00")},
            data={"target": "de"},
        ),
        httpx.post(
            server.url + "/translate_file",
            files={"file": ("binary.txt", b"\x00\x01\x02")},
            data={"target": "de"},
        ),
        httpx.post(server.url + "/translate_file", data={"target": "de"}),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, (response.request.content[:80], response.text)
        lt_error(response)
    unknown = cases[4].json()["error"]
    assert "klingonish" in unknown
    oversized = httpx.post(url, json={"q": "x" * (2 << 20), "target": "de"})
    assert oversized.status_code == 413
    lt_error(oversized)
    wrong_type = httpx.post(url, content=b"q=1", headers={"content-type": "text/csv"})
    assert wrong_type.status_code == 415
    lt_error(wrong_type)


def test_health_counts(server: ServerProcess) -> None:
    health = server.health()
    assert health["status"] == "ok" and health["model"] == MODEL_ID
    assert health["active"] == 0 and health["completed"] > 0


# -- fuzzing -----------------------------------------------------------------------------------


def test_schemathesis_finds_no_server_error(server: ServerProcess, tmp_path) -> None:
    st = shutil.which("schemathesis") or shutil.which("st")
    if st is None:
        pytest.skip("schemathesis is not installed")
    proc = subprocess.run(
        [
            st,
            "run",
            server.url + "/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "6",
            "--workers",
            "2",
            "--request-timeout",
            "60",
            "--seed",
            "1",
            "--suppress-health-check",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert server.health()["status"] == "ok"  # still up after the fuzzing
