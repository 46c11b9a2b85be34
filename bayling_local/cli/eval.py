"""CLI commands under ``eval``: score, translate, bayling80, quant, compare.

Thin layers over :mod:`bayling_local.evaluation`: read the files, call the library, print
results on stdout (scores with their sacreBLEU signatures, tables) and notices on stderr.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import click

from ..errors import BaylingError, Cancelled, UsageError
from ..settings import INSTRUCTION_LANGS
from .common import engine_options, load_engine_for, notice


@click.group("eval")
def eval_group() -> None:
    """Evaluate like the BayLing papers: BLEU, chrF++, COMET, BayLing-80, quantization.

    \b
    Examples:
      bayling-local eval score --hyp out.txt --ref wmt22/zhen.ref -t en
      bayling-local eval translate -m bayling-2-8b -s zh -t en --src zhen.src --ref zhen.ref
      bayling-local eval quant -m model.gguf --quants Q4_K_M,Q8_0 --test en-de ende.src ende.ref
      bayling-local eval compare runs/greedy runs/beam5
    """


def _language(name: str, option: str):
    from ..languages import resolve

    try:
        return resolve(name)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}") from None


def _setting_flags(flags: dict[str, Any]) -> dict[str, Any]:
    return {k: flags.get(k) for k in ("threads", "gpu_layers", "context", "max_tokens", "model")}


def _settings(flags: dict[str, Any]):
    from ..settings import load_settings

    return load_settings().with_overrides(**_setting_flags(flags))


# --- COMET (eval score, eval translate) ---------------------------------------------------------


def comet_options(command):
    """--comet and its tuning options, shared by ``eval score`` and ``eval translate``."""
    options = [
        click.option(
            "--comet",
            "comet_path",
            help="COMET checkpoint: a model folder (checkpoints/model.ckpt + hparams.yaml, e.g. "
            "Unbabel/wmt22-comet-da), its model.ckpt, or a hub name already in the local cache.",
        ),
        click.option(
            "--comet-encoder",
            type=click.Path(path_type=Path),
            help="Folder with the COMET encoder's config.json and tokenizer (default: the "
            "checkpoint's pretrained_model, from a local folder or the Hugging Face cache).",
        ),
        click.option(
            "--comet-batch-size",
            default=16,
            show_default=True,
            type=click.IntRange(min=1),
            help="Segments COMET encodes at once.",
        ),
        click.option(
            "--comet-device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default="auto",
            show_default=True,
            help="Where COMET runs (auto: CUDA when there, else the CPU).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _check_comet(flags: dict[str, Any], have_sources: bool) -> None:
    """Fail before any work if COMET was asked for and cannot run."""
    if flags["comet_path"] is None:
        return
    if not have_sources:
        raise UsageError("COMET needs the source texts: add --src FILE")
    from ..evaluation.comet import check_comet

    check_comet(flags["comet_path"], flags["comet_encoder"])
    if flags["comet_device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--comet-device cuda: torch sees no CUDA device here")


def _add_comet(result, sources, hyps, refs, flags: dict[str, Any], quiet: bool = False) -> None:
    """COMET's system and segment scores into ``result`` (with a progress bar on a terminal)."""
    from ..evaluation.comet import CometModel, signature
    from ..progress import progress

    device = None if flags["comet_device"] == "auto" else flags["comet_device"]
    model = CometModel(flags["comet_path"], encoder=flags["comet_encoder"], device=device)
    with progress("Scoring COMET", len(hyps), quiet=quiet) as bar:
        scores = model.score(
            [s.strip() for s in sources],
            [h.strip() for h in hyps],
            [r.strip() for r in refs],
            batch_size=flags["comet_batch_size"],
            on_progress=bar.advance,
        )
    result.comet = round(scores.system, 4)
    result.comet_model = scores.model
    result.comet_signature = signature(scores)
    result.comet_segments = [round(v, 6) for v in scores.segments]


def _pop_comet(flags: dict[str, Any]) -> dict[str, Any]:
    names = ("comet_path", "comet_encoder", "comet_batch_size", "comet_device")
    return {name: flags.pop(name) for name in names}


# --- score -----------------------------------------------------------------------------------


