"""The ``bayling-train`` command line.

::

    bayling-train data interactive --parallel en=a.en,zh=a.zh -o interactive.jsonl
    bayling-train data crosslingual --parallel de=b.de,en=b.en -o cross.jsonl
    bayling-train data mix --zh zh.jsonl --en en.jsonl --cross cross.jsonl -o mix.jsonl
    bayling-train sft recipe.yaml [--resume]          # torchrun --nproc_per_node N -m bayling_train.cli sft ...
    bayling-train export RUN_DIR -o model.gguf [--quant Q4_K_M]
    bayling-train export RUN_DIR/checkpoints/step-N -o model.gguf
    bayling-train demo            # rebuild the demo model that ships with bayling-local
    bayling-train bench           # GPU training throughput (tokens/s, MFU, memory)

Errors the user can act on print one line and exit non-zero, like ``bayling-local``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import yaml

from bayling_local.atomic import write_text_atomic
from bayling_local.cli.runner import invoke
from bayling_local.errors import BaylingError, UsageError

PROG = "bayling-train"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bayling-local", prog_name=PROG)
def cli() -> None:
    """BayLing's training recipe: instruction data, instruction tuning, export to GGUF."""


# --- data -----------------------------------------------------------------------------------


@cli.group()
def data() -> None:
    """Build BayLing-style instruction data (sharegpt JSONL)."""


