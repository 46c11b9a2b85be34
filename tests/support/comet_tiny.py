"""Make tests/data/comet-tiny/: tiny COMET checkpoints and the scores unbabel-comet gives them.

Run it with a Python that has unbabel-comet installed (it cannot live beside bayling-local's
own dependencies, so use a separate virtual environment that reuses the CPU torch):

    python3 -m venv --system-site-packages /tmp/cometvenv
    echo 'torch==2.13.0' > /tmp/c.txt
    /tmp/cometvenv/bin/pip install -c /tmp/c.txt unbabel-comet 'setuptools<81'
    /tmp/cometvenv/bin/python tests/support/comet_tiny.py [--data ../shared/data] [--out DIR]

It writes, under ``--out`` (default tests/data/comet-tiny):

- ``hub/``: a Hugging Face cache holding the encoder ``bayling-local-test/xlm-r-tiny`` (a
  name not on the hub) as a snapshot: a tiny XLM-R configuration (hidden 32, 2 layers,
  98 positions, so segments are cut at 94 tokens) and a 600-piece SentencePiece unigram
  tokenizer trained on up to 720 WMT22 lines in nine languages, saved by transformers'
  XLMRobertaTokenizerFast (tokenizer.json only: the .model copy would double the size);
- one folder per variant of :data:`VARIANTS`, laid out as Unbabel publishes COMET models
  (``checkpoints/model.ckpt`` + ``hparams.yaml``): a RegressionMetric made by unbabel-comet's
  own class over that encoder, weights drawn at random (far from the usual 0.02 scale, so
  segments score clearly apart), saved by PyTorch Lightning's Trainer.save_checkpoint;
- ``triples.jsonl``: 26 src/mt/ref triples: WMT22 sources and references with BayLing-7B's
  published translations in eight directions (zh, ja, de, ru, en sources; en, zh, de, ja, uk
  targets), a segment longer than the encoder takes, mt equal to ref, an empty mt, emoji;
- ``scores.json``: each variant's segment and system scores from unbabel-comet's
  ``load_from_checkpoint(...).predict(triples, batch_size=8, gpus=0)`` (float32 on the CPU,
  length batching on), with the versions that computed them.

unbabel-comet finds the encoder the way it finds xlm-roberta-large for a real checkpoint: by
name, in the hub cache (``HF_HUB_CACHE`` set to ``hub/``, offline). The weights are random,
so the scores mean nothing as quality; they pin down the computation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import sentencepiece as spm
import torch
import yaml

# variant name -> hyper-parameters that differ from RegressionMetric's defaults
VARIANTS: dict[str, dict] = {
    # wmt22-comet-da's shape: all layers mixed (hparams.yaml says "sparsemax_patch", which
    # unbabel-comet >= 2.2.4 turns into softmax), no layer norm, average pooling, Tanh, no
    # final activation.
    "wmt22-like": {
        "layer": "mix",
        "layer_transformation": "sparsemax",
        "yaml_layer_transformation": "sparsemax_patch",
        "layer_norm": False,
        "pool": "avg",
        "final_activation": None,
    },
    # the other paths: sparsemax over the layers, the masked layer norm, a final sigmoid
    "sparsemax-layernorm": {
        "layer": "mix",
        "layer_transformation": "sparsemax",
        "layer_norm": True,
        "pool": "avg",
        "final_activation": "Sigmoid",
    },
    # one layer of the encoder, max pooling, softmax named outright
    "layer1-max": {
        "layer": 1,
        "layer_transformation": "softmax",
        "layer_norm": False,
        "pool": "max",
        "final_activation": None,
    },
    # the first token of the last layer
    "cls": {
        "layer": 2,
        "layer_transformation": "softmax",
        "layer_norm": True,
        "pool": "cls",
        "final_activation": None,
    },
}

PAIRS = [  # (wmt22 test set, BayLing output name, how many triples)
    ("zhen", "zh-en", 4),
    ("enzh", "en-zh", 4),
    ("deen", "de-en", 3),
    ("ende", "en-de", 3),
    ("jaen", "ja-en", 2),
    ("enja", "en-ja", 2),
    ("ruen", "ru-en", 2),
    ("enuk", "en-uk", 2),
]


def tokenizer_lines(data: Path) -> list[str]:
    lines: list[str] = []
    for name in ("zhen", "jaen", "ruen", "uken", "csen", "deen", "frde", "enzh", "enja"):
        for suffix in ("src", "ref"):
            text = (data / "wmt22" / f"{name}.{suffix}").read_text(encoding="utf-8")
            lines += [line for line in text.splitlines()[:40] if line.strip()]
    return lines


def triples(data: Path) -> list[dict[str, str]]:
    out = []
    for test, output, count in PAIRS:
        src = (data / "wmt22" / f"{test}.src").read_text(encoding="utf-8").splitlines()
        ref = (data / "wmt22" / f"{test}.ref").read_text(encoding="utf-8").splitlines()
        hyp = (data / "wmt22-outputs" / "bayling-7b" / f"{output}.hypo").read_text(encoding="utf-8")
        hyp_lines = hyp.splitlines()
        for i in range(100, 100 + count):
            out.append({"src": src[i], "mt": hyp_lines[i], "ref": ref[i]})
    # edge cases: a long segment (truncated at the encoder's 94 tokens), mt == ref, an
    # empty mt, characters the tokenizer does not know
    zh = (data / "wmt22" / "zhen.src").read_text(encoding="utf-8").splitlines()
    en = (data / "wmt22" / "zhen.ref").read_text(encoding="utf-8").splitlines()
    long_src, long_en = " ".join(zh[200:212]), " ".join(en[200:212])
    out.append({"src": long_src, "mt": long_en, "ref": " ".join(en[200:210])})
    out.append({"src": zh[7], "mt": en[7], "ref": en[7]})
    out.append({"src": zh[8], "mt": "", "ref": en[8]})
    out.append({"src": "Grüße 👋 ⛵ ☃", "mt": "问候 👋 ⛵", "ref": "Greetings 👋 ⛵ ☃"})
    return out


ENCODER = "bayling-local-test/xlm-r-tiny"  # not on the hub: found in the cache below only
REVISION = "0123456789abcdef0123456789abcdef01234567"


def encoder_snapshot(hub: Path) -> Path:
    """The encoder's folder in a Hugging Face cache laid out as huggingface_hub writes it."""
    return hub / ("models--" + ENCODER.replace("/", "--")) / "snapshots" / REVISION


