"""CLI commands: ``translate``, ``prompt``, ``languages`` and ``bench``.

Thin layers over the library: read input, call it, write output. stdout carries only the
result (translation, prompt text, table, JSON); notices go to stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..documents.command import (
    document_options,
    pop_document_flags,
    run_documents,
    wants_documents,
)
from ..errors import InputError, UsageError
from ..settings import INSTRUCTION_LANGS, load_settings
from .common import (
    complete_language,
    engine_options,
    load_engine_for,
    open_output_check,
    read_input,
    stdout_writer,
)

# --- translate ------------------------------------------------------------------------------


@click.command("translate")
@click.argument("text", nargs=-1)
@click.option(
    "-i", "--input", "input_file", type=click.Path(path_type=Path), help="Read the text from FILE."
)
@click.option(
    "-o",
    "--output",
    "output_file",
    type=click.Path(path_type=Path),
    help="Write the translation to FILE (atomically).",
)
@click.option(
    "-s", "--source", help="Source language (default: detected).", shell_complete=complete_language
)
@click.option(
    "-t",
    "--target",
    help="Target language (default: the settings' target, else English).",
    shell_complete=complete_language,
)
@click.option(
    "--instruction-lang",
    type=click.Choice(INSTRUCTION_LANGS),
    help="Wording of BayLing's instruction.",
)
@click.option(
    "-c",
    "--constraint",
    "constraints",
    multiple=True,
    help="A word the translation must contain (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of plain text.")
@click.option(
    "--show-prompt", is_flag=True, help="Print the prompt(s) instead of running the model."
)
@click.option(
    "--parallel",
    type=int,
    help="Lines translated at once (default: settings, else chosen from memory; see docs/ENGINE.md).",
)
@click.option("--beam", type=int, help="Beam search with N beams (default: settings, else 1).")
@click.option(
    "--alternatives",
    type=int,
    help="Also give the K best translations of each line (K <= --beam).",
)
@document_options
@engine_options
def translate_command(
    text,
    input_file,
    output_file,
    source,
    target,
    instruction_lang,
    constraints,
    as_json,
    show_prompt,
    parallel,
    beam,
    alternatives,
    **engine_flags,
) -> None:
    """Translate TEXT (or -i FILE, or stdin) with BayLing.

    \b
    Examples:
      bayling-local translate -t zh "The weather is nice today."
      echo "Guten Morgen" | bayling-local translate -t en
      bayling-local translate -i report.txt -o report.zh.txt -t zh
    """
    from ..detect import detect
    from ..languages import resolve
    from ..translate import TRANSLATION_SAMPLING, Translator

    document_flags = pop_document_flags(engine_flags)
    if wants_documents(None if text else input_file, document_flags):  # documents: #11
        return run_documents(
            input_file=input_file,
            output_file=output_file,
            source=source,
            target=target,
            instruction_lang=instruction_lang,
            as_json=as_json,
            document_flags=document_flags,
            engine_flags=engine_flags,
            setting_flags=_setting_flags(engine_flags),
        )
    settings = load_settings().with_overrides(
        **_setting_flags(engine_flags), instruction_lang=instruction_lang
    )
    settings = settings.with_overrides(parallel=parallel, beam=beam)
    n_best = _check_batch_flags(settings.parallel, settings.beam, alternatives)
    if text and input_file:
        raise UsageError("give the text either as arguments or with -i, not both")
    target_lang = resolve(target or settings.target)
    source_lang = resolve(source) if source else None
    if source_lang is not None and source_lang == target_lang:
        raise UsageError(f"-s and -t are both {target_lang.name}; choose a different target")
    if settings.instruction_lang not in ("en", "zh"):
        raise UsageError(
            f"instruction language must be en or zh, not {settings.instruction_lang!r}"
        )
    if output_file is not None:
        open_output_check(output_file, inputs=(input_file,) if input_file else ())
    content = " ".join(text) if text else read_input(input_file)
    if text:
        content = read_input(None, data=content.encode("utf-8"))
    if source_lang is None:
        try:
            source_lang = detect(content).language
        except UsageError:
            source_lang = None  # BayLing's instruction names only the target; detection is advisory
    if source_lang is not None and source_lang == target_lang and not show_prompt:
        click.echo(
            f"note: the text already looks like {target_lang.name}; translating anyway", err=True
        )

    engine = load_engine_for(settings, engine_flags, announce=not as_json)
    sampling = replace(TRANSLATION_SAMPLING, max_tokens=settings.max_tokens)
    lanes = _parallel_for(engine, settings.parallel, settings.beam)
    translator = Translator(
        engine,
        sampling,
        instruction_lang=settings.instruction_lang,
        system=settings.system_prompt,
        parallel=lanes,
    )
    if show_prompt:
        _, pieces = translator.plan(content, target_lang, constraints)
        prompts = [
            engine.render(translator.messages_for(p.text, target_lang, constraints)) for p in pieces
        ]
        if as_json:
            click.echo(
                json.dumps(
                    {"format": engine.prompt_format.name, "prompts": prompts}, ensure_ascii=False
                )
            )
        else:
            sys.stdout.write("\n".join(prompts))
            sys.stdout.flush()
        return

    stream_to_stdout = output_file is None and not as_json
    writer = stdout_writer() if stream_to_stdout else None
    if n_best > 1 and not as_json:
        writer = None  # the alternatives are printed after each line below
    result = translator.translate(
        content,
        target_lang,
        source=source_lang,
        constraints=constraints,
        on_text=writer,
        beam=settings.beam,
        n_best=n_best,
    )
    if result.truncated_pieces:
        click.echo(
            f"warning: {result.truncated_pieces} piece(s) hit the token limit and may be cut short; "
            "raise --max-tokens",
            err=True,
        )
    if n_best > 1 and not as_json:
        listing = _alternatives_text(result)
        if output_file is None:
            sys.stdout.write(listing)
            sys.stdout.flush()
        else:
            _write_output(output_file, listing)
        return
    if stream_to_stdout:
        if not result.text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
        return
    if as_json:
        payload: dict[str, Any] = {
            "source": source_lang.code if source_lang else None,
            "target": target_lang.code,
            "translation": result.text,
            "model": engine.model_name,
            "prompt_format": engine.prompt_format.name,
            "pieces": result.pieces,
            "stats": result.stats.as_dict(),
        }
        if n_best > 1 or settings.beam > 1:
            payload["beam"] = settings.beam
            payload["segments"] = [
                {
                    "source": seg.source,
                    "translation": seg.text,
                    "alternatives": [
                        {"text": t, "score": round(v, 4)} for t, v in seg.alternatives
                    ],
                }
                for seg in result.segments
            ]
            if len(result.segments) == 1:
                payload["alternatives"] = payload["segments"][0]["alternatives"]
        rendered = json.dumps(payload, ensure_ascii=False, indent=None)
        if output_file is None:
            click.echo(rendered)
            return
        _write_output(output_file, rendered + "\n")
        return
    _write_output(output_file, result.text if result.text.endswith("\n") else result.text + "\n")


def _check_batch_flags(parallel: int | None, beam: int, alternatives: int | None) -> int:
    """Range checks that need no model; returns the number of alternatives to give."""
    from ..batch import MAX_BEAM, MAX_PARALLEL

    if parallel is not None and not 1 <= parallel <= MAX_PARALLEL:
        raise UsageError(f"--parallel must be between 1 and {MAX_PARALLEL}, not {parallel}")
    if not 1 <= beam <= MAX_BEAM:
        raise UsageError(f"--beam must be between 1 and {MAX_BEAM}, not {beam}")
    if alternatives is None:
        return 1
    if alternatives < 1:
        raise UsageError(f"--alternatives must be at least 1, not {alternatives}")
    if alternatives > beam:
        raise UsageError(
            f"--alternatives {alternatives} needs at least as many beams: add --beam {alternatives}"
        )
    return alternatives


def _parallel_for(engine, parallel: int | None, beam: int) -> int:
    """The requested number of live sequences, checked against memory, or the default."""
    from ..batch import check_parallel, default_parallel

    if parallel is None:
        return default_parallel(engine, beam)
    check_parallel(engine, parallel, beam)
    return parallel


def _alternatives_text(result) -> str:
    """Each line's best translation, then its alternatives indented with their scores."""
    out: list[str] = []
    for segment in result.segments:
        out.append(segment.text)
        for rank, (text, score) in enumerate(segment.alternatives[1:], start=2):
            out.append(f"  {rank}. {text}  ({score:.3f})")
    return "\n".join(out) + "\n"


