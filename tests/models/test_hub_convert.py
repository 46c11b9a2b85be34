"""``models pull NAME``: a tiny Hugging Face checkpoint served by the hub look-alike is
downloaded (only the files the converter needs), converted and quantized with ``convert/``,
registered, and then runs in llama.cpp."""

from __future__ import annotations

import pytest

from bayling_local.store import Store
from tests.support.hubserver import FakeHub, pull, use_fake_hub
from tests.support.tiny import make_tiny_checkpoint

REPO = "ICTNLP/bayling-2-7b"
JUNK = {
    "README.md": b"# BayLing-2-7B\n",
    "training_args.bin": b"\0" * 20_000,
    "optimizer.pt": b"\0" * 20_000,
    "original/consolidated.00.pth": b"\0" * 20_000,
}


@pytest.fixture
def checkpoint(tiny_spm_checkpoint):
    return tiny_spm_checkpoint


@pytest.fixture
def hub(tmp_path, monkeypatch, checkpoint):
    fake = FakeHub()
    fake.add_dir(REPO, checkpoint)
    for name, data in JUNK.items():
        fake.set_file(REPO, name, data)
    fake.start()
    use_fake_hub(fake, monkeypatch, tmp_path)
    yield fake
    fake.stop()


def test_pull_converts_and_quantizes(hub, checkpoint, capsys):
    code, out, err = pull(capsys, "bayling-2-7b")
    assert code == 0, err
    store = Store()
    entry = store.get("bayling-2-7b")
    assert entry.file == "bayling-2-7b.Q4_K_M.gguf"
    assert entry.quantization == "Q4_K_M"
    assert entry.known_model == "bayling-2-7b" and entry.prompt_format == "bayling"
    assert entry.source == f"hf:{REPO}@{hub.commits[REPO]}"
    wanted = {p.name for p in checkpoint.iterdir()}
    assert sorted(hub.downloaded_files()) == sorted(
        wanted
    )  # no optimizer states, no duplicate weight formats
    assert [
        p for p in store.downloads_dir.iterdir() if p.suffix != ".lock"
    ] == []  # checkpoint gone
    assert not (store.root / "sources").exists()

    from llama_cpp import Llama

    llm = Llama(str(store.path_of(entry)), n_ctx=64, n_threads=1, verbose=False)
    try:
        out = llm.create_completion(
            "### Instruction:\nhello\n### Response:\n", max_tokens=4, temperature=0
        )
        assert out["usage"]["completion_tokens"] >= 1
    finally:
        llm.close()


def test_pull_keep_source_and_verify(hub, capsys):
    code, out, err = pull(capsys, "bayling-2-7b:F16", "--keep-source", "--verify")
    assert code == 0, err
    entry = Store().get("bayling-2-7b:F16")
    assert entry.name == "bayling-2-7b:F16" and entry.quantization == "F16"
    kept = Store().root / "sources" / "bayling-2-7b"
    assert (kept / "config.json").is_file() and "kept the checkpoint" in err


def test_delta_model_with_a_base(hub, checkpoint, tmp_path, capsys):
    base = make_tiny_checkpoint(tmp_path / "llama-base", "spm", seed=1)
    hub.add_dir("ICTNLP/bayling-7b-diff", checkpoint)
    code, _, err = pull(capsys, "bayling-7b-v1.0")
    assert code == 2 and "--base DIR" in err
    code, _, err = pull(capsys, "bayling-7b-v1.0:Q8_0", "--base", str(base))
    assert code == 0, err
    entry = Store().get("bayling-7b-v1.0:Q8_0")
    assert entry.quantization == "Q8_0" and entry.known_model == "bayling-7b-v1.0"


def test_a_failed_conversion_keeps_the_download(hub, capsys):
    hub.set_file(REPO, "config.json", b'{"model_type": "mystery"}')
    code, _, err = pull(capsys, "bayling-2-7b:Q8_0")
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err and last.startswith("bayling-local: error: "), err
    assert "the download is kept" in last
    assert Store().entries() == []
    assert list(Store().downloads_dir.rglob("*.safetensors")), (
        "the download should stay for the next try"
    )
    pull(capsys, "bayling-2-7b:Q8_0")
    weights = [name for name in hub.downloaded_files() if name.endswith(".safetensors")]
    assert len(weights) == len(set(weights))  # nothing downloaded twice
