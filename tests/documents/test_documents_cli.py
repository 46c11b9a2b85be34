"""``bayling-local translate`` on documents and ``bayling-local tm``, as a user runs them.

Real processes on real tiny models: a folder in and out, stdout carrying only the document,
every bad input answered with one line and its exit code, and a real SIGINT in the middle of a
document that the next run resumes from the translation memory.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.documents import MARKDOWN, SRT, XLIFF12, sample_documents
from tests.support.scripted import Scripted


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    return subprocess.run(
        [sys.executable, "-m", "bayling_local", *args],
        input=b"",
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_line_error(result, code: int, *fragments: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert err.startswith("bayling-local: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def memory_units(home: Path) -> int:
    path = home / "data" / "memory.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


# --- the happy paths -----------------------------------------------------------------------------


def test_markdown_to_stdout_is_only_the_document(tmp_path: Path, scripted_spm: Scripted) -> None:
    source = tmp_path / "README.md"
    source.write_text(MARKDOWN, encoding="utf-8")
    result = run(
        "translate", "-m", str(scripted_spm.gguf), "-t", "de", "-s", "en", "-i", str(source)
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.startswith("---\ntitle: Hallo Welt!\nversion: 2\n---\n# Hallo Welt!\n")
    assert "```bash\nbayling-local translate -i README.md -o LIESMICH.md\n```" in out
    assert b"\x1b" not in result.stdout and b"\x1b" not in result.stderr  # no bar into a pipe
    err = result.stderr.decode().strip().split("\n")
    assert len(err) == 1 and "segments" in err[0] and "0 from memory" in err[0]


def test_folder_in_folder_out(tmp_path: Path, scripted_spm: Scripted) -> None:
    docs = sample_documents()
    source = tmp_path / "site"
    (source / "sub").mkdir(parents=True)
    (source / "README.md").write_bytes(docs["README.md"])
    (source / "sub" / "film.srt").write_bytes(docs["film.srt"])
    (source / "sub" / "report.docx").write_bytes(docs["report.docx"])
    (source / "logo.png").write_bytes(b"\x89PNG")
    out = tmp_path / "site-de"
    result = run(
        "translate", "-m", str(scripted_spm.gguf), "-t", "de", "-s", "en",
        "-i", str(source), "-o", str(out), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["README.md", "sub/film.srt", "sub/report.docx"]
    summary = json.loads(result.stdout)
    assert [Path(d["input"]).name for d in summary["documents"]] == [
        "README.md",
        "film.srt",
        "report.docx",
    ]
    assert summary["skipped"] == ["logo.png"]
    assert "Hallo Welt!" in (out / "sub" / "film.srt").read_text()
    # An output folder inside the input folder is not walked into on the next run.
    again = run(
        "translate", "-m", str(scripted_spm.gguf), "-t", "de", "-s", "en",
        "-i", str(source), "-o", str(source / "de"),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert not (source / "de" / "de").exists()


def test_json_lists_the_segments_that_needed_the_second_pass(
    tmp_path: Path, tiny_spm_gguf: Path
) -> None:
    source = tmp_path / "doc.txt"
    source.write_text("Machine translation is here.\nNo term in this line.\n", encoding="utf-8")
    glossary = tmp_path / "terms.csv"
    glossary.write_text("machine translation,Maschinenübersetzung\n", encoding="utf-8")
    result = run(
        "translate", "-m", str(tiny_spm_gguf), "-t", "de", "-s", "en", "--max-tokens", "12",
        "-i", str(source), "-o", str(tmp_path / "out.txt"), "--glossary", str(glossary), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["terms_required"] == 1 and summary["terms_hit_final"] == 1
    assert summary["terms_hit_rate_final"] == 1.0
    needed = {p["source"] for p in summary["second_pass"]}
    assert needed <= {"Machine translation is here."}
    assert (summary["terms_hit_first"] == 1) == (not needed)
    assert "Maschinenübersetzung" in (tmp_path / "out.txt").read_text().split("\n")[0]


# --- Ctrl-C and resume ---------------------------------------------------------------------------


def test_sigint_keeps_finished_segments_and_the_next_run_resumes(
    tmp_path: Path, tiny_spm_gguf: Path, isolated_user_dirs: Path
) -> None:
    source = tmp_path / "long.md"
    source.write_text(
        "\n\n".join(f"Paragraph number {i} of a long document." for i in range(120)) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "long.de.md"
    command = [
        sys.executable, "-m", "bayling_local", "translate", "-m", str(tiny_spm_gguf),
        "-t", "de", "-s", "en", "--max-tokens", "8", "-i", str(source), "-o", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while memory_units(isolated_user_dirs) == 0 and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    line = err.decode()
    assert line.startswith("bayling-local: error: interrupted") and line.count("\n") == 1, line
    assert "kept in the translation memory" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.md"]  # no partial file
    kept = memory_units(isolated_user_dirs)
    assert 0 < kept < 120

    resumed = subprocess.run([*command, "--json"], capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["cached"] >= kept and summary["translated"] == 120 - summary["cached"]
    first_bytes = out.read_bytes()

    again = subprocess.run([*command, "--json"], capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["translated"] == 0
    assert out.read_bytes() == first_bytes

    fresh = subprocess.run([*command, "--json", "--no-cache"], capture_output=True, timeout=300)
    assert json.loads(fresh.stdout)["translated"] == 120


# --- bad input: one line, the right exit code ----------------------------------------------------


def test_bad_inputs(tmp_path: Path, scripted_spm: Scripted) -> None:
    model = str(scripted_spm.gguf)
    slides = tmp_path / "slides.pptx"
    slides.write_bytes(b"PK")
    one_line_error(
        run("translate", "-m", model, "-t", "de", "-i", str(slides), "-o", str(tmp_path / "o")),
        2,
        "unsupported format '.pptx'",
        ".md",
        ".xliff",
    )
    broken = tmp_path / "broken.xlf"
    broken.write_text(XLIFF12.replace("</body>", ""), encoding="utf-8")
    one_line_error(
        run("translate", "-m", model, "-t", "de", "-i", str(broken), "-o", str(tmp_path / "o.xlf")),
        2,
        "line 16",
    )
    film = tmp_path / "film.srt"
    film.write_text(SRT, encoding="utf-8")
    one_line_error(
        run("translate", "-m", model, "-t", "de", "-i", str(film), "-o", str(film)),
        4,
        "is the input",
    )
    link = tmp_path / "link.srt"
    link.symlink_to(film)
    one_line_error(run("translate", "-m", model, "-t", "de", "-i", str(film), "-o", str(link)), 4)
    assert film.read_text() == SRT
    glossary = tmp_path / "terms.tsv"
    glossary.write_text("source\ttarget\nweather\tWetter\nwalk\n", encoding="utf-8")
    one_line_error(
        run(
            "translate",
            "-m",
            model,
            "-t",
            "de",
            "-i",
            str(film),
            "-o",
            str(tmp_path / "o.srt"),
            "--glossary",
            str(glossary),
        ),  # fmt: skip
        2,
        "terms.tsv line 3",
    )
    one_line_error(
        run(
            "translate",
            "-m",
            model,
            "-t",
            "de",
            "-i",
            str(film),
            "-o",
            str(tmp_path / "no" / "o.srt"),
        ),
        4,
        "does not exist",
    )
    one_line_error(run("translate", "-m", model, "-t", "de", "-i", str(film), "--json"), 2, "-o")
    one_line_error(
        run("translate", "-m", model, "-t", "de", "-i", str(tmp_path / "missing.md")),
        2,
        "not found",
    )
    assert not (tmp_path / "o.srt").exists() and not (tmp_path / "o.xlf").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output(tmp_path: Path, scripted_spm: Scripted) -> None:
    film = tmp_path / "film.srt"
    film.write_text(SRT, encoding="utf-8")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        one_line_error(
            run(
                "translate",
                "-m",
                str(scripted_spm.gguf),
                "-t",
                "de",
                "-i",
                str(film),
                "-o",
                str(locked / "o.srt"),
            ),
            4,
        )
    finally:
        locked.chmod(0o700)


# --- tm ------------------------------------------------------------------------------------------


def test_tm_export_import_stats_clear(tmp_path: Path, scripted_spm: Scripted) -> None:
    film = tmp_path / "film.srt"
    film.write_text(SRT, encoding="utf-8")
    assert (
        run(
            "translate",
            "-m",
            str(scripted_spm.gguf),
            "-t",
            "de",
            "-s",
            "en",
            "-i",
            str(film),
            "-o",
            str(tmp_path / "o.srt"),
        ).returncode
        == 0
    )
    stats = json.loads(run("tm", "stats", "--json").stdout)
    assert stats["units"] == stats["machine"] == 2
    assert stats["pairs"] == [{"source": "en", "target": "de", "units": 2}]
    exported = tmp_path / "memory.tmx"
    result = run("tm", "export", str(exported))
    assert result.returncode == 0 and "exported 2 units" in result.stderr.decode()
    from xml.etree import ElementTree

    units = ElementTree.parse(exported).getroot().iter("tu")
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    pairs = [{v.get(lang): v.findtext("seg") for v in unit.iter("tuv")} for unit in units]
    assert {p["de"] for p in pairs} == {"Hallo Welt!"}
    assert {p["en"] for p in pairs} == {
        "The weather is nice today, so we go for a walk.",
        "See you tomorrow.",
    }
    cleared = run("tm", "clear", "--yes")
    assert cleared.returncode == 0 and "deleted 2 units" in cleared.stderr.decode()
    one_line_error(run("tm", "clear"), 2, "--yes")
    assert json.loads(run("tm", "stats", "--json").stdout)["units"] == 0
    imported = run("tm", "import", str(exported))
    assert imported.returncode == 0 and "imported 2 units" in imported.stderr.decode()
    # Imported (human) units are used before the model: nothing is translated.
    again = run(
        "translate", "-m", str(scripted_spm.gguf), "-t", "de", "-s", "en", "-i", str(film),
        "-o", str(tmp_path / "o2.srt"), "--json",
    )  # fmt: skip
    assert json.loads(again.stdout)["cached"] == 2
    assert (tmp_path / "o2.srt").read_bytes() == (tmp_path / "o.srt").read_bytes()
    broken = tmp_path / "broken.tmx"
    broken.write_text("<tmx><body>", encoding="utf-8")
    one_line_error(run("tm", "import", str(broken)), 2, "line 1")


def test_progress_bar_only_on_a_terminal(tmp_path: Path, scripted_spm: Scripted) -> None:
    """stderr a terminal: a rich bar (segments, cached, tokens/s); stdout still only the document."""
    import pty

    source = tmp_path / "film.srt"
    source.write_text(SRT, encoding="utf-8")
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bayling_local", "translate", "-m", str(scripted_spm.gguf),
         "-t", "de", "-s", "en", "-i", str(source)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )  # fmt: skip
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    out, _ = process.communicate(timeout=60)
    os.close(master)
    assert process.returncode == 0, seen
    assert b"\x1b[" in seen and b"cached" in seen and b"tok/s" in seen  # the bar was drawn
    assert b"2 segments; 2 translated, 0 from memory" in seen  # and the summary line
    assert out.startswith(b"1\n00:00:01,000 --> 00:00:03,500\n") and b"\x1b" not in out