def build_encoder(hub: Path, lines: list[str]) -> None:
    from transformers import XLMRobertaConfig, XLMRobertaTokenizerFast

    folder = encoder_snapshot(hub)
    folder.mkdir(parents=True)
    refs = folder.parents[1] / "refs"
    refs.mkdir()
    (refs / "main").write_text(REVISION, encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "spm"),
            vocab_size=600,
            model_type="unigram",
            character_coverage=0.98,
            num_threads=1,
            seed_sentencepiece_size=20000,
            shuffle_input_sentence=False,
            minloglevel=2,
        )
        tokenizer = XLMRobertaTokenizerFast(vocab_file=str(Path(tmp) / "spm.model"))
        tokenizer.model_max_length = 96
        tokenizer.save_pretrained(str(folder))
    # tokenizer.json is all XLMRobertaTokenizerFast needs; the .model copy would double the size
    (folder / "sentencepiece.bpe.model").unlink()
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=98,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config.save_pretrained(str(folder))


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Weights far from the 0.02 initialisation, so that segments get clearly different scores."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm" in name and name.endswith("weight"):
                param.copy_(1 + 0.2 * torch.randn(param.shape, generator=gen))
            elif "scalar_parameters" in name or name.endswith("gamma"):
                param.copy_(1.5 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.3 * torch.randn(param.shape, generator=gen))


def build_variant(folder: Path, name: str, spec: dict, seed: int):
    import pytorch_lightning as ptl
    from comet.models import RegressionMetric, load_from_checkpoint

    torch.manual_seed(seed)
    model = RegressionMetric(
        pretrained_model=ENCODER,
        load_pretrained_weights=False,
        layer=spec["layer"],
        layer_transformation=spec["layer_transformation"],
        layer_norm=spec["layer_norm"],
        pool=spec["pool"],
        hidden_sizes=[64, 32],
        activations="Tanh",
        final_activation=spec["final_activation"],
        dropout=0.1,
        batch_size=8,
    )
    randomize(model, seed)
    (folder / "checkpoints").mkdir(parents=True)
    trainer = ptl.Trainer(logger=False, enable_checkpointing=False, accelerator="cpu", devices=1)
    trainer.strategy.connect(model)
    ckpt = folder / "checkpoints" / "model.ckpt"
    trainer.save_checkpoint(str(ckpt), weights_only=True)
    hparams = dict(model.hparams)
    if "yaml_layer_transformation" in spec:
        hparams["layer_transformation"] = spec["yaml_layer_transformation"]
    (folder / "hparams.yaml").write_text(yaml.safe_dump(hparams, sort_keys=True), encoding="utf-8")
    return load_from_checkpoint(str(ckpt))  # read back as a user of unbabel-comet would


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).parents[2].parent / "shared" / "data"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parents[1] / "data" / "comet-tiny"
    )
    args = parser.parse_args()
    args.out = args.out.resolve()
    # unbabel-comet finds the encoder as it finds xlm-roberta-large: in the hub cache, offline
    os.environ["HF_HUB_CACHE"] = str(args.out / "hub")
    os.environ["HF_HUB_OFFLINE"] = "1"
    import comet

    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    build_encoder(args.out / "hub", tokenizer_lines(args.data))
    samples = triples(args.data)
    (args.out / "triples.jsonl").write_text(
        "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples), encoding="utf-8"
    )
    results = {
        "unbabel_comet": comet.__version__,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "predict": {"batch_size": 8, "gpus": 0, "length_batching": True, "dtype": "float32"},
        "variants": {},
    }
    for seed, (name, spec) in enumerate(VARIANTS.items(), 1):
        model = build_variant(args.out / name, name, spec, seed)
        out = model.predict(samples, batch_size=8, gpus=0, progress_bar=False)
        results["variants"][name] = {
            "hparams": {k: v for k, v in spec.items()},
            "segments": [float(s) for s in out.scores],
            "system": float(out.system_score),
        }
        print(
            f"{name}: system {out.system_score:.6f}, segments {min(out.scores):.4f}..{max(out.scores):.4f}"
        )
    (args.out / "scores.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
