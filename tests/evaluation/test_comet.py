"""COMET computed natively against unbabel-comet's own scores, and its CLI and one-line errors.

tests/data/comet-tiny/ holds tiny COMET checkpoints made by unbabel-comet's own classes, and
the segment and system scores unbabel-comet 2.2.7 gave them (``tests/support/comet_tiny.py``
made both, in a separate environment; see the README there). The checkpoints name their
encoder ``bayling-local-test/xlm-r-tiny``, found in the Hugging Face cache ``hub/`` beside them,
as a real checkpoint's ``xlm-roberta-large`` is found in the user's cache.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bayling_local.cli import main

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sacrebleu")

DATA = Path(__file__).resolve().parents[1] / "data" / "comet-tiny"
RECORDED = json.loads((DATA / "scores.json").read_text(encoding="utf-8"))
TRIPLES = [
    json.loads(line) for line in (DATA / "triples.jsonl").read_text(encoding="utf-8").splitlines()
]
TOLERANCE = 1e-5  # measured: at most 2.7e-6 over every variant at batch sizes 1, 8 and 64


@pytest.fixture(autouse=True)
def tiny_hub(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(DATA / "hub"))
    return DATA / "hub"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for key in ("src", "mt", "ref"):
        paths[key] = tmp_path / f"{key}.txt"
        paths[key].write_text("".join(t[key] + "\n" for t in TRIPLES), encoding="utf-8")
    return paths


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *fragments: str) -> None:
    assert err.startswith("bayling-local: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("variant", sorted(RECORDED["variants"]))
def test_scores_equal_unbabel_comet(variant: str) -> None:
    """Every path: the layer mix (softmax via sparsemax_patch, sparsemax, layer norm), one
    layer, average/max/first-token pooling, a final sigmoid, truncation, an empty mt, emoji."""
    from bayling_local.evaluation.comet import CometModel

    model = CometModel(DATA / variant, device="cpu")
    expected = RECORDED["variants"][variant]
    for batch_size in (8, 3):
        result = model.score(
            [t["src"] for t in TRIPLES],
            [t["mt"] for t in TRIPLES],
            [t["ref"] for t in TRIPLES],
            batch_size=batch_size,
        )
        assert result.segments == pytest.approx(expected["segments"], abs=TOLERANCE, rel=0)
        assert result.system == pytest.approx(expected["system"], abs=TOLERANCE, rel=0)
    assert len(set(round(s, 3) for s in result.segments)) > len(TRIPLES) // 2  # not constant


def test_cli_json_has_comet_and_its_signature(files, tmp_path: Path, capsys) -> None:
    expected = RECORDED["variants"]["wmt22-like"]
    args = ["eval", "score", "--hyp", str(files["mt"]), "--ref", str(files["ref"])]
    args += ["--src", str(files["src"]), "-t", "en", "--tokenize", "13a"]
    code, out, err = cli(
        capsys, *args, "--comet", str(DATA / "wmt22-like"), "--comet-batch-size", "5", "--json",
        "--save", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["comet"] == pytest.approx(expected["system"], abs=1e-4)
    assert data["comet_segments"] == pytest.approx(expected["segments"], abs=TOLERANCE, rel=0)
    signature = data["comet_signature"]
    assert signature.startswith("COMET|model:wmt22-like|encoder:bayling-local-test/xlm-r-tiny")
    assert "layers:mix-softmax" in signature and "pool:avg" in signature
    assert "tok:13a" in data["signature"]  # BLEU's signature is sacreBLEU's, unchanged
    saved = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert saved["comet"] == data["comet"]

    code, out, err = cli(
        capsys, *args, "--comet", str(DATA / "sparsemax-layernorm" / "checkpoints" / "model.ckpt")
    )
    assert code == 0, err
    comet_line = out.splitlines()[-1]
    system = RECORDED["variants"]["sparsemax-layernorm"]["system"]
    assert comet_line.startswith(f"COMET   {system:6.4f}  COMET|model:sparsemax-layernorm|")
    assert "layers:mix-sparsemax-norm" in comet_line and "COMET not computed" not in err


def test_checkpoint_by_hub_name_from_the_cache(tmp_path: Path, monkeypatch, files, capsys) -> None:
    """``--comet Unbabel/wmt22-comet-da`` finds the snapshot unbabel-comet downloaded."""
    hub = tmp_path / "hub"
    shutil.copytree(DATA / "hub", hub)
    snapshot = hub / "models--Unbabel--wmt22-comet-da" / "snapshots" / ("a" * 40)
    shutil.copytree(DATA / "wmt22-like", snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    code, out, err = cli(
        capsys, "eval", "score", "--hyp", str(files["mt"]), "--ref", str(files["ref"]),
        "--src", str(files["src"]), "-t", "en", "--comet", "Unbabel/wmt22-comet-da", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["comet_model"] == "Unbabel/wmt22-comet-da"
    assert data["comet"] == pytest.approx(RECORDED["variants"]["wmt22-like"]["system"], abs=1e-4)


def test_encoder_folder_given_explicitly(tmp_path: Path, monkeypatch, files, capsys) -> None:
    encoder = next((DATA / "hub").glob("models--*/snapshots/*"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code, out, err = cli(
        capsys, "eval", "score", "--hyp", str(files["mt"]), "--ref", str(files["ref"]),
        "--src", str(files["src"]), "-t", "en", "--comet", str(DATA / "cls"),
        "--comet-encoder", str(encoder), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["comet"] == pytest.approx(
        RECORDED["variants"]["cls"]["system"], abs=1e-4
    )


def test_one_line_errors(tmp_path: Path, monkeypatch, files, capsys) -> None:
    args = ["eval", "score", "--hyp", str(files["mt"]), "--ref", str(files["ref"]), "-t", "en"]
    with_src = [*args, "--src", str(files["src"])]

    code, out, err = cli(capsys, *args, "--comet", str(DATA / "wmt22-like"))
    assert code == 2 and out == ""
    one_line(err, "COMET needs the source texts", "--src")

    code, out, err = cli(capsys, *with_src, "--comet", str(tmp_path / "missing"))
    assert code == 2 and out == ""
    one_line(err, "COMET checkpoint not found", str(tmp_path / "missing"))

    (tmp_path / "empty-model").mkdir()
    code, _, err = cli(capsys, *with_src, "--comet", str(tmp_path / "empty-model"))
    assert code == 2
    one_line(err, "holds no COMET checkpoint", "checkpoints/model.ckpt")

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    code, _, err = cli(capsys, *with_src, "--comet", str(DATA / "wmt22-like"))
    assert code == 2
    one_line(err, "encoder bayling-local-test/xlm-r-tiny", "not on this machine", "--comet-encoder")
    monkeypatch.setenv("HF_HUB_CACHE", str(DATA / "hub"))

    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "checkpoints" / "model.ckpt").write_bytes(b"not a checkpoint")
    shutil.copy(DATA / "wmt22-like" / "hparams.yaml", broken / "hparams.yaml")
    code, _, err = cli(capsys, *with_src, "--comet", str(broken))
    assert code == 3
    one_line(err, "not a readable COMET checkpoint")

    other = tmp_path / "kiwi"
    shutil.copytree(DATA / "wmt22-like", other)
    hparams = (other / "hparams.yaml").read_text()
    (other / "hparams.yaml").write_text(
        hparams.replace("class_identifier: regression_metric", "class_identifier: unified_metric")
    )
    code, _, err = cli(capsys, *with_src, "--comet", str(other))
    assert code == 3
    one_line(err, "unified_metric", "regression_metric")

    if not __import__("torch").cuda.is_available():
        code, _, err = cli(
            capsys, *with_src, "--comet", str(DATA / "cls"), "--comet-device", "cuda"
        )
        assert code == 2
        one_line(err, "--comet-device cuda", "no CUDA")

    for package in ("torch", "transformers"):
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, package, None)  # as if the extra were not installed
            code, out, err = cli(capsys, *with_src, "--comet", str(DATA / "wmt22-like"))
        assert code == 2 and out == ""
        one_line(err, f"COMET needs the {package} package", "pip install 'bayling-local[eval]'")


def test_translate_run_carries_comet(scripted_spm, files, tmp_path: Path, capsys) -> None:
    """``eval translate --comet``: the run folder's scores hold COMET; compare shows it."""
    code, out, err = cli(
        capsys, "eval", "translate", "-m", str(scripted_spm.gguf), "-s", "zh", "-t", "en",
        "--src", str(files["src"]), "--ref", str(files["ref"]), "--limit", "4",
        "--out", str(tmp_path / "run"), "--comet", str(DATA / "wmt22-like"), "--json",
    )  # fmt: skip
    assert code == 0, err
    scores = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert isinstance(scores["comet"], float) and len(scores["comet_segments"]) == 4
    from bayling_local.evaluation.comet import CometModel

    direct = CometModel(DATA / "wmt22-like").score(
        [t["src"] for t in TRIPLES[:4]], [scripted_spm.text] * 4, [t["ref"] for t in TRIPLES[:4]]
    )
    assert scores["comet_segments"] == pytest.approx(direct.segments, abs=TOLERANCE, rel=0)
    code, out, err = cli(
        capsys, "eval", "compare", str(tmp_path / "run"), "--png", str(tmp_path / "c.png")
    )
    assert code == 0, err
    assert f"{scores['comet']:.4f}" in out


def test_translate_keeps_its_run_when_comet_fails_late(
    scripted_spm, files, tmp_path: Path, capsys
) -> None:
    """A checkpoint that only shows it is damaged when loaded, after translating: the run is
    written without COMET, and the one line says where."""
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "checkpoints" / "model.ckpt").write_bytes(b"not a checkpoint")
    shutil.copy(DATA / "wmt22-like" / "hparams.yaml", broken / "hparams.yaml")
    code, out, err = cli(
        capsys, "eval", "translate", "-m", str(scripted_spm.gguf), "-s", "zh", "-t", "en",
        "--src", str(files["src"]), "--ref", str(files["ref"]), "--limit", "2",
        "--out", str(tmp_path / "run"), "--comet", str(broken), "-q",
    )  # fmt: skip
    assert code == 3 and out == ""
    one_line(err, "not a readable COMET checkpoint", "holds the run without COMET")
    scores = json.loads((tmp_path / "run" / "scores.json").read_text())
    assert scores["comet"] is None and scores["bleu"] >= 0
    assert len((tmp_path / "run" / "hypotheses.txt").read_text().splitlines()) == 2