@eval_group.command("score")
@click.option(
    "--hyp",
    "hyp_file",
    required=True,
    type=click.Path(path_type=Path),
    help="Hypotheses, one segment a line.",
)
@click.option(
    "--ref",
    "ref_file",
    required=True,
    type=click.Path(path_type=Path),
    help="References, line-aligned.",
)
@click.option("-t", "--target", required=True, help="Target language (chooses BLEU's tokenizer).")
@click.option("-s", "--source", help="Source language (recorded with --save).")
@click.option(
    "--src", "src_file", type=click.Path(path_type=Path), help="Source texts (COMET needs them)."
)
@click.option(
    "--tokenize",
    help="BLEU tokenizer instead of the target language's (13a, zh, ja-mecab, ko-mecab, flores200, ...).",
)
@comet_options
@click.option(
    "--save",
    "save_dir",
    type=click.Path(path_type=Path),
    help="Also write a run folder DIR (for eval compare).",
)
@click.option(
    "--label", help="The run's label in comparisons (with --save; default: the folder name)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON object (bleu, chrf, signature, ...)."
)
def score_command(
    hyp_file, ref_file, target, source, src_file, tokenize, save_dir, label, as_json, **comet
) -> None:
    """Score hypotheses against references: BLEU, chrF++ (and COMET with --comet)."""
    from ..evaluation.scoring import check_tokenizer, score, tokenizer_for
    from ..evaluation.textio import check_aligned, read_segments

    target_lang = _language(target, "-t")
    source_lang = _language(source, "-s") if source else None
    tokenizer = tokenize or tokenizer_for(target_lang)
    check_tokenizer(tokenizer)
    if save_dir is not None and Path(save_dir).exists():
        raise UsageError(f"run folder {save_dir} already exists; give a new --save folder")
    _check_comet(comet, src_file is not None)
    hyps = read_segments(hyp_file, "hypothesis file")
    refs = read_segments(ref_file, "reference file")
    check_aligned(hyps, refs, f"hypothesis file {hyp_file}", f"reference file {ref_file}")
    sources = None
    if src_file is not None:
        sources = read_segments(src_file, "source file")
        check_aligned(sources, refs, f"source file {src_file}", f"reference file {ref_file}")
    result = score(hyps, refs, target_lang, tokenize=tokenizer)
    if comet["comet_path"] is not None:
        _add_comet(result, sources or [], hyps, refs, comet)
    if save_dir is not None:
        from ..evaluation.runs import write_run

        write_run(
            save_dir, kind="score", label=label, source=source_lang, target=target_lang,
            src_file=src_file, ref_file=ref_file, references=refs, hypotheses=hyps,
            scores=result, extra={"hyp_file": str(hyp_file)},
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        click.echo(result.format_text())
        if comet["comet_path"] is None:
            notice(
                "COMET not computed: give --src FILE and --comet CHECKPOINT (e.g. a download of "
                "Unbabel/wmt22-comet-da)"
            )


# --- translate -------------------------------------------------------------------------------


def _check_beam_parallel(beam: int, parallel: int | None) -> None:
    """The settings' own rules for beam and parallel, named by their flags."""
    from ..settings import SettingValueError, check_setting

    for name, value in (("beam", beam), ("parallel", parallel)):
        try:
            check_setting(name, value)
        except SettingValueError as exc:
            raise UsageError(f"--{name} {value}: {exc.reason}") from None


@eval_group.command("translate")
@click.option("-s", "--source", required=True, help="Source language.")
@click.option("-t", "--target", required=True, help="Target language.")
@click.option(
    "--src",
    "src_file",
    required=True,
    type=click.Path(path_type=Path),
    help="Source texts, one segment a line.",
)
@click.option(
    "--ref",
    "ref_file",
    required=True,
    type=click.Path(path_type=Path),
    help="References, line-aligned.",
)
@click.option(
    "--beam", default=1, show_default=True, type=int, help="Beams (1: greedy; the papers used 5)."
)
@click.option(
    "--parallel",
    type=int,
    help="Segments decoded at once (default: settings, else the machine's choice).",
)
@click.option(
    "--history",
    "context_turns",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Context: the N earlier segments and their translations go before each one (0: off).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N segments.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Run folder to create (default: runs/MODEL-SRC-TGT-bBEAM).",
)
@click.option("--label", help="The run's label in comparisons (default: the folder name).")
@click.option("--tokenize", help="BLEU tokenizer instead of the target language's.")
@click.option(
    "--instruction-lang",
    type=click.Choice(INSTRUCTION_LANGS),
    help="Wording of BayLing's instruction.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@comet_options
@engine_options
def translate_command(
    source,
    target,
    src_file,
    ref_file,
    beam,
    parallel,
    context_turns,
    limit,
    out_dir,
    label,
    tokenize,
    instruction_lang,
    as_json,
    **engine_flags,
) -> None:
    """Translate a test set with the batch engine, score it, and keep a run folder."""
    from dataclasses import replace

    from ..evaluation.runs import DecodeOptions, model_facts, translate_test_set, write_run
    from ..evaluation.scoring import check_tokenizer, score, tokenizer_for
    from ..evaluation.textio import check_aligned, new_run_dir, read_segments
    from ..progress import progress
    from ..translate import TRANSLATION_SAMPLING, Translator

    source_lang, target_lang = _language(source, "-s"), _language(target, "-t")
    _check_beam_parallel(beam, parallel)
    tokenizer = tokenize or tokenizer_for(target_lang)
    check_tokenizer(tokenizer)
    comet = _pop_comet(engine_flags)
    _check_comet(comet, True)
    settings = _settings(engine_flags).with_overrides(instruction_lang=instruction_lang)
    sources = read_segments(src_file, "source file")
    refs = read_segments(ref_file, "reference file")
    check_aligned(sources, refs, f"source file {src_file}", f"reference file {ref_file}")
    if limit:
        sources, refs = sources[:limit], refs[:limit]
    if out_dir is None:
        from ..resolve import resolve_model

        name = Path(resolve_model(engine_flags.get("model") or settings.model).name).stem
        suffix = f"-ctx{context_turns}" if context_turns else ""
        out_dir = Path("runs") / f"{name}-{source_lang.code}-{target_lang.code}-b{beam}{suffix}"
    if Path(out_dir).exists():
        raise UsageError(f"run folder {out_dir} already exists; give a new --out folder")
    if not Path(out_dir).parent.exists():
        Path(out_dir).parent.mkdir(parents=True, exist_ok=True)

    engine = load_engine_for(settings, engine_flags, announce=not as_json)
    parallel = parallel or getattr(settings, "parallel", None)
    sampling = replace(TRANSLATION_SAMPLING, max_tokens=settings.max_tokens)
    translator = Translator(
        engine,
        sampling,
        instruction_lang=settings.instruction_lang,
        system=settings.system_prompt,
        parallel=parallel,
    )
    cancel = threading.Event()
    try:
        folder = new_run_dir(out_dir)
        with progress(
            f"Translating {source_lang.code}→{target_lang.code}",
            len(sources),
            quiet=bool(engine_flags.get("quiet")),
        ) as bar:
            try:
                done = translate_test_set(
                    translator, sources, target_lang, source=source_lang, beam=beam,
                    context=context_turns, on_progress=lambda n: bar.advance(n - bar.completed),
                    cancel=cancel,
                )  # fmt: skip
            except KeyboardInterrupt:
                cancel.set()
                _remove_empty(folder)
                raise Cancelled("interrupted; no run folder was written") from None
            except BaseException:
                _remove_empty(folder)
                raise
        decoding = DecodeOptions(
            beam=beam,
            parallel=translator.batch.parallel,
            context=context_turns,
            max_tokens=settings.max_tokens,
            instruction_lang=settings.instruction_lang,
        )
        facts = model_facts(engine)
    finally:
        translator.close()
        engine.close()
    result = score(done.hypotheses, refs, target_lang, tokenize=tokenizer)

    def save() -> None:
        write_run(
            out_dir, kind="translate", label=label, source=source_lang, target=target_lang,
            src_file=src_file, ref_file=ref_file, references=refs, hypotheses=done.hypotheses,
            scores=result, model=facts, decoding=decoding, timing=done.timing,
            extra={"finish_reasons": done.finish_reasons, "limit": limit}, folder=folder,
        )  # fmt: skip

    if comet["comet_path"] is not None:
        try:
            _add_comet(
                result, sources, done.hypotheses, refs, comet, quiet=bool(engine_flags.get("quiet"))
            )
        except (KeyboardInterrupt, BaylingError) as exc:  # keep the translations all the same
            save()
            if isinstance(exc, KeyboardInterrupt):
                raise Cancelled(
                    f"interrupted while scoring COMET; {folder} holds the run without COMET"
                ) from None
            exc.args = (f"{exc.message} ({folder} holds the run without COMET)",)
            raise exc from None
    save()
    cut = done.finish_reasons.get("length", 0) + done.finish_reasons.get("context", 0)
    if cut:
        notice(
            f"warning: {cut} segment(s) hit the token limit and may be cut short; raise --max-tokens"
        )
    if as_json:
        click.echo(
            json.dumps(
                {**result.as_dict(), "run": str(folder), "timing": done.timing.as_dict()},
                ensure_ascii=False,
            )
        )
    else:
        click.echo(result.format_text())
        t = done.timing
        click.echo(
            f"{t.segments} segments in {t.seconds:.1f} s ({t.segments_per_second:.2f} segments/s, {t.tokens_per_second:.1f} tokens/s); run folder: {folder}"
        )


def _remove_empty(folder: Path) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        folder.rmdir()


# --- bayling80 -------------------------------------------------------------------------------


@eval_group.command("bayling80")
@click.option(
    "--questions",
    type=click.Path(path_type=Path),
    help="A BayLing-80 JSONL file, or a folder of them.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to create for the answers.",
)
@click.option("--parallel", type=int, help="Questions answered at once.")
@click.option(
    "--temperature",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 5),
    help="Sampling temperature (0: greedy, reproducible).",
)
@click.option(
    "--repeat-penalty",
    type=click.FloatRange(min=0, min_open=True, max=5),
    help="Repetition penalty (default: the settings', 1.05 unless changed; 1: none).",
)
@click.option("--seed", type=int, help="Sampling seed.")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Only the first N questions of each file."
)
@engine_options
def bayling80_command(
    questions, out_dir, parallel, temperature, repeat_penalty, seed, limit, **engine_flags
) -> None:
    """Answer BayLing-80 (single- and multi-turn) in BayLing's JSONL layout, for a judge."""
    from ..batch import BatchEngine
    from ..engine import SamplingConfig
    from ..evaluation.bayling80 import (
        answer_questions,
        answer_records,
        check_questions_path,
        read_questions,
    )
    from ..evaluation.runs import model_facts, now_iso
    from ..evaluation.textio import new_run_dir, write_json, write_text
    from ..progress import progress

    _check_beam_parallel(1, parallel)
    files = check_questions_path(questions)
    sets = [(f, read_questions(f)) for f in files]
    for _path, qs in sets:
        if limit:
            qs[:] = qs[:limit]
    if Path(out_dir).exists():
        raise UsageError(f"output folder {out_dir} already exists; give a new --out folder")
    settings = _settings(engine_flags)
    engine = load_engine_for(settings, engine_flags)
    sampling = SamplingConfig(
        max_tokens=settings.max_tokens,
        temperature=temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        repeat_penalty=settings.repeat_penalty if repeat_penalty is None else repeat_penalty,
        seed=seed,
    )
    batch = BatchEngine(engine, parallel or getattr(settings, "parallel", None))
    folder = new_run_dir(out_dir)
    summary = []
    try:
        total = sum(len(q.turns) for _, qs in sets for q in qs)
        with progress("Answering BayLing-80", total, quiet=bool(engine_flags.get("quiet"))) as bar:
            for path, qs in sets:
                answers, seconds, generated = answer_questions(
                    batch, qs, sampling, system=settings.system_prompt, on_answer=bar.advance
                )
                records = answer_records(qs, answers, engine.model_name)
                write_text(
                    folder / path.name,
                    "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                )
                summary.append(
                    {
                        "file": path.name,
                        "questions": len(qs),
                        "seconds": round(seconds, 2),
                        "generated_tokens": generated,
                    }
                )
                click.echo(
                    f"{path.name}: {len(qs)} questions answered in {seconds:.1f} s -> {folder / path.name}"
                )
        write_json(
            folder / "run.json",
            {
                "kind": "bayling80",
                "created": now_iso(),
                "model": model_facts(engine),
                "sampling": {
                    "temperature": temperature,
                    "repeat_penalty": sampling.repeat_penalty,
                    "seed": seed,
                    "max_tokens": settings.max_tokens,
                },
                "parallel": batch.parallel,
                "files": summary,
            },
        )
    except KeyboardInterrupt:
        raise Cancelled(f"interrupted; the answers finished so far are in {folder}") from None
    finally:
        batch.close()
        engine.close()


# --- quant -----------------------------------------------------------------------------------


@eval_group.command("quant")
@click.option(
    "-m",
    "--model",
    required=True,
    type=click.Path(path_type=Path),
    help="A Hugging Face folder or a GGUF (F16 best).",
)
@click.option("--quants", required=True, help="Quantizations to compare, e.g. Q4_K_M,Q5_K_M,Q8_0.")
@click.option(
    "--test",
    "tests",
    multiple=True,
    nargs=3,
    metavar="DIRECTION SRC REF",
    help="A test set: direction (de-en), source file, reference file (repeatable).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Only the first N segments of each test set."
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to create: GGUFs, report.md, report.json, report.png.",
)
@click.option(
    "--metric",
    type=click.Choice(["chrf", "bleu"]),
    default="chrf",
    show_default=True,
    help="The score whose drop flags a language.",
)
@click.option(
    "--threshold",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Largest acceptable drop, in points.",
)
@click.option("--beam", default=1, show_default=True, type=int)
@click.option("--parallel", type=int, help="Segments decoded at once.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads.")
@click.option("--context", type=click.IntRange(min=64), help="Cap on the context length in tokens.")
@click.option(
    "--max-tokens",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most tokens per translation.",
)
@click.option("--tokenize", help="BLEU tokenizer for every direction instead of each target's.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or notices on stderr.")
def quant_command(
    model,
    quants,
    tests,
    limit,
    out_dir,
    metric,
    threshold,
    beam,
    parallel,
    threads,
    context,
    max_tokens,
    tokenize,
    quiet,
) -> None:
    """The report card: each quantization's cost per language (scores, changes, KL, size, speed)."""
    from ..evaluation.quant import TestSet, format_markdown, parse_quants, report_card
    from ..evaluation.scoring import check_tokenizer, tokenizer_for
    from ..evaluation.textio import (
        check_aligned,
        new_run_dir,
        read_segments,
        write_json,
        write_text,
    )

    _check_beam_parallel(beam, parallel)
    names = parse_quants(quants)
    if not tests:
        raise UsageError(
            "give at least one test set: --test DIRECTION SRC REF (e.g. --test de-en deen.src deen.ref)"
        )
    test_sets = []
    for direction, src, ref in tests:
        if direction.count("-") != 1:
            raise UsageError(f"--test {direction}: the direction is SOURCE-TARGET, e.g. de-en")
        s, t = direction.split("-")
        sources, refs = read_segments(src, "source file"), read_segments(ref, "reference file")
        check_aligned(sources, refs, f"source file {src}", f"reference file {ref}")
        if limit:
            sources, refs = sources[:limit], refs[:limit]
        test_sets.append(TestSet(_language(s, "--test"), _language(t, "--test"), sources, refs))
    for ts in test_sets:
        check_tokenizer(tokenize or tokenizer_for(ts.target))
    if not Path(model).exists():
        raise UsageError(f"model not found: {model} (give a Hugging Face folder or a GGUF file)")
    folder = new_run_dir(out_dir)
    cancel = threading.Event()
    try:
        card = report_card(
            model, names, test_sets, folder, beam=beam, parallel=parallel or 1, threads=threads,
            context=context, max_tokens=max_tokens, metric=metric, threshold=threshold,
            tokenize=tokenize, show_progress=not quiet,
            notify=lambda m: notice(m, quiet=quiet), cancel=cancel,
        )  # fmt: skip
    except KeyboardInterrupt:
        cancel.set()
        raise Cancelled(f"interrupted; the models made so far are in {folder}") from None
    table = format_markdown(card)
    write_json(folder / "report.json", card.as_dict())
    write_text(folder / "report.md", table)
    from ..evaluation.plots import report_card_chart

    report_card_chart(card, folder / "report.png")
    click.echo(table, nl=False)
    notice(f"report card: {folder / 'report.md'}, {folder / 'report.png'}", quiet=quiet)


# --- compare ---------------------------------------------------------------------------------


@eval_group.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--png",
    "png_path",
    type=click.Path(path_type=Path),
    help="Bar chart to write (default: compare.png).",
)
@click.option(
    "--md",
    "md_path",
    type=click.Path(path_type=Path),
    help="Also write the Markdown table to FILE.",
)
@click.option("--title", default="Runs compared", show_default=True, help="The chart's title.")
def compare_command(runs, png_path, md_path, title) -> None:
    """Compare runs' scores: a Markdown table on stdout and a bar chart (PNG)."""
    from ..evaluation import compare
    from ..evaluation.runs import load_run
    from ..evaluation.textio import write_text

    comparison = compare.build([load_run(r) for r in runs])
    png_path = Path(png_path or "compare.png")
    from .common import open_output_check

    open_output_check(png_path)
    if md_path is not None:
        open_output_check(Path(md_path))
    table = compare.markdown(comparison)
    compare.chart(comparison, png_path, title)
    if md_path is not None:
        write_text(Path(md_path), table)
    sys.stdout.write(table)
    notice(f"chart: {png_path}")


def register(group: click.Group) -> None:
    group.add_command(eval_group)