def _write_output(path: Path, text: str) -> None:
    from ..atomic import write_text_atomic

    write_text_atomic(path, text)


def _setting_flags(flags: dict) -> dict:
    """Engine flags that are also settings (names match Settings fields)."""
    return {
        key: flags.get(key) for key in ("threads", "gpu_layers", "context", "max_tokens", "model")
    }


# --- prompt ----------------------------------------------------------------------------------


@click.command("prompt")
@click.option("--format", "format_name", type=click.Choice(["bayling", "bayling-3"]), required=True)
@click.option("--no-generation-prompt", is_flag=True, help="Leave out the open assistant turn.")
@click.option(
    "--jinja",
    is_flag=True,
    help="Print the format's Jinja chat template instead (for vLLM, TGI, llama-server).",
)
def prompt_command(format_name: str, no_generation_prompt: bool, jinja: bool = False) -> None:
    """Print the exact prompt for a JSON list of {"role", "content"} messages read on stdin."""
    from ..prompts import get_format, to_messages

    if jinja:  # servers that tokenize without special tokens need the template to write BOS
        sys.stdout.write("{{- bos_token -}}" + get_format(format_name).jinja_template + "\n")
        sys.stdout.flush()
        return
    data = read_input(None)
    try:
        items = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(f"stdin is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(items, list):
        raise InputError("stdin must hold a JSON list of messages")
    text = get_format(format_name).render(
        to_messages(items), add_generation_prompt=not no_generation_prompt
    )
    sys.stdout.write(text)
    sys.stdout.flush()


# --- languages -------------------------------------------------------------------------------


@click.command("languages")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def languages_command(as_json: bool) -> None:
    """List the languages BayLing covers and the codes and names each accepts."""
    from ..languages import all_languages, format_table

    if as_json:
        click.echo(
            json.dumps([lang.as_dict() for lang in all_languages()], ensure_ascii=False, indent=2)
        )
    else:
        click.echo(format_table(all_languages()))


# --- bench -----------------------------------------------------------------------------------


def _parallel_list(value: str | None) -> tuple[int, ...]:
    """``--parallel 1,2,4,8`` -> (1, 2, 4, 8), each checked."""
    from ..batch import MAX_PARALLEL

    if not value:
        return ()
    try:
        numbers = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--parallel takes numbers separated by commas, not {value!r}") from None
    for n in numbers:
        if not 1 <= n <= MAX_PARALLEL:
            raise UsageError(f"--parallel must be between 1 and {MAX_PARALLEL}, not {n}")
    return numbers


@click.group("bench", invoke_without_command=True)
@click.option(
    "-p",
    "--prompt-tokens",
    default=512,
    type=click.IntRange(min=1),
    show_default=True,
    help="Prompt length of the prefill test (ppN); reduced to fit the context.",
)
@click.option(
    "-n",
    "--gen-tokens",
    default=128,
    type=click.IntRange(min=1),
    show_default=True,
    help="Tokens of the decode test (tgN); reduced to fit the context.",
)
@click.option(
    "-r",
    "--repetitions",
    default=3,
    type=click.IntRange(min=1),
    show_default=True,
    help="Runs of each test; the median is reported.",
)
@click.option(
    "--parallel",
    "parallel",
    help="Also decode N sequences together, e.g. 1,2,4,8,16 (aggregate tokens/s).",
)
@click.option(
    "--npp",
    default=128,
    type=click.IntRange(min=1),
    show_default=True,
    help="With --parallel: prompt tokens per sequence (llama-batched-bench's -npp).",
)
@click.option(
    "--ntg",
    default=128,
    type=click.IntRange(min=1),
    show_default=True,
    help="With --parallel: tokens decoded per sequence (llama-batched-bench's -ntg).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (pp_tps, tg_tps, ...).")
@engine_options
@click.pass_context
def bench_command(
    ctx: click.Context,
    prompt_tokens: int,
    gen_tokens: int,
    repetitions: int,
    parallel: str | None,
    npp: int,
    ntg: int,
    as_json: bool,
    **engine_flags,
) -> None:
    """Measure prefill and decode speed (llama-bench's pp512 / tg128; with --parallel,
    llama-batched-bench's aggregate decode speed). `bench translate` measures translation."""
    if ctx.invoked_subcommand is not None:
        return
    from ..batch import check_parallel
    from ..bench import run_bench

    sizes = _parallel_list(parallel)
    settings = load_settings().with_overrides(**_setting_flags(engine_flags))
    engine = load_engine_for(settings, engine_flags, announce=not as_json)
    if sizes:
        check_parallel(engine, max(sizes), 1)
    result = run_bench(
        engine,
        prompt_tokens=prompt_tokens,
        gen_tokens=gen_tokens,
        repetitions=repetitions,
        parallel=sizes,
        parallel_prompt=npp,
        parallel_gen=ntg,
    )
    if result.adjusted:
        click.echo(f"note: {result.adjusted}", err=True)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        click.echo(result.format_table())


@bench_command.command("translate")
@click.option(
    "-i",
    "--input",
    "input_file",
    type=click.Path(path_type=Path),
    required=True,
    help="Sentences to translate, one per line.",
)
@click.option("-t", "--target", default="zh", show_default=True, help="Target language.")
@click.option(
    "-l",
    "--lines",
    default=64,
    type=click.IntRange(min=1),
    show_default=True,
    help="First N lines.",
)
@click.option("--parallel", type=int, help="Live sequences of the batched run (default: chosen).")
@click.option("--beam", default=1, type=int, show_default=True, help="Beams per sentence.")
@click.option(
    "-r",
    "--repetitions",
    default=1,
    type=click.IntRange(min=1),
    show_default=True,
    help="Runs of each side; the median is reported.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@engine_options
def bench_translate_command(
    input_file: Path,
    target: str,
    lines: int,
    parallel: int | None,
    beam: int,
    repetitions: int,
    as_json: bool,
    **engine_flags,
) -> None:
    """Translate the first N lines one at a time, then batched; segments per second of each."""
    from ..bench import run_translate_bench
    from ..languages import resolve

    _check_batch_flags(parallel, beam, None)
    target_lang = resolve(target)
    sentences = [line for line in read_input(input_file).splitlines() if line.strip()][:lines]
    settings = load_settings().with_overrides(**_setting_flags(engine_flags))
    engine = load_engine_for(settings, engine_flags, announce=not as_json)
    lanes = _parallel_for(engine, parallel, beam)
    result = run_translate_bench(
        engine,
        sentences,
        target_lang,
        parallel=lanes,
        beam=beam,
        max_tokens=settings.max_tokens,
        repetitions=repetitions,
    )
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key:<18} {value}")


def register(group: click.Group) -> None:
    for command in (translate_command, prompt_command, languages_command, bench_command):
        group.add_command(command)
