"""`bayling-train sft` and `export` end to end on CPU with train/recipes/tiny-cpu.yaml.

Full fine-tuning trains a tiny model from scratch (its own SentencePiece vocabulary); LoRA
tunes the tiny LLaMA-2-style checkpoint of tests/support/tiny.py. Both on the demo corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling_local.errors import UsageError
from bayling_train.cli import main
from bayling_train.config import load_config
from bayling_train.demo import DemoDataOptions, build_demo_data
from bayling_train.sft import run_sft

RECIPE = Path(__file__).resolve().parents[2] / "train" / "recipes" / "tiny-cpu.yaml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "train.jsonl"
    build_demo_data(path, None, DemoDataOptions(records=500, seed=1))
    return path


def _config(run_dir: Path, corpus: Path, **overrides):
    return load_config(RECIPE, {"run_dir": str(run_dir), "data.train": [str(corpus)], **overrides})


def _lora(run_dir: Path, corpus: Path, base: Path, **overrides):
    settings = {
        "method": "lora",
        "model.scratch": None,
        "model.train_tokenizer": None,
        "model.base": str(base),
        "lora.r": 8,
        "lora.alpha": 16,
        "lora.dropout": 0.1,
        "optim.lr": 2.0e-2,
        **overrides,
    }
    return _config(run_dir, corpus, **settings)


def _falls(losses: list[float]) -> bool:
    head, tail = losses[:4], losses[-4:]
    return sum(tail) / len(tail) < 0.93 * sum(head) / len(head)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, corpus):
    run_dir = tmp_path_factory.mktemp("full") / "run"
    return run_sft(_config(run_dir, corpus, **{"train.max_steps": 24}), quiet=True)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, corpus, tiny_spm_checkpoint):
    run_dir = tmp_path_factory.mktemp("lora") / "run"
    return run_sft(
        _lora(run_dir, corpus, tiny_spm_checkpoint, **{"train.max_steps": 24}), quiet=True
    )


def test_full_fine_tuning_from_scratch_learns(full_run):
    assert full_run.steps == 24 and len(full_run.losses) == 24
    assert _falls(full_run.losses), full_run.losses
    assert full_run.eval_loss is not None and full_run.eval_loss < full_run.losses[0]
    final = full_run.final_dir
    assert {"model.safetensors", "tokenizer.model", "tokenizer.json", "run.json"} <= {
        p.name for p in final.iterdir()
    }
    assert json.loads((final / "run.json").read_text())["method"] == "full"


def test_lora_learns_and_saves_only_adapters(lora_run):
    assert _falls(lora_run.losses), lora_run.losses
    names = {p.name for p in lora_run.final_dir.iterdir()}
    assert "adapter_model.safetensors" in names and "model.safetensors" not in names
    checkpoint = sorted((lora_run.run_dir / "checkpoints").iterdir())[-1]
    from torch.distributed.checkpoint import FileSystemReader

    saved = FileSystemReader(str(checkpoint)).read_metadata().state_dict_metadata
    keys = [key for key in saved if key.startswith("model.")]
    assert keys and all("lora_" in key for key in keys)  # no copy of the frozen base


def test_metrics_log_every_logged_step(full_run):
    records = [
        json.loads(line) for line in (full_run.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    train = [r for r in records if "loss" in r]
    assert [r["step"] for r in train] == [5, 10, 15, 20, 24]
    assert all(isinstance(r["loss"], float) and r["tokens_per_s"] > 0 for r in train)
    assert [r["step"] for r in records if "eval_loss" in r] == [15, 24]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_resume_gives_the_same_losses(method, tmp_path, corpus, tiny_spm_checkpoint):
    """Stop after 3 steps, resume, and get exactly the uninterrupted run's losses.

    LoRA runs with dropout (so the saved random generators matter); full fine-tuning trains the
    scratch model with tied embeddings (saved once in the checkpoint).
    """
    steps = {"train.max_steps": 7, "train.save_every": None, "train.log_every": 1}

    def config_for(run_dir: Path):
        if method == "lora":
            return _lora(run_dir, corpus, tiny_spm_checkpoint, **steps)
        return _config(run_dir, corpus, **steps)

    straight = run_sft(config_for(tmp_path / "a"), quiet=True)
    config = config_for(tmp_path / "b")
    first = run_sft(config, stop_after=3, quiet=True)
    assert first.stopped_early and first.steps == 3
    second = run_sft(config, resume=True, quiet=True)
    assert first.losses + second.losses == straight.losses
    records = [
        json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    ]
    logged = [r["loss"] for r in records if "loss" in r]
    assert logged == pytest.approx(straight.losses, rel=1e-12)


def _greedy_transformers(hf_dir: Path, prompts: list[list[int]], n: int) -> list[list[int]]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    outputs = []
    for ids in prompts:
        generated = model.generate(
            torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=None
        )
        outputs.append(generated[0, len(ids) :].tolist())
    return outputs


def _greedy_llama_cpp(gguf: Path, prompts: list[list[int]], n: int) -> list[list[int]]:
    import llama_cpp

    llm = llama_cpp.Llama(str(gguf), n_ctx=512, n_threads=2, verbose=False)
    outputs = []
    for ids in prompts:
        llm.reset()
        out = []
        for token in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0):
            out.append(token)
            if len(out) == n:
                break
        outputs.append(out)
    return outputs


@pytest.mark.parametrize("run_name", ["full_run", "lora_run"])
def test_export_gguf_greedy_equals_transformers(run_name, request, tmp_path):
    """export -> GGUF; llama.cpp's greedy tokens equal transformers' on the merged model."""
    from transformers import AutoTokenizer

    from bayling_local.languages import resolve
    from bayling_local.prompts import BAYLING
    from bayling_local.translate import translation_messages
    from bayling_train.encoding import prompt_ids

    run = request.getfixturevalue(run_name)
    out = tmp_path / "model.gguf"
    assert main(["export", str(run.run_dir), "-o", str(out), "--outtype", "f32"]) == 0
    hf_dir = run.run_dir / "export" / "hf"
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    sentences = [
        ("The old cat buys the red apple in the garden.", "de"),
        ("今天，医生在车站卖书。", "en"),
    ]
    prompts = [
        prompt_ids(translation_messages(s, resolve(t)), BAYLING, tokenizer) for s, t in sentences
    ]
    import llama_cpp

    vocab = llama_cpp.Llama(str(out), vocab_only=True, verbose=False)
    for (sentence, target), ids in zip(sentences, prompts):
        text = BAYLING.render(translation_messages(sentence, resolve(target)))
        assert vocab.tokenize(text.encode(), add_bos=True, special=True) == ids
    assert _greedy_llama_cpp(out, prompts, 12) == _greedy_transformers(hf_dir, prompts, 12)


def test_export_quantized_and_refusals(full_run, tmp_path, capsys):
    out = tmp_path / "q.gguf"
    assert main(["export", str(full_run.run_dir), "-o", str(out), "--quant", "Q8_0"]) == 0
    assert out.stat().st_size > 0
    capsys.readouterr()
    assert main(["export", str(full_run.run_dir), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.gguf")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bayling-train: error: ") and "no finished training" in err


def test_run_directory_guards(full_run, corpus):
    config = _config(full_run.run_dir, corpus)
    with pytest.raises(UsageError, match="already holds a run"):
        run_sft(config, quiet=True)
    with pytest.raises(UsageError, match="no checkpoint to resume"):
        run_sft(_config(full_run.run_dir.parent / "empty", corpus), resume=True, quiet=True)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "run_dir: r\nmodel: {base: x}\ndata: {train: [a.jsonl]}\noptim: {lr: -1}\n",
            "optim.lr: Input should be greater than 0",
        ),
        (
            "run_dir: r\nmodel: {base: x}\ndata: {train: [a.jsonl]}\nmethod: dora\n",
            "method: Input should be 'full', 'lora' or 'qlora'",
        ),
        (
            "run_dir: r\nmodel: {base: x}\ndata: {train: [a.jsonl]}\ntrain: {batch: 3}\n",
            "train.batch: unknown field",
        ),
        ("run_dir: r\nmodel: {}\ndata: {train: [a.jsonl]}\n", "give exactly one of model.base"),
        ("run_dir: r\nmodel: {base: x}\n", "data: Field required"),
        (
            "run_dir: r\nmodel: {base: x, prompt_format: chatml}\ndata: {train: [a.jsonl]}\n",
            "prompt_format must be one of",
        ),
        ("run_dir: [unclosed\n", "not valid YAML at line"),
        ("- just\n- a list\n", "expected a mapping of settings"),
    ],
)
def test_bad_config_is_one_clear_line(yaml_text, message, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    assert main(["sft", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bayling-train: error: {path}: ") and message in err and "\n" not in err


def test_bad_overrides_and_missing_data(tmp_path, capsys):
    assert main(["sft", str(RECIPE), "--set", "nonsense"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert (
        main(
            [
                "sft",
                str(RECIPE),
                "--set",
                f"run_dir={tmp_path / 'r'}",
                "--set",
                f"data.train=[{tmp_path / 'no.jsonl'}]",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "no.jsonl: no such file" in err and "\n" not in err
    assert main(["sft", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such file" in capsys.readouterr().err


def test_qlora_needs_a_gpu(tmp_path, corpus, tiny_spm_checkpoint):
    config = _lora(tmp_path / "q", corpus, tiny_spm_checkpoint, method="qlora")
    with pytest.raises(UsageError, match="qlora needs a CUDA GPU and the bitsandbytes package"):
        run_sft(config, quiet=True)


def test_shipped_recipes_validate():
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    from bayling_train.sft import accumulation

    launchers = sorted(RECIPE.parent.glob("*.accelerate.yaml"))
    assert [p.name for p in launchers] == ["fsdp-8gpu.accelerate.yaml", "multinode.accelerate.yaml"]
    for recipe in sorted(RECIPE.parent.glob("*.yaml")):
        if recipe in launchers:
            continue
        config = load_config(recipe)
        assert config.data.seq_len > 0, recipe
        if config.method == "full" and "bayling2" in recipe.name:
            assert accumulation(config, 8) == 4 and accumulation(config, 16) == 2, recipe
        if config.method == "lora" and "bayling2" in recipe.name:
            assert accumulation(config, 1) == 8 and accumulation(config, 8) == 1, recipe
    # accelerate's own parser reads each launcher as a plain multi-process launch (the
    # sharding is bayling-train's); fsdp-8gpu.accelerate.yaml also runs for real on CPU in
    # tests/train/test_distributed.py.
    parser = launch_command_parser()
    expected = {
        "fsdp-8gpu.accelerate.yaml": ([], 8, 1),
        "multinode.accelerate.yaml": (
            ["--machine_rank", "1", "--main_process_ip", "10.0.0.1"],
            16,
            2,
        ),
    }
    for launcher in launchers:
        extra, processes, machines = expected[launcher.name]
        argv = ["--config_file", str(launcher), *extra, "-m", "bayling_train.cli", "sft", "r.yaml"]
        args, _, _ = _validate_launch_command(parser.parse_args(argv))
        assert args.multi_gpu and not args.use_fsdp and not args.use_deepspeed, launcher
        assert (args.num_processes, args.num_machines) == (processes, machines), launcher
