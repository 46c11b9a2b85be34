"""``eval translate``, ``eval bayling80``, ``eval quant`` and ``eval compare`` on tiny models.

The scripted model always answers ``Hallo Welt!``, so its scores are known; the random tiny
checkpoint is converted and quantized by ``convert/`` for the report card.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling_local.cli import main
from tests.support.scripted import Scripted

sacrebleu = pytest.importorskip("sacrebleu")
pytest.importorskip("matplotlib")

# The first lines of WMT22 en-de (shared/data/wmt22/ende.src and .ref), cut short.
SRC = [
    "Police arrest 15 after violent protest outside UK refugee hotel",
    "The incident happened at a hotel in Knowsley.",
    "Hello world!",
]
REF = [
    "Polizei verhaftet 15 Menschen nach gewalttätigen Protesten vor einer britischen Flüchtlingsunterkunft",
    "Der Vorfall ereignete sich in einem Hotel in Knowsley.",
    "Hallo Welt!",
]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def test_set(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "ende.src", SRC), write(tmp_path / "ende.ref", REF)


def test_translate_end_to_end(scripted_spm: Scripted, test_set, tmp_path: Path, capsys) -> None:
    src, ref = test_set
    out_dir = tmp_path / "runs" / "greedy"
    (tmp_path / "runs").mkdir()
    code, out, err = cli(
        capsys, "eval", "translate", "-m", str(scripted_spm.gguf), "-s", "en", "-t", "de",
        "--src", str(src), "--ref", str(ref), "--parallel", "2", "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert code == 0, err
    hyps = (out_dir / "hypotheses.txt").read_text().splitlines()
    assert hyps == [scripted_spm.text] * 3
    expected = sacrebleu.metrics.BLEU(tokenize="13a").corpus_score(hyps, [REF]).score
    scores = json.loads((out_dir / "scores.json").read_text())
    assert scores["bleu"] == pytest.approx(expected, abs=1e-3) and "tok:13a" in scores["signature"]
    assert json.loads(out)["bleu"] == scores["bleu"]
    run = json.loads((out_dir / "run.json").read_text())
    assert run["kind"] == "translate" and run["direction"] == "en-de" and run["segments"] == 3
    assert run["decoding"]["beam"] == 1 and run["decoding"]["context"] == 0
    assert run["model"]["path"] == str(scripted_spm.gguf) and run["model"]["quantization"] == "F32"
    assert run["timing"]["seconds"] > 0 and run["timing"]["generated_tokens"] > 0
    assert run["finish_reasons"] == {"stop": 3}

    # The same folder again is refused, and what it holds is kept.
    code, out, err = cli(
        capsys, "eval", "translate", "-m", str(scripted_spm.gguf), "-s", "en", "-t", "de",
        "--src", str(src), "--ref", str(ref), "--out", str(out_dir),
    )  # fmt: skip
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert (out_dir / "hypotheses.txt").read_text().splitlines() == hyps

    # With context: each segment sees the earlier ones; the scripted model still says its line.
    ctx_dir = tmp_path / "runs" / "context"
    code, out, err = cli(
        capsys, "eval", "translate", "-m", str(scripted_spm.gguf), "-s", "en", "-t", "de",
        "--src", str(src), "--ref", str(ref), "--history", "2", "--out", str(ctx_dir),
    )  # fmt: skip
    assert code == 0, err
    assert "BLEU" in out and "tok:13a" in out
    assert json.loads((ctx_dir / "run.json").read_text())["decoding"]["context"] == 2

    # compare: a table on stdout and a PNG.
    png = tmp_path / "compare.png"
    code, out, err = cli(
        capsys,
        "eval",
        "compare",
        str(out_dir),
        str(ctx_dir),
        "--png",
        str(png),
        "--md",
        str(tmp_path / "c.md"),
    )
    assert code == 0, err
    rows = [
        line
        for line in out.splitlines()
        if line.startswith("| greedy") or line.startswith("| context")
    ]
    assert len(rows) == 2 and f"{expected:.2f}" in rows[0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "c.md").read_text() == out


def test_translate_bad_input(scripted_spm: Scripted, test_set, tmp_path: Path, capsys) -> None:
    src, ref = test_set
    short = write(tmp_path / "short.ref", REF[:2])
    base = [
        "eval",
        "translate",
        "-m",
        str(scripted_spm.gguf),
        "-s",
        "en",
        "-t",
        "de",
        "--src",
        str(src),
    ]
    code, _, err = cli(capsys, *base, "--ref", str(short), "--out", str(tmp_path / "r1"))
    assert code == 2 and "3 lines" in err and "has 2" in err and err.count("\n") == 1
    code, _, err = cli(
        capsys, *base[:-4], "-t", "xx-nonsense", "--src", str(src), "--ref", str(ref)
    )
    assert code == 2 and "unknown language" in err
    code, _, err = cli(
        capsys, *base, "--ref", str(ref), "--beam", "0", "--out", str(tmp_path / "r2")
    )
    assert code == 2 and "--beam 0" in err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_compare_refuses_what_is_not_a_run(tmp_path: Path, capsys) -> None:
    code, _, err = cli(capsys, "eval", "compare", str(tmp_path))
    assert code == 2 and "run.json is missing" in err and err.count("\n") == 1


def test_bayling80_answers_in_bayling_layout(
    scripted_spm: Scripted, tmp_path: Path, capsys
) -> None:
    questions = tmp_path / "q"
    questions.mkdir()
    # Two questions of each BayLing-80 file (shared/data/bayling-80/), shortened.
    (questions / "BayLing-80.singleturn.en.jsonl").write_text(
        '{"question_id": 1, "text": "How can I improve my time management skills?", "category": "generic"}\n'
        '{"question_id": 2, "text": "What are the most effective ways to deal with stress?", "category": "generic"}\n'
    )
    (questions / "BayLing-80.multiturn.zh.jsonl").write_text(
        '{"question_id": 1, "text": ["我该如何提高我的时间管理技能？", "推荐一些资源或书籍。"], "category": "generic"}\n',
        encoding="utf-8",
    )
    out_dir = tmp_path / "answers"
    code, out, err = cli(
        capsys,
        "eval",
        "bayling80",
        "-m",
        str(scripted_spm.gguf),
        "--questions",
        str(questions),
        "--out",
        str(out_dir),
    )
    assert code == 0, err
    single = [
        json.loads(line)
        for line in (out_dir / "BayLing-80.singleturn.en.jsonl").read_text().splitlines()
    ]
    assert [r["question_id"] for r in single] == [1, 2]
    assert all(r["text"] == scripted_spm.text and r["category"] == "generic" for r in single), (
        single
    )
    multi = json.loads((out_dir / "BayLing-80.multiturn.zh.jsonl").read_text(encoding="utf-8"))
    assert multi["text"] == [scripted_spm.text, scripted_spm.text] and multi["model_id"]
    run = json.loads((out_dir / "run.json").read_text())
    assert run["kind"] == "bayling80"
    assert run["sampling"]["repeat_penalty"] == 1.05  # the settings' default, used again

    # Sampled with a repeat penalty: the path that crashed before the sampler fix.
    code, _, err = cli(
        capsys, "eval", "bayling80", "-m", str(scripted_spm.gguf), "--questions", str(questions),
        "--out", str(tmp_path / "sampled"), "--temperature", "0.8", "--seed", "3",
        "--repeat-penalty", "1.3",
    )  # fmt: skip
    assert code == 0, err
    sampled = json.loads((tmp_path / "sampled" / "run.json").read_text())["sampling"]
    assert sampled["repeat_penalty"] == 1.3 and sampled["temperature"] == 0.8
    answers = (tmp_path / "sampled" / "BayLing-80.multiturn.zh.jsonl").read_text(encoding="utf-8")
    assert len(json.loads(answers)["text"]) == 2

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 1}\n')
    code, _, err = cli(
        capsys,
        "eval",
        "bayling80",
        "-m",
        str(scripted_spm.gguf),
        "--questions",
        str(bad),
        "--out",
        str(tmp_path / "a2"),
    )
    assert code == 2 and "bad.jsonl:1" in err and err.count("\n") == 1
    code, _, err = cli(
        capsys,
        "eval",
        "bayling80",
        "-m",
        str(scripted_spm.gguf),
        "--questions",
        str(questions),
        "--out",
        str(out_dir),
    )
    assert code == 2 and "already exists" in err


def test_report_card_on_two_quantizations(
    tiny_spm_checkpoint: Path, test_set, tmp_path: Path, capsys
) -> None:
    src, ref = test_set
    out_dir = tmp_path / "card"
    code, out, err = cli(
        capsys, "eval", "quant", "-m", str(tiny_spm_checkpoint), "--quants", "F16,Q8_0",
        "--test", "en-de", str(src), str(ref), "--test", "de-en", str(ref), str(src),
        "--out", str(out_dir), "--max-tokens", "6", "--threads", "1", "-q",
    )  # fmt: skip
    assert code == 0, err
    card = json.loads((out_dir / "report.json").read_text())
    assert card["baseline"] == "F16" and card["quants"] == ["F16", "Q8_0"]
    assert card["directions"] == ["en-de", "de-en"]
    assert card["sizes"]["Q8_0"] < card["sizes"]["F16"]
    for cell in card["cells"]:
        assert cell["tokens_per_second"] > 0
        if cell["quant"] == "F16":  # F16 against itself changes nothing
            assert cell["changed"] == 0 and cell["kl"] == 0 and cell["bleu_drop"] == 0
            assert cell["chrf_drop"] == 0 and not cell["flagged"]
        else:
            assert 0 < cell["kl"] < 0.5  # Q8_0 drifts, a little
            assert 0 <= cell["changed"] <= 1
            assert cell["flagged"] == (cell["chrf_drop"] > 1.0)
        outputs = (out_dir / f"{cell['quant']}.{cell['direction']}.txt").read_text().splitlines()
        base = (out_dir / f"F16.{cell['direction']}.txt").read_text().splitlines()
        assert cell["changed"] == pytest.approx(
            sum(a != b for a, b in zip(outputs, base)) / 3, abs=1e-3
        )
    for direction, pick in card["recommended"].items():
        flagged = next(
            c for c in card["cells"] if c["direction"] == direction and c["quant"] == "Q8_0"
        )["flagged"]
        assert pick == ("F16" if flagged else "Q8_0")
    table = (out_dir / "report.md").read_text()
    assert table == out and "| en-de | Q8_0 |" in table and "| direction | use | why |" in table
    assert (out_dir / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert (out_dir / "F16.gguf").is_file() and (out_dir / "Q8_0.gguf").is_file()


def test_report_card_bad_input(tiny_spm_gguf: Path, test_set, tmp_path: Path, capsys) -> None:
    src, ref = test_set
    base = ["eval", "quant", "-m", str(tiny_spm_gguf), "--test", "en-de", str(src), str(ref)]
    code, _, err = cli(capsys, *base, "--quants", "Q9_X", "--out", str(tmp_path / "c"))
    assert code == 2 and "unknown quant type" in err
    code, _, err = cli(capsys, *base[:-4], "--quants", "Q8_0", "--out", str(tmp_path / "c"))
    assert code == 2 and "--test" in err
    (tmp_path / "exists").mkdir()
    code, _, err = cli(capsys, *base, "--quants", "Q8_0", "--out", str(tmp_path / "exists"))
    assert code == 2 and "already exists" in err and err.count("\n") == 1


def test_translate_ctrl_c_leaves_no_run_folder(scripted_spm: Scripted, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    src = write(tmp_path / "long.src", [f"Sentence number {i}." for i in range(20000)])
    ref = write(tmp_path / "long.ref", [f"Satz Nummer {i}." for i in range(20000)])
    out_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "bayling_local", "eval", "translate", "-m", str(scripted_spm.gguf),
         "-s", "en", "-t", "de", "--src", str(src), "--ref", str(ref), "--out", str(out_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not out_dir.exists() and time.monotonic() < deadline:  # the folder appears once the
        time.sleep(0.05)  # model is loaded and translating starts
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert err.decode().count("\n") == 1 and "interrupted" in err.decode()
    assert not out_dir.exists()
