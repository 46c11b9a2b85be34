"""Every bad input and fault of issue #15, run against the real ``bayling-local`` command.

Each case asserts the promise: exactly one line on stderr (``bayling-local: error: ...``), the
documented exit code, no traceback, and the user's files exactly as they were. The model is the
bundled demo GGUF (it loads in milliseconds); cases that need a special file build it here.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "bayling_local" / "demo" / "bayling-demo.gguf"


def bayling(
    *args: str | bytes,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    # The demo model by path: it runs without the "no model is installed" notice.
    environ = {**os.environ, "BAYLING_LOCAL_MODEL": str(DEMO), **(env or {})}
    environ.pop("PYTHONUNBUFFERED", None)  # as users run it: buffered stdout (see the pipe test)
    return subprocess.run(
        [sys.executable, "-m", "bayling_local", *args],
        input=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=environ,
        cwd=cwd,
        timeout=timeout,
    )


def one_line(result: subprocess.CompletedProcess[bytes], code: int, *fragments: str) -> str:
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == code, err
    assert "Traceback" not in err, err
    assert err.startswith("bayling-local: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def snapshot(*paths: Path) -> dict[Path, tuple[bytes, int] | None]:
    """Content and mode of each path, to show afterwards that nothing changed."""
    state: dict[Path, tuple[bytes, int] | None] = {}
    for path in paths:
        st = path.lstat() if path.is_symlink() or path.exists() else None
        if st is None:
            state[path] = None
        elif stat.S_ISREG(st.st_mode):
            state[path] = (path.read_bytes(), stat.S_IMODE(st.st_mode))
        else:
            state[path] = (b"", st.st_mode)
    return state


# --- GGUF files with one metadata string changed in place -----------------------------------


def patch_gguf_string(src: Path, dst: Path, key: str, new_value: bytes) -> Path:
    """Copy ``src`` with the string value of ``key`` replaced by ``new_value`` padded with
    spaces to the same length (so every offset in the file stays valid)."""
    data = bytearray(src.read_bytes())
    encoded = key.encode()
    marker = struct.pack("<Q", len(encoded)) + encoded + struct.pack("<I", 8)
    at = data.index(marker) + len(marker)
    (length,) = struct.unpack_from("<Q", data, at)
    assert len(new_value) <= length, (len(new_value), length)
    data[at + 8 : at + 8 + length] = new_value.ljust(length, b" ")
    dst.write_bytes(bytes(data))
    return dst


# --- the table --------------------------------------------------------------------------------


@dataclass
class Case:
    """One bad input: the command, what it must say and return, the files it must not touch."""

    name: str
    args: list[str | bytes]
    code: int
    fragments: tuple[str, ...] = ()
    stdin: bytes = b""
    env: dict[str, str] = field(default_factory=dict)
    settings: str | None = None  # settings.toml content
    manifest: bytes | None = None  # manifest.json content (its path is kept untouched)
    files: dict[str, bytes] = field(default_factory=dict)  # files in the work dir


NESTED = b"[" * 100_000 + b"]" * 100_000
CASES = [
    Case(
        "threads zero flag", ["translate", "--threads", "0", "hi"], 2, ("--threads 0", "at least 1")
    ),
    Case("max_tokens 0 flag", ["translate", "--max-tokens", "0", "hi"], 2, ("--max-tokens 0",)),
    Case(
        "max_tokens 0 env",
        ["translate", "hi"],
        2,
        ("BAYLING_LOCAL_MAX_TOKENS=0: max_tokens must be at least 1",),
        env={"BAYLING_LOCAL_MAX_TOKENS": "0"},
    ),
    Case(
        "max_tokens -3 settings",
        ["translate", "hi"],
        2,
        ("settings.toml: max_tokens = -3: max_tokens must be at least 1",),
        settings="max_tokens = -3\n",
    ),
    Case(
        "negative temperature env",
        ["translate", "hi"],
        2,
        ("BAYLING_LOCAL_TEMPERATURE=-1: temperature must be between 0 and 5",),
        env={"BAYLING_LOCAL_TEMPERATURE": "-1"},
    ),
    Case(
        "temperature inf env",
        ["translate", "hi"],
        2,
        ("BAYLING_LOCAL_TEMPERATURE=inf", "finite"),
        env={"BAYLING_LOCAL_TEMPERATURE": "inf"},
    ),
    Case(
        "top_p nan settings",
        ["translate", "hi"],
        2,
        ("top_p = nan", "finite"),
        settings="top_p = nan\n",
    ),
    Case("top_p zero settings", ["translate", "hi"], 2, ("top_p = 0",), settings="top_p = 0\n"),
    Case("context 0 flag", ["translate", "--context", "0", "hi"], 2, ("at least 64",)),
    Case("context -5 flag", ["translate", "--context", "-5", "hi"], 2, ("--context -5", "64")),
    Case(
        "context -5 env",
        ["translate", "hi"],
        2,
        ("BAYLING_LOCAL_CONTEXT=-5",),
        env={"BAYLING_LOCAL_CONTEXT": "-5"},
    ),
    Case(
        "beam 99 env",
        ["translate", "hi"],
        2,
        ("BAYLING_LOCAL_BEAM=99: beam must be at most 16",),
        env={"BAYLING_LOCAL_BEAM": "99"},
    ),
    Case(
        "parallel 0 settings",
        ["translate", "hi"],
        2,
        ("parallel = 0",),
        settings="parallel = 0\n",
    ),
    Case(
        "instruction_lang fr env",
        ["translate", "hi"],
        2,
        ("BAYLING_LOCAL_INSTRUCTION_LANG=fr", "en, zh"),
        env={"BAYLING_LOCAL_INSTRUCTION_LANG": "fr"},
    ),
    Case(
        "source equals target", ["translate", "-s", "en", "-t", "English", "hi"], 2, ("-s and -t",)
    ),
    Case("bench -p 0", ["bench", "-p", "0"], 2, ("--prompt-tokens",)),
    Case("bench -r 0", ["bench", "-r", "0"], 2, ("--repetitions",)),
    Case("bench -n 0", ["bench", "-n", "0"], 2, ("--gen-tokens",)),
    Case("nested JSON to prompt", ["prompt", "--format", "bayling"], 2, ("nested",), stdin=NESTED),
    Case(
        "prompt with a non-list",
        ["prompt", "--format", "bayling"],
        2,
        ("JSON list",),
        stdin=b'{"role": "user"}',
    ),
    Case("non-UTF-8 argument", ["translate", b"caf\xe9"], 2, ("argument 2", "UTF-8")),
    Case(
        "binary input",
        ["translate", "-i", "bin.txt"],
        2,
        ("binary",),
        files={"bin.txt": b"\x7fELF\0\0\1"},
    ),
    Case(
        "manifest not UTF-8",
        ["models", "list"],
        3,
        ("manifest.json is damaged", "not UTF-8", "left as it is"),
        manifest=b'{"format": 1, "models": [\xff]}',
    ),
    Case(
        "manifest field of the wrong type",
        ["models", "rm", "m"],
        3,
        ("manifest.json is damaged", "size"),
        manifest=json.dumps(
            {
                "format": 1,
                "models": [
                    {
                        "name": "m",
                        "file": "m.gguf",
                        "size": "big",
                        "sha256": "0",
                        "source": "import:/x",
                        "quantization": "F32",
                        "prompt_format": "bayling",
                        "architecture": "llama",
                        "added": "2026",
                    }
                ],
            }
        ).encode(),
    ),
    Case(
        "manifest that is a list",
        ["translate", "hi"],
        3,
        ("manifest.json is damaged", "top level"),
        manifest=b"[]",
        env={"BAYLING_LOCAL_MODEL": ""},  # the default model comes from the store
    ),
    Case(
        "models import over a damaged manifest",
        ["models", "import", str(DEMO)],
        3,
        ("manifest.json is damaged", "left as it is"),
        manifest=b'{"format": 1, "models": {"oops": 1}}',
    ),
    Case(
        "models import of a FIFO",
        ["models", "import", "fifo.gguf"],
        3,
        ("not a regular file",),
    ),
    Case(
        "quantize onto its own input",
        ["quantize", str(DEMO), str(DEMO), "Q8_0", "--force"],
        4,
        ("refusing to write", "input file"),
    ),
    Case("-o a directory", ["translate", "-o", ".", "hi"], 4, ("is a directory",)),
    Case(
        "-o in a missing directory",
        ["translate", "-o", "nowhere/out.txt", "hi"],
        4,
        ("directory does not exist",),
    ),
    Case("-i a missing file", ["translate", "-i", "missing.txt"], 2, ("not found",)),
    Case("-i a directory", ["translate", "-i", "."], 2, ("folder",)),
    Case(
        "empty input",
        ["translate", "-i", "empty.txt"],
        2,
        ("no text",),
        files={"empty.txt": b"  \n"},
    ),
    Case(
        "models rm known but not installed",
        ["models", "rm", "bayling-2-7b"],
        2,
        ("'bayling-2-7b' is not installed, so there is nothing to remove",),
    ),
    Case("models rm unknown", ["models", "rm", "bayling-2-7"], 2, ("did you mean bayling-2-7b",)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line(case: Case, tmp_path: Path) -> None:
    config = Path(os.environ["BAYLING_LOCAL_CONFIG_DIR"])
    models = Path(os.environ["BAYLING_LOCAL_DATA_DIR"]) / "models"
    watched = []
    if case.settings is not None:
        config.mkdir(parents=True, exist_ok=True)
        (config / "settings.toml").write_text(case.settings)
        watched.append(config / "settings.toml")
    if case.manifest is not None:
        models.mkdir(parents=True, exist_ok=True)
        (models / "manifest.json").write_bytes(case.manifest)
        watched.append(models / "manifest.json")
    if "fifo.gguf" in case.args:
        os.mkfifo(tmp_path / "fifo.gguf")
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
        watched.append(tmp_path / name)
    before = snapshot(*watched)
    result = bayling(*case.args, stdin=case.stdin, env=case.env, cwd=tmp_path)
    one_line(result, case.code, *case.fragments)
    assert result.stdout == b""
    assert snapshot(*watched) == before


# --- outputs ----------------------------------------------------------------------------------


def test_output_onto_its_own_input_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("Good morning.\n")
    os.link(source, tmp_path / "hard.txt")
    (tmp_path / "sym.txt").symlink_to(source)
    before = snapshot(source)
    for out in ("f.txt", "./f.txt", str(source), "hard.txt", "sym.txt"):
        result = bayling("translate", "-t", "de", "-i", "f.txt", "-o", out, cwd=tmp_path)
        one_line(result, 4, "refusing to write", "input file")
    assert snapshot(source) == before


def test_output_through_a_symlink_writes_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target.name)
    result = bayling("translate", "--max-tokens", "4", "-t", "de", "-o", str(link), "Good morning.")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == target.name  # the link is kept
    assert target.read_text() != "old\n" and target.read_text().endswith("\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # and the target keeps its mode


def test_output_to_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to("made.txt")
    result = bayling("translate", "--max-tokens", "4", "-t", "de", "-o", str(link), "Good morning.")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and (tmp_path / "made.txt").read_text()


def test_output_to_a_fifo_is_streamed(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = bayling("translate", "--max-tokens", "4", "-t", "de", "-o", str(fifo), "Good morning.")
    reader.join(60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still a FIFO, not replaced by a file
    assert received and received[0].endswith(b"\n") and len(received[0]) > 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_to_dev_full_says_no_space_and_keeps_the_device() -> None:
    before = os.stat("/dev/full")
    result = bayling("translate", "-t", "de", "-o", "/dev/full", "Good morning.")
    one_line(result, 4, "no space left", "/dev/full")
    after = os.stat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_output_to_dev_stdout_streams(tmp_path: Path) -> None:
    result = bayling(
        "translate", "--max-tokens", "4", "-t", "de", "-o", "/dev/stdout", "Good morning."
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"\n") and len(result.stdout) > 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_stdout_is_one_line_exit_4() -> None:
    with open("/dev/full", "wb") as full:
        result = bayling("languages", stdout=full.fileno())
    one_line(result, 4, "no space left")
    with open("/dev/full", "wb") as full:
        result = bayling(
            "translate", "--max-tokens", "4", "-t", "de", "Good morning.", stdout=full.fileno()
        )
    one_line(result, 4, "no space left")


def test_broken_pipe_exits_quietly_with_141(tmp_path: Path) -> None:
    messages = json.dumps([{"role": "user", "content": "word " * 300_000}]).encode()
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    producer = subprocess.Popen(
        [sys.executable, "-m", "bayling_local", "prompt", "--format", "bayling"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert producer.stdin is not None and producer.stdout is not None
    producer.stdin.write(messages)
    producer.stdin.close()
    assert producer.stdout.read(10)
    producer.stdout.close()  # like `| head -c 10`
    err = producer.stderr.read() if producer.stderr else b""
    assert producer.wait(60) == 141
    assert err == b""


def test_new_outputs_follow_the_umask_and_existing_ones_keep_their_mode(tmp_path: Path) -> None:
    fresh = tmp_path / "new.txt"
    script = "import os, sys; os.umask(0o027); from bayling_local.cli import main; sys.exit(main())"
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    command = [sys.executable, "-c", script, "translate", "--max-tokens", "4", "-t", "de", "-o"]
    done = subprocess.run([*command, str(fresh), "Hi."], capture_output=True, env=environ)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    existing.chmod(0o604)
    done = subprocess.run([*command, str(existing), "Hi."], capture_output=True, env=environ)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604 and existing.read_text() != "old"


# --- threads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "env"])
def test_huge_thread_counts_are_clamped_with_a_notice(how: str) -> None:
    args = ["translate", "--show-prompt", "-t", "de", "Good morning."]  # loads, no decoding
    if how == "flag":
        result = bayling(args[0], "--threads", "100000", *args[1:])
    else:
        result = bayling(*args, env={"BAYLING_LOCAL_THREADS": "100000"})
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert f"using the machine's {os.cpu_count()} cores" in err and "Traceback" not in err
    assert result.stdout.strip()


# --- templates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template, fragment",
    [
        (b"{{ oops", "syntax error"),
        (b"{% for i in range(10**9) %}x{% endfor %}", "range"),
        (
            b"{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
            "ran for",
        ),
        (b"{{ 'x' * 4000000000 }}", "huge"),
        (b"{{ messages[0].content.nope() }}", "cannot be used"),
    ],
)
def test_broken_chat_template_is_one_line_exit_3(
    tmp_path: Path, template: bytes, fragment: str
) -> None:
    model = patch_gguf_string(DEMO, tmp_path / "broken.gguf", "tokenizer.chat_template", template)
    result = bayling("translate", "-m", str(model), "-t", "de", "Good morning.", timeout=60)
    one_line(result, 3, "broken.gguf", fragment, "--prompt-format")
    assert result.stdout == b""
    # the offered way out works
    result = bayling(
        "translate",
        "-m",
        str(model),
        "--prompt-format",
        "bayling",
        "--show-prompt",
        "-t",
        "de",
        "Hi",
    )
    assert result.returncode == 0, result.stderr


def test_a_known_models_broken_template_offers_its_own_format() -> None:
    from bayling_local.prompts import ChatTemplateError, select_format

    metadata = {
        "tokenizer.chat_template": "{{ oops",
        "general.name": "bayling-2-7b",
        "_file_name": "b.gguf",
    }
    with pytest.raises(ChatTemplateError, match="b.gguf.*--prompt-format bayling$"):
        select_format(metadata)


# --- the store ---------------------------------------------------------------------------------


def _entry(name: str, file: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "file": file,
        "size": 1,
        "sha256": "0" * 64,
        "source": "import:/x",
        "quantization": "F32",
        "prompt_format": "bayling",
        "architecture": "llama",
        "added": "2026-01-01T00:00:00+00:00",
        **extra,
    }


@pytest.mark.parametrize(
    "file", ["../../../victim.txt", "/abs/victim.txt", "sub/../../victim.txt", ".."]
)
def test_models_rm_never_deletes_outside_the_store(tmp_path: Path, file: str) -> None:
    data = Path(os.environ["BAYLING_LOCAL_DATA_DIR"])
    models = data / "models"
    models.mkdir(parents=True)
    victim = data.parent / "victim.txt"
    victim.write_text("keep me")
    (models / "manifest.json").write_text(
        json.dumps({"format": 1, "models": [_entry("m", file.replace("/abs", str(data.parent)))]})
    )
    before = snapshot(victim, models / "manifest.json")
    result = bayling("models", "rm", "m")
    one_line(result, 3, "manifest.json", "not a file name inside the store")
    assert snapshot(victim, models / "manifest.json") == before


def test_models_import_of_another_architecture_is_refused(tmp_path: Path) -> None:
    other = patch_gguf_string(DEMO, tmp_path / "other.gguf", "general.architecture", b"gemma")
    result = bayling("models", "import", str(other))
    one_line(result, 3, "'gemma' model", "LLaMA-family", "not imported")
    assert bayling("models", "list", "--json").stdout.strip() in (b"[]", b"")


def test_models_import_without_weights_is_refused(tmp_path: Path) -> None:
    data = bytearray(DEMO.read_bytes())
    data[8:16] = struct.pack("<Q", 0)  # tensor count: a vocabulary-only GGUF
    vocab = tmp_path / "vocab.gguf"
    vocab.write_bytes(bytes(data))
    result = bayling("models", "import", str(vocab))
    one_line(result, 3, "no weights")


# --- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_unicode_files_in_other_encodings_are_translated(tmp_path: Path, encoding: str) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes("Good morning.\n".encode(encoding))
    plain = bayling("translate", "--show-prompt", "-t", "de", "Good morning.")
    result = bayling("translate", "--show-prompt", "-t", "de", "-i", str(source))
    assert result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout


# --- quantize on a full disk ------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 2 MiB tmpfs (root only); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_quantize_on_a_full_disk_says_no_space(tiny_disk: Path) -> None:
    out = tiny_disk / "demo.Q8_0.gguf"
    result = bayling("quantize", str(DEMO), str(out), "Q8_0", timeout=300)
    one_line(result, 4, "no space left")
    assert not out.exists() and not [p for p in tiny_disk.iterdir()]  # no partial file left


def test_translate_onto_a_full_disk_keeps_the_old_output(tiny_disk: Path) -> None:
    filler = tiny_disk / "filler"
    out = tiny_disk / "out.txt"
    out.write_text("previous translation\n")
    try:  # fill the disk to the last byte
        with open(filler, "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
    except OSError:
        pass
    result = bayling("translate", "-t", "de", "-o", str(out), "Good morning. " * 20)
    one_line(result, 4, "no space left")
    assert out.read_text() == "previous translation\n"


def test_a_model_with_a_broken_template_is_imported_and_says_how_to_run_it(tmp_path: Path) -> None:
    model = patch_gguf_string(DEMO, tmp_path / "odd.gguf", "tokenizer.chat_template", b"{{ oops")
    imported = bayling("models", "import", str(model), "--name", "odd")
    assert imported.returncode == 0, imported.stderr
    listed = json.loads(bayling("models", "list", "--json").stdout)
    assert listed[0]["prompt_format"].startswith("gguf-template (broken")
    one_line(bayling("translate", "-m", "odd", "-t", "de", "Hi"), 3, "--prompt-format")


def test_imported_models_get_the_umasks_mode() -> None:
    script = "import os, sys; os.umask(0o022); from bayling_local.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", script, "models", "import", str(DEMO), "--name", "demo"],
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    stored = list((Path(os.environ["BAYLING_LOCAL_DATA_DIR"]) / "models").glob("*.gguf"))
    assert len(stored) == 1 and stat.S_IMODE(stored[0].stat().st_mode) == 0o644


def test_quantize_threads_are_clamped_too(tmp_path: Path) -> None:
    out = tmp_path / "demo.Q8_0.gguf"
    result = bayling("quantize", "--threads", "100000", str(DEMO), str(out), "Q8_0")
    assert result.returncode == 0, result.stderr
    assert "using the machine's" in result.stderr.decode() and out.is_file()


def test_a_utf16_document_is_decoded_not_called_binary(tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_bytes("# Title\n\nGood morning.\n".encode("utf-16"))
    out = tmp_path / "notes.de.md"
    result = bayling("translate", "-t", "de", "-i", str(source), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8").startswith("# ")
