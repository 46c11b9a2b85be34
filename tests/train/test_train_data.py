"""The instruction-data builders of train/ on a WMT22 slice (tests/data/train)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from bayling_local.errors import InputError, UsageError
from bayling_local.languages import resolve
from bayling_local.prompts import Message
from bayling_local.translate import build_instruction
from bayling_train import datagen
from bayling_train.cli import main
from bayling_train.conversations import Example, read_jsonl, write_jsonl
from bayling_train.datagen import BuildOptions, ParallelRecord

DATA = Path(__file__).resolve().parents[1] / "data" / "train"
MULTIWAY = f"en={DATA / 'enzhja.en'},zh={DATA / 'enzhja.zh'},ja={DATA / 'enzhja.ja'}"
DEEN = f"de={DATA / 'deen.de'},en={DATA / 'deen.en'}"


@pytest.fixture(scope="module")
def records() -> list[ParallelRecord]:
    return datagen.read_parallel(MULTIWAY, 0) + datagen.read_parallel(DEEN, 1)


def test_read_parallel_aligns_languages(records):
    assert len(records) == 100
    assert set(records[0].texts) == {"en", "zh", "ja"}
    assert (
        records[0].texts["zh"] == (DATA / "enzhja.zh").read_text(encoding="utf-8").splitlines()[0]
    )
    assert set(records[-1].texts) == {"de", "en"} and records[-1].corpus == 1


def test_read_parallel_errors(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("one line\n", encoding="utf-8")
    with pytest.raises(InputError, match="not line-aligned"):
        datagen.read_parallel(f"en={DATA / 'deen.en'},de={short}")
    with pytest.raises(UsageError, match="at least two languages"):
        datagen.read_parallel(f"en={DATA / 'deen.en'}")
    with pytest.raises(UsageError, match="Klingonish|unknown language|not a language"):
        datagen.read_parallel(f"klingonish={short},en={short}")
    with pytest.raises(InputError, match="no such file"):
        datagen.read_parallel(f"en={tmp_path / 'missing'},de={short}")


def _texts(records):
    return {text for r in records for text in r.texts.values()}


def test_interactive_answers_come_from_the_data(records):
    """Every assistant turn is a reference of the corpus (or two joined); constraints hold."""
    examples = datagen.interactive(records, BuildOptions(seed=3, constraint_rate=0.5))
    texts = _texts(records)
    assert len(examples) == 100
    assert max(sum(m.role == "user" for m in e.messages) for e in examples) > 2
    for example in examples:
        first_user, first_answer = example.messages[0].content, example.messages[1].content
        assert first_answer in texts
        for user, answer in zip(example.messages[::2], example.messages[1::2]):
            assert user.role == "user" and answer.role == "assistant"
            joined = any(answer.content.startswith(t) and answer.content != t for t in texts)
            assert answer.content in texts or joined
            for marker in ("\nMake sure to include these words: ", "\n确保包含这些词："):
                if marker in user.content:
                    for word in user.content.split(marker)[1].split(", "):
                        assert word in answer.content
        assert example.lang in first_answer or example.lang in {"en", "zh", "ja", "de"}
        assert first_user.strip()


def test_interactive_third_language_and_back_are_right(records):
    """A follow-up in a third language answers with that language's line of the same record."""
    examples = datagen.interactive(records[:60], BuildOptions(seed=5, max_turns=4))
    by_text = {t: r for r in records[:60] for t in r.texts.values()}
    checked = 0
    for example in examples:
        record = by_text[example.messages[1].content]
        for user, answer in zip(example.messages[2::2], example.messages[3::2]):
            if (
                "translate it back" in user.content.lower()
                or "翻译回" in user.content
                or "译回" in user.content
            ):
                assert answer.content == record.texts[example.source_lang]
                checked += 1
            elif any(
                k in user.content
                for k in ("Now translate it into", "版本", "Translate your translation")
            ):
                assert answer.content in record.texts.values()
                checked += 1
            else:
                break  # a "next sentence" turn moves to another record
    assert checked > 10


def test_canonical_wording_is_bayling_instruction(records):
    examples = datagen.crosslingual(
        records, BuildOptions(seed=1, wording="canonical", constraint_rate=0)
    )
    for example in examples:
        target = resolve(example.lang)
        source_text = next(
            r.texts[example.source_lang]
            for r in records
            if r.texts.get(example.lang) == example.messages[1].content
        )
        expected = build_instruction(source_text, target, instruction_lang=example.instruction_lang)
        assert example.messages[0].content == expected


def test_crosslingual_covers_every_direction_with_another_instruction_language(records):
    examples = datagen.crosslingual(records, BuildOptions(seed=2, directions_per_record=2))
    directions = Counter((e.source_lang, e.lang) for e in examples)
    multiway = {(a, b) for a in ("en", "zh", "ja") for b in ("en", "zh", "ja") if a != b}
    assert multiway | {("de", "en"), ("en", "de")} == set(directions)
    counts = [directions[d] for d in multiway]
    assert max(counts) - min(counts) <= 2  # dealt round-robin
    assert all(e.instruction_lang != e.lang for e in examples)


def test_constraint_words_are_in_the_reference():
    rng = random.Random(0)
    de = resolve("de")
    zh = resolve("zh")
    for _ in range(50):
        words = datagen.constraint_words("Die Gebühr entspricht 40% des Warenwertes.", de, rng)
        assert words and all(w in "Die Gebühr entspricht 40% des Warenwertes." for w in words)
        assert all(len(w) >= 3 for w in words)
        han = datagen.constraint_words("很抱歉，您点的餐可能会晚到一会。", zh, rng)
        assert han and all(w in "很抱歉，您点的餐可能会晚到一会。" and "，" not in w for w in han)


