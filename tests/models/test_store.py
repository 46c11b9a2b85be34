"""The local model store: import, list, show, rm, default, resolution, and its bad inputs."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from bayling_local.cli import main
from bayling_local.errors import ModelError, UsageError
from bayling_local.resolve import resolve_model
from bayling_local.settings import load_settings
from bayling_local.store import Store
from tests.support.hubserver import write_tiny_gguf


@pytest.fixture
def home(isolated_user_dirs) -> Path:
    """The empty data and config directories conftest.py makes for each test."""
    return isolated_user_dirs


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-chat.Q8_0.gguf")


def cli_run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("bayling-local: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_import_list_show_rm(home, gguf_file, capsys):
    code, out, _ = cli_run(capsys, "models", "import", str(gguf_file))
    assert code == 0 and "imported tiny-chat" in out
    store = Store()
    entry = store.get("tiny-chat")
    assert entry is not None
    assert entry.file == "tiny-chat.F16.gguf"
    assert (store.root / entry.file).read_bytes() == gguf_file.read_bytes()
    assert entry.sha256 == hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    assert entry.quantization == "F16" and entry.architecture == "llama"
    assert entry.prompt_format == "bayling" and entry.source.startswith("import:")

    code, out, _ = cli_run(capsys, "models", "list")
    assert code == 0 and "tiny-chat" in out and "F16" in out
    code, out, _ = cli_run(capsys, "models", "list", "--json")
    data = json.loads(out)
    assert [d["name"] for d in data] == ["tiny-chat"]
    assert Path(data[0]["path"]).is_file()
    code, out, _ = cli_run(capsys, "models", "show", "tiny-chat")
    assert code == 0 and entry.sha256 in out
    assert resolve_model("tiny-chat").path == store.root / entry.file
    assert resolve_model("tiny-chat:F16").entry == entry
    assert resolve_model(None).entry == entry  # the only installed model

    code, out, _ = cli_run(capsys, "models", "rm", "tiny-chat")
    assert code == 0 and "removed tiny-chat" in out
    assert store.entries() == []
    assert not (store.root / entry.file).exists()
    assert gguf_file.exists()  # the original is untouched


def test_import_link_keeps_the_file_in_place(home, gguf_file, capsys):
    code, out, _ = cli_run(capsys, "models", "import", str(gguf_file), "--link", "--name", "linked")
    assert code == 0 and "linked linked" in out
    entry = Store().get("linked")
    assert entry.linked and Path(entry.file) == gguf_file.resolve()
    assert not any(p.suffix == ".gguf" for p in Store().root.iterdir())
    assert cli_run(capsys, "models", "rm", "linked")[0] == 0
    assert gguf_file.exists()


def test_default_model(home, gguf_file, capsys):
    for name in ("first", "second"):
        assert cli_run(capsys, "models", "import", str(gguf_file), "--name", name)[0] == 0
    assert resolve_model(None).name == "first"
    code, out, _ = cli_run(capsys, "models", "default", "second")
    assert code == 0 and "second" in out
    assert load_settings().model == "second"
    assert resolve_model(None).name == "second"
    code, out, _ = cli_run(capsys, "models", "list")
    assert "*second" in out
    _, _, err = cli_run(capsys, "models", "rm", "second")
    assert "default" in err and load_settings().model is None


def test_name_taken(home, gguf_file, capsys):
    assert cli_run(capsys, "models", "import", str(gguf_file), "--name", "mine")[0] == 0
    code, _, err = cli_run(capsys, "models", "import", str(gguf_file), "--name", "mine")
    assert code == 2
    assert "already in the store" in one_error_line(err)
    assert len(Store().entries()) == 1
    assert len(list(Store().root.glob("*.gguf"))) == 1
    assert not list(Store().root.glob(".import-*"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a model\n" * 10, "not a GGUF"),
        (None, "truncated"),
        (b"", "not a GGUF"),
    ],
)
def test_import_refuses_bad_files(home, gguf_file, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content if content is not None else gguf_file.read_bytes()[:-100])
    code, _, err = cli_run(capsys, "models", "import", str(bad))
    assert code == 3
    assert message in one_error_line(err)
    assert Store().entries() == []
    assert not Store().root.exists() or not list(Store().root.glob("*.gguf"))


def test_import_missing_file_and_vocab_only(home, tmp_path, capsys):
    code, _, err = cli_run(capsys, "models", "import", str(tmp_path / "nope.gguf"))
    assert code == 3 and "not found" in one_error_line(err)
    vocab = (
        sorted(Path("/work/shared/vocab").glob("*.gguf"))
        if Path("/work/shared/vocab").is_dir()
        else []
    )
    if vocab:
        code, _, err = cli_run(capsys, "models", "import", str(vocab[0]))
        assert code == 3 and "no weights" in one_error_line(err)


def test_invalid_name(home, gguf_file, capsys):
    code, _, err = cli_run(capsys, "models", "import", str(gguf_file), "--name", "../evil")
    assert code == 2 and "invalid model name" in one_error_line(err)


def test_unknown_names_suggest(home, gguf_file, capsys):
    assert cli_run(capsys, "models", "import", str(gguf_file), "--name", "my-model")[0] == 0
    with pytest.raises(UsageError, match="did you mean bayling-2-8b"):
        resolve_model("bayling-2-8")
    with pytest.raises(UsageError, match="did you mean my-model"):
        resolve_model("my-modle")
    code, _, err = cli_run(capsys, "models", "rm", "bayling2-7b")
    assert code == 2 and "did you mean bayling-2-7b" in one_error_line(err)
    code, _, err = cli_run(capsys, "models", "show", "nothing-like-it")
    assert code == 2 and "unknown model" in one_error_line(err)


def test_known_but_not_installed(home, capsys):
    with pytest.raises(ModelError, match="run: bayling-local models pull bayling-2-8b"):
        resolve_model("bayling-2-8b")
    with pytest.raises(ModelError, match="models pull bayling-2-7b:Q8_0"):
        resolve_model("bayling-2-7b:Q8_0")
    with pytest.raises(ModelError, match="models pull bayling-2-8b"):
        resolve_model("ICTNLP/bayling-2-llama-3-8b")
    code, out, _ = cli_run(capsys, "models", "show", "bayling-2-8b")
    assert code == 0 and "ICTNLP/bayling-2-llama-3-8b" in out and "models pull bayling-2-8b" in out


def test_resolve_paths_and_missing_files(home, gguf_file, capsys):
    assert resolve_model(str(gguf_file)).path == gguf_file
    with pytest.raises(ModelError, match="not found"):
        resolve_model(str(gguf_file.parent / "missing.gguf"))
    with pytest.raises(ModelError, match="directory"):
        resolve_model(str(gguf_file.parent) + os.sep)
    assert cli_run(capsys, "models", "import", str(gguf_file), "--name", "gone")[0] == 0
    entry = Store().get("gone")
    (Store().root / entry.file).unlink()
    with pytest.raises(ModelError, match="missing"):
        resolve_model("gone")


def test_empty_store_falls_back_to_the_demo(home, monkeypatch):
    from bayling_local import resolve as resolve_module

    monkeypatch.setattr(resolve_module, "demo_model_path", lambda: None)
    with pytest.raises(ModelError, match="models pull bayling-2-8b"):
        resolve_model(None)
    demo = write_tiny_gguf(home / "demo.gguf")
    monkeypatch.setattr(resolve_module, "demo_model_path", lambda: demo)
    resolved = resolve_model(None)
    assert resolved.is_demo and resolved.path == demo
    assert "models pull bayling-2-8b" in resolved.demo_notice


def test_unwritable_store(home, gguf_file, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    monkeypatch.setenv("BAYLING_LOCAL_DATA_DIR", str(blocker))
    code, _, err = cli_run(capsys, "models", "import", str(gguf_file))
    assert code == 4 and "not writable" in one_error_line(err)
    code, out, err = cli_run(capsys, "models", "list")
    assert code == 0 and "no models installed" in err


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions"
)
def test_read_only_store(home, gguf_file, capsys):
    root = Store().root
    root.mkdir(parents=True)
    root.chmod(0o555)
    try:
        code, _, err = cli_run(capsys, "models", "import", str(gguf_file))
        assert code == 4 and "not writable" in one_error_line(err)
    finally:
        root.chmod(0o755)


def test_damaged_manifest(home, gguf_file, capsys):
    root = Store().root
    root.mkdir(parents=True)
    (root / "manifest.json").write_text("{ not json")
    code, _, err = cli_run(capsys, "models", "list")
    assert code == 3 and "damaged" in one_error_line(err)


def _import_many(args: tuple[str, str, str, int]) -> list[str]:
    data_dir, source, prefix, count = args
    os.environ["BAYLING_LOCAL_DATA_DIR"] = data_dir
    store = Store()
    return [store.add(source, name=f"{prefix}-{i}").name for i in range(count)]


def test_two_processes_add_at_once(home, gguf_file):
    data_dir = os.environ["BAYLING_LOCAL_DATA_DIR"]
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        results = pool.map(
            _import_many, [(data_dir, str(gguf_file), p, 6) for p in ("a", "b")], chunksize=1
        )
    store = Store()
    names = sorted(e.name for e in store.entries())
    assert names == sorted(results[0] + results[1])
    assert len(names) == 12
    files = sorted(p.name for p in store.root.glob("*.gguf"))
    assert files == sorted(e.file for e in store.entries())
    json.loads(store.manifest_path.read_text())  # still whole


def test_aliases_and_hub_ids_find_installed_models(home, gguf_file, capsys):
    assert cli_run(capsys, "models", "import", str(gguf_file), "--name", "bayling-2-8b")[0] == 0
    for alias in ("bayling-2-llama-3-8b", "ICTNLP/bayling-2-llama-3-8b", "BayLing-2-8B"):
        assert resolve_model(alias).name == "bayling-2-8b"