def _weights(text: str) -> dict[str, float]:
    try:
        pairs = [part.split("=", 1) for part in text.split(",")]
        weights = {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise UsageError(f"bad --instruction-langs {text!r}: expected e.g. en=0.5,zh=0.5") from None
    if set(weights) - {"en", "zh"} or sum(weights.values()) <= 0 or min(weights.values()) < 0:
        raise UsageError(
            f"bad --instruction-langs {text!r}: give non-negative shares for en and zh"
        )
    return weights


_common_build = [
    click.option(
        "--parallel",
        "specs",
        multiple=True,
        required=True,
        help="LANG=FILE,LANG=FILE[,...] (line-aligned files) or a JSONL of {lang: text}; repeatable.",
    ),
    click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option(
        "--instruction-langs",
        default="en=0.5,zh=0.5",
        show_default=True,
        help="Shares of instruction languages.",
    ),
    click.option(
        "--wording", type=click.Choice(["varied", "canonical"]), default="varied", show_default=True
    ),
    click.option("--constraint-rate", type=click.FloatRange(0, 1), default=0.15, show_default=True),
    click.option("--min-chars", type=int, default=1, show_default=True),
    click.option("--max-chars", type=int, default=8000, show_default=True),
]


def _build_options(func):
    for option in reversed(_common_build):
        func = option(func)
    return func


def _write_examples(examples, output: Path, *, seed: int, min_chars: int, max_chars: int) -> None:
    from .conversations import write_jsonl
    from .datagen import finalize

    kept, summary = finalize(examples, seed=seed, min_chars=min_chars, max_chars=max_chars)
    write_jsonl(output, kept)
    write_text_atomic(
        output.with_name(output.name + ".summary.json"),
        json.dumps(summary.as_dict(), indent=2) + "\n",
    )
    click.echo(f"wrote {output}: {summary.text()}", err=True)


def _records(specs: tuple[str, ...]):
    from .datagen import read_parallel

    return [record for corpus, spec in enumerate(specs) for record in read_parallel(spec, corpus)]


@data.command("interactive")
@_build_options
@click.option(
    "--max-turns",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="User turns at most.",
)
def data_interactive(**options):
    """Interactive translation conversations (BayLing 1) from parallel text."""
    _build("interactive", **options)


@data.command("crosslingual")
@_build_options
@click.option("--directions-per-record", type=click.IntRange(1, 1000), default=1, show_default=True)
def data_crosslingual(**options):
    """Cross-lingual instructions (BayLing 2): request in one language, answer in another."""
    _build("crosslingual", **options)


def _build(
    kind: str,
    *,
    specs: tuple[str, ...],
    output: Path,
    seed: int,
    instruction_langs: str,
    wording: str,
    constraint_rate: float,
    min_chars: int,
    max_chars: int,
    **extra,
) -> None:
    """Run one data builder of train.datagen over the parallel corpora and write its JSONL."""
    from . import datagen

    options = datagen.BuildOptions(
        seed=seed,
        instruction_langs=_weights(instruction_langs),
        wording=wording,
        constraint_rate=constraint_rate,
        **extra,
    )
    examples = getattr(datagen, kind)(_records(specs), options)
    _write_examples(examples, output, seed=seed, min_chars=min_chars, max_chars=max_chars)


@data.command("mix")
@click.option(
    "--zh", "zh_files", multiple=True, help="Chinese instruction set (alpaca or sharegpt JSONL)."
)
@click.option(
    "--en", "en_files", multiple=True, help="English instruction set (alpaca or sharegpt JSONL)."
)
@click.option(
    "--cross", "cross_files", multiple=True, help="Cross-lingual / interactive sets built above."
)
@click.option(
    "--ratio", default="43.2/26.2/30.6", show_default=True, help="zh/en/cross shares (BayLing 2's)."
)
@click.option(
    "--total",
    type=click.IntRange(1),
    default=None,
    help="Size of the mix (default: largest possible).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--min-chars", type=int, default=1, show_default=True)
@click.option("--max-chars", type=int, default=8000, show_default=True)
def data_mix(zh_files, en_files, cross_files, ratio, total, output, seed, min_chars, max_chars):
    """Mix Chinese, English and cross-lingual sets in a ratio."""
    from .conversations import read_jsonl
    from .datagen import finalize, mix, parse_ratio

    categories = {}
    for name, files, lang in (
        ("zh", zh_files, "zh"),
        ("en", en_files, "en"),
        ("cross", cross_files, None),
    ):
        examples = [
            e
            for path in files
            for e in read_jsonl(path, kind=None if name == "cross" else name, lang=lang)
        ]
        # Filter and de-duplicate first, so the ratio holds in what is written.
        categories[name], _ = finalize(
            examples, seed=seed, min_chars=min_chars, max_chars=max_chars, shuffle=False
        )
    mixed = mix(categories, parse_ratio(ratio), total=total, seed=seed)
    _write_examples(mixed, output, seed=seed, min_chars=min_chars, max_chars=max_chars)


@data.command("demo")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--test-output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Test set: sentences whose subject-verb-object triple training never shows.",
)
@click.option(
    "--new-output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Test set: new sentences whose triple training shows with other words around it.",
)
@click.option(
    "--records", type=click.IntRange(1), default=50000, show_default=True, help="Training scenes."
)
@click.option("--test-records", type=click.IntRange(1), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def data_demo(output, test_output, new_output, records, test_records, seed):
    """The demo model's data: template sentences in five languages, as BayLing instructions."""
    from .demo import DemoDataOptions, build_demo_data

    options = DemoDataOptions(
        records=records, test_records=test_records, new_records=test_records, seed=seed
    )
    summary = build_demo_data(output, test_output, options, new_output)
    click.echo(f"wrote {output}: {summary.text()}", err=True)


# --- sft / export ---------------------------------------------------------------------------


def _overrides(pairs: tuple[str, ...]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --set {pair!r}: expected KEY=VALUE, e.g. train.max_steps=100")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


@cli.command("sft")
@click.argument("config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resume", is_flag=True, help="Continue from the run's latest checkpoint.")
@click.option("--resume-from", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--overwrite", is_flag=True, help="Start again in a run directory that holds a run.")
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a config field."
)
@click.option(
    "--stop-after", type=click.IntRange(1), default=None, help="Checkpoint and stop after N steps."
)
@click.option("-q", "--quiet", is_flag=True)
def sft_command(config_file, resume, resume_from, overwrite, settings, stop_after, quiet):
    """Instruction-tune a model as CONFIG_FILE (YAML) says."""
    from .config import load_config
    from .sft import run_sft

    try:
        try:
            config = load_config(config_file, _overrides(settings))
        except BaylingError as exc:
            exc.same_on_every_process = True  # type: ignore[attr-defined]
            raise
        result = run_sft(
            config,
            resume=str(resume_from) if resume_from else resume,
            overwrite=overwrite,
            stop_after=stop_after,
            quiet=quiet,
        )
    except BaylingError as exc:
        # An error every process meets alike (a bad recipe, a batch the process count cannot
        # split) is printed once, by rank 0; the others exit with the same code in silence.
        rank = int(os.environ.get("RANK", "0"))
        if rank != 0 and getattr(exc, "same_on_every_process", False):
            raise click.exceptions.Exit(exc.exit_code) from None
        raise
    if result.stopped_early:
        click.echo(f"stopped after step {result.steps}; continue with --resume", err=True)


@cli.command("export")
@click.argument(
    "run_dir", metavar="RUN_DIR|CHECKPOINT", type=click.Path(file_okay=False, path_type=Path)
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--quant", default=None, help="llama.cpp quant type, e.g. Q4_K_M, Q8_0.")
@click.option("--outtype", default="f16", show_default=True, help="f32, f16, bf16 or q8_0.")
@click.option(
    "--name", default=None, help="general.name written into the GGUF (default: the run's name)."
)
@click.option(
    "--dtype",
    default="auto",
    show_default=True,
    help="Merge LoRA in this dtype (auto: the base's).",
)
@click.option("--force", is_flag=True, help="Overwrite the output.")
def export_command(run_dir, output, quant, outtype, name, dtype, force):
    """Merge, save and convert a finished run, or a (sharded) checkpoint of one, to a GGUF."""
    from .export import export_run

    result = export_run(
        run_dir, output, quant=quant, outtype=outtype, name=name, force=force, dtype=dtype
    )
    click.echo(f"wrote {result.gguf} (Hugging Face checkpoint in {result.hf_dir})", err=True)


# --- demo / evaluation / benchmark ----------------------------------------------------------


@cli.command("demo")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bayling_local/demo/bayling-demo.gguf"),
    show_default=True,
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
)
@click.option(
    "--recipe",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Default: recipes/demo.yaml.",
)
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a recipe field."
)
@click.option("--resume", is_flag=True, help="Continue an interrupted demo training.")
@click.option("--force", is_flag=True, help="Overwrite the output and start the run again.")
def demo_command(output, work_dir, recipe, settings, resume, force):
    """Rebuild the demo model: corpus, training, export, BLEU on held-out sentences."""
    from .demo import build_demo

    report = build_demo(
        output, work_dir, recipe=recipe, overrides=_overrides(settings), resume=resume, force=force
    )
    click.echo(report.text(), err=True)


@cli.command("bleu")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("test_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--limit", type=click.IntRange(1), default=None)
@click.option("--json", "as_json", is_flag=True)
def bleu_command(model, test_file, limit, as_json):
    """BLEU of a GGUF on a test JSONL (from `data demo --test-output`), greedy through llama.cpp."""
    from .evaluate import evaluate_gguf, read_eval_set

    report = evaluate_gguf(model, read_eval_set(test_file)[:limit])
    click.echo(
        json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if as_json else report.text()
    )


@cli.command("bench")
@click.option(
    "--all",
    "headline",
    is_flag=True,
    help="LoRA at llama3-8b and full FT at the largest shape that fits.",
)
@click.option(
    "--shape",
    default="llama3-8b",
    show_default=True,
    help="auto, tiny, llama3.2-1b, llama3.2-3b, llama2-7b, llama3-8b, llama2-13b.",
)
@click.option("--method", type=click.Choice(["lora", "full"]), default="lora", show_default=True)
@click.option("--seq-len", type=click.IntRange(8), default=2048, show_default=True)
@click.option("--micro-batch-size", type=click.IntRange(1), default=1, show_default=True)
@click.option("--steps", type=click.IntRange(1), default=10, show_default=True)
@click.option("--warmup", type=click.IntRange(0), default=3, show_default=True)
@click.option(
    "--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True
)
@click.option(
    "--gradient-checkpointing/--no-gradient-checkpointing", default=True, show_default=True
)
@click.option(
    "--attn", type=click.Choice(["auto", "sdpa", "eager", "flash_attention_2"]), default="auto"
)
@click.option(
    "--peak-tflops", type=float, default=None, help="The device's dense bf16 peak, if not known."
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def bench_command(
    headline,
    shape,
    method,
    seq_len,
    micro_batch_size,
    steps,
    warmup,
    device,
    gradient_checkpointing,
    attn,
    peak_tflops,
    as_json,
):
    """Training throughput with random weights: tokens/s, MFU, peak memory (no download)."""
    from dataclasses import asdict

    from .bench import plan, run_bench

    results = []
    for shape_name, method_name in plan(shape, method, headline=headline):
        result = run_bench(
            shape_name,
            method_name,
            seq_len=seq_len,
            micro_batch_size=micro_batch_size,
            steps=steps,
            warmup=warmup,
            device=device,
            checkpointing=gradient_checkpointing,
            attention=attn,
            peak=peak_tflops,
        )
        click.echo(result.text(), err=True)
        results.append(result)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], indent=2))


@cli.command("memory")
@click.option("--seq-len", type=click.IntRange(8), default=2048, show_default=True)
@click.option(
    "--gradient-checkpointing/--no-gradient-checkpointing", default=True, show_default=True
)
def memory_command(seq_len, gradient_checkpointing):
    """GPU memory per GPU for each BayLing size and method (computed from the shapes)."""
    from .memory import table

    click.echo(table(seq_len=seq_len, checkpointing=gradient_checkpointing))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    return invoke(cli, PROG, argv)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