def test_same_seed_same_output_other_seed_other_output(records):
    def build(seed: int) -> list[dict]:
        examples = datagen.interactive(records, BuildOptions(seed=seed))
        examples += datagen.crosslingual(records, BuildOptions(seed=seed))
        kept, _ = datagen.finalize(examples, seed=seed)
        return [e.to_json() for e in kept]

    assert build(7) == build(7)
    assert build(7) != build(8)


def test_finalize_dedups_filters_and_counts():
    a = Example([Message("user", "hi"), Message("assistant", "hello")], kind="en", lang="en")
    a_again = Example(
        [Message("user", " hi "), Message("assistant", "hello")], kind="en", lang="en"
    )
    long = Example([Message("user", "x" * 50), Message("assistant", "y")], kind="zh", lang="zh")
    empty = Example([Message("user", "q"), Message("assistant", "  ")], kind="zh", lang="zh")
    kept, summary = datagen.finalize([a, a_again, long, empty], max_chars=20)
    assert kept == [a]
    assert summary.dropped_duplicates == 1 and summary.dropped_length == 2
    assert summary.as_dict()["by_type"] == {"en": 1}


def _chat(n: int, kind: str) -> list[Example]:
    return [
        Example([Message("user", f"{kind} q{i}"), Message("assistant", f"a{i}")], kind=kind)
        for i in range(n)
    ]


def test_mix_follows_the_ratio_and_refuses_impossible_totals():
    categories = {"zh": _chat(500, "zh"), "en": _chat(500, "en"), "cross": _chat(500, "cross")}
    mixed = datagen.mix(categories, datagen.DEFAULT_RATIO, seed=0)
    counts = Counter(e.kind for e in mixed)
    assert sum(counts.values()) == 500 * 100 // 43.2 // 1  # the zh set is the scarce one
    assert abs(counts["zh"] / len(mixed) - 0.432) < 0.002
    assert abs(counts["en"] / len(mixed) - 0.262) < 0.002
    assert abs(counts["cross"] / len(mixed) - 0.306) < 0.002
    assert datagen.mix(categories, datagen.DEFAULT_RATIO, seed=0) == mixed
    with pytest.raises(UsageError, match="largest mix at this ratio is 1157"):
        datagen.mix(categories, datagen.DEFAULT_RATIO, total=5000)
    assert datagen.parse_ratio("zh=1,en=1,cross=2") == {"zh": 1.0, "en": 1.0, "cross": 2.0}
    with pytest.raises(UsageError, match="bad ratio"):
        datagen.parse_ratio("43/26")


def test_readers_accept_alpaca_sharegpt_and_messages(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        {"instruction": "Say hi", "input": "politely", "output": "Hello."},
        {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": "A"},
            ]
        },
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    examples = list(read_jsonl(path, kind="en"))
    assert examples[0].messages == [
        Message("user", "Say hi\npolitely"),
        Message("assistant", "Hello."),
    ]
    assert examples[2].messages[0] == Message("system", "S")
    out = tmp_path / "out.jsonl"
    write_jsonl(out, examples)
    assert [e.messages for e in read_jsonl(out)] == [e.messages for e in examples]
    path.write_text(
        '{"conversations": [{"from": "human", "value": "Q"}]}\nnot json\n', encoding="utf-8"
    )
    with pytest.raises(
        InputError, match=r"mixed.jsonl:1: the conversation must end with an assistant reply"
    ):
        list(read_jsonl(path))


def test_cli_builds_mixes_and_summarises(tmp_path, capsys):
    inter, cross, zh, en, mixed = (
        tmp_path / f"{n}.jsonl" for n in ("inter", "cross", "zh", "en", "mix")
    )
    assert (
        main(["data", "interactive", "--parallel", MULTIWAY, "--parallel", DEEN, "-o", str(inter)])
        == 0
    )
    assert (
        main(["data", "crosslingual", "--parallel", MULTIWAY, "-o", str(cross), "--seed", "4"]) == 0
    )
    summary = json.loads((tmp_path / "inter.jsonl.summary.json").read_text())
    assert summary["total"] == 100 and summary["by_type"] == {"interactive": 100}
    assert set(summary["by_lang"]) <= {"en", "zh", "ja", "de"}
    write_jsonl(zh, _chat(150, "zh"))
    write_jsonl(en, _chat(100, "en"))
    args = [
        "data",
        "mix",
        "--zh",
        str(zh),
        "--en",
        str(en),
        "--cross",
        str(inter),
        "--cross",
        str(cross),
        "-o",
        str(mixed),
    ]
    assert main(args) == 0
    kinds = Counter(json.loads(line)["type"] for line in mixed.read_text().splitlines())
    assert kinds["zh"] == 150 and abs(kinds["en"] - 91) <= 1
    err = capsys.readouterr().err
    assert "by response language" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "data",
                "interactive",
                "--parallel",
                "en=/nonexistent,de=/nonexistent",
                "-o",
                "x.jsonl",
            ],
            "no such file",
        ),
        (["data", "crosslingual", "--parallel", "en", "-o", "x.jsonl"], "no such file"),
        (
            [
                "data",
                "interactive",
                "--parallel",
                DEEN,
                "--instruction-langs",
                "fr=1",
                "-o",
                "x.jsonl",
            ],
            "instruction-langs",
        ),
        (["data", "mix", "--zh", "/nonexistent.jsonl", "-o", "x.jsonl"], "no such file"),
    ],
)
def test_cli_errors_are_one_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bayling-train: error: ") and message in err and "\n" not in err
