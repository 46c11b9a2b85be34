"""The server's guards: loopback unless a key is given, the key itself, CORS only for listed
origins, and the Jinja template export that lets vLLM serve BayLing's exact prompt."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from bayling_local.cli import main
from bayling_local.errors import UsageError
from bayling_local.server.config import ServerConfig, is_loopback
from tests.support.server import DEMO_MODEL, ServerProcess

pytestmark = pytest.mark.timeout(300)

KEY = "s3cret-key"
GOOD = "https://good.example"
EVIL = "https://evil.example"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "example.com"])
def test_non_loopback_bind_without_key_is_refused(host: str, capsys) -> None:
    assert main(["serve", "--host", host, "--model", str(DEMO_MODEL)]) == 2
    err = capsys.readouterr().err
    assert "--api-key" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_loopback_names() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("[::1]") and is_loopback("127.8.9.10")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    ServerConfig(host="0.0.0.0", api_key="k")  # allowed with a key
    with pytest.raises(UsageError):
        ServerConfig(host="127.0.0.1", api_key="  ")
    with pytest.raises(UsageError):
        ServerConfig(cors_origins=("good.example",))


def test_port_in_use_is_one_line(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--model", str(DEMO_MODEL), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("guarded")
    with ServerProcess(
        home, "--model", str(DEMO_MODEL), "--api-key", KEY, "--cors-origin", GOOD
    ) as proc:
        yield proc


def test_api_key_required_and_checked(guarded: ServerProcess) -> None:
    from openai import AuthenticationError, OpenAI

    url = guarded.url
    missing = httpx.get(url + "/v1/models")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    wrong = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "invalid API key"
    right = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert right.status_code == 200

    with pytest.raises(AuthenticationError):
        OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0).models.list().data

    body = {"q": "The old cat", "source": "en", "target": "de"}
    lt_wrong = httpx.post(url + "/translate", json={**body, "api_key": "nope"})
    assert lt_wrong.status_code == 401 and isinstance(lt_wrong.json()["error"], str)
    assert httpx.post(url + "/translate", json=body).status_code == 401
    assert httpx.post(url + "/translate", json={**body, "api_key": KEY}).status_code == 200
    assert httpx.post(url + "/translate", data={**body, "api_key": KEY}).status_code == 200
    assert httpx.get(url + "/languages").status_code == 401
    assert httpx.get(url + "/languages", params={"api_key": KEY}).status_code == 200
    assert httpx.get(url + "/health").status_code == 200  # liveness needs no key


def test_cors_only_for_listed_origins(guarded: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    good = httpx.get(guarded.url + "/v1/models", headers={**headers, "Origin": GOOD})
    assert good.headers.get("access-control-allow-origin") == GOOD
    evil = httpx.get(guarded.url + "/v1/models", headers={**headers, "Origin": EVIL})
    assert "access-control-allow-origin" not in evil.headers
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    ok = httpx.options(guarded.url + "/translate", headers={**preflight, "Origin": GOOD})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == GOOD
    refused = httpx.options(guarded.url + "/translate", headers={**preflight, "Origin": EVIL})
    assert "access-control-allow-origin" not in refused.headers


def test_no_cors_headers_without_cors_origin(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--model", str(DEMO_MODEL)) as server:
        response = httpx.get(server.url + "/v1/models", headers={"Origin": GOOD})
        assert response.status_code == 200
        assert not [h for h in response.headers if h.startswith("access-control-")]


def test_prompt_jinja_exports_the_chat_template(capsys) -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from bayling_local.prompts import Message, get_format

    messages = [Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Translate")]
    for name in ("bayling", "bayling-3"):
        assert main(["prompt", "--format", name, "--jinja"]) == 0
        template = capsys.readouterr().out
        rendered = (
            ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            .from_string(template)
            .render(
                messages=[m.as_dict() for m in messages],
                add_generation_prompt=True,
                bos_token="<s>",
                raise_exception=lambda message: None,
            )
        )
        assert rendered == "<s>" + get_format(name).render(messages)
