"""CLI commands: ``convert``, ``quantize`` and ``verify-gguf`` (thin layers over ``convert/``).

stdout carries the result (the path written, or the verification report); progress and notices
go to stderr.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import click

from ..errors import BaylingError

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def register(group: click.Group) -> None:
    """Add this module's commands to the main group."""
    group.add_command(convert_command)
    group.add_command(quantize_command)
    group.add_command(verify_command)


def _notice(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)


def _threads(threads: int | None, quiet: bool) -> int | None:
    """``--threads`` lowered to the machine's cores, said once (100000 threads stall it)."""
    from ..settings import clamp_threads

    clamped, note = clamp_threads(threads or None)
    if note:
        _notice(note, quiet)
    return clamped if threads else threads


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GiB"


def _report_failure(report) -> None:
    raise BaylingError("verification failed: " + "; ".join(report.failures), exit_code=1)


@click.command("convert")
@click.argument("hf_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="GGUF to write (default: DIR-NAME.TYPE.gguf here).",
)
@click.option(
    "--outtype",
    type=click.Choice(OUTTYPES, case_sensitive=False),
    default="f16",
    show_default=True,
    help="Type convert writes itself.",
)
@click.option(
    "--quant",
    metavar="TYPE",
    help="Then quantize with llama.cpp (Q4_K_M, Q5_K_M, Q6_K, Q8_0, ...).",
)
@click.option(
    "--base",
    "base_dir",
    type=click.Path(path_type=Path),
    help="Base checkpoint of a v1.0 weight delta (target = base + delta).",
)
@click.option(
    "--name", help="Model name for the GGUF; a known BayLing name also sets its source and licence."
)
@click.option(
    "--repo",
    help="Hugging Face id the checkpoint came from (general.source.huggingface.repository).",
)
@click.option(
    "--verify", is_flag=True, help="Compare the GGUF with the checkpoint run by transformers."
)
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    help="Threads for --quant and --verify (0: automatic).",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or notices on stderr.")
def convert_command(
    hf_dir, output, outtype, quant, base_dir, name, repo, verify, threads, force, quiet
) -> None:
    """Convert a LLaMA-family Hugging Face checkpoint in HF_DIR to GGUF.

    \b
    Examples:
      bayling-local convert ./bayling-2-7b -o bayling-2-7b.f16.gguf
      bayling-local convert ./bayling-2-llama-3-8b --quant Q4_K_M --verify
      bayling-local convert ./bayling-7b-diff --base ./llama-7b -o bayling-7b.gguf
    """
    from bayling_convert import convert_checkpoint, resolve_quant_type, verify_gguf

    threads = _threads(threads, quiet)
    if quant:
        resolve_quant_type(quant)  # an unknown type fails before any work
    if output is None:
        label = quant.upper() if quant else outtype.upper()
        output = Path(f"{Path(hf_dir).resolve().name}.{label}.gguf")
    started = time.monotonic()
    convert_checkpoint(
        hf_dir,
        output,
        outtype=outtype.lower(),
        quant=quant,
        base_dir=base_dir,
        force=force,
        name=name,
        repo=repo,
        threads=threads,
        show_progress=not quiet,
    )
    _notice(f"wrote {output} ({_size(output)}) in {time.monotonic() - started:.1f}s", quiet)
    if verify:
        _notice("verifying against the checkpoint (transformers) ...", quiet)
        report = verify_gguf(output, hf_dir, base_dir=base_dir, threads=threads or None)
        for line in report.lines():
            _notice(line, quiet)
        if not report.ok:
            output.unlink(missing_ok=True)
            raise BaylingError(
                "verification failed, the GGUF was removed: " + "; ".join(report.failures),
                exit_code=1,
            )
    click.echo(str(output))


@click.command("quantize")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.argument("qtype", metavar="TYPE")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="Threads (0: all cores).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or notices on stderr.")
def quantize_command(src, dst, qtype, threads, force, quiet) -> None:
    """Quantize the GGUF SRC to DST as TYPE with llama.cpp.

    \b
    Types without an importance matrix: F32 F16 BF16 Q8_0 Q6_K Q5_K_M Q5_K_S Q5_1 Q5_0
    Q4_K_M Q4_K_S Q4_1 Q4_0 IQ4_NL IQ4_XS Q3_K_L Q3_K_M Q3_K_S IQ3_M IQ3_S Q2_K.
    Q4_K_M is the usual balance; see docs/CONVERT.md for sizes and quality.
    """
    from bayling_convert import quantize_gguf

    threads = _threads(threads, quiet) or 0
    started = time.monotonic()
    quantize_gguf(src, dst, qtype, force=force, threads=threads, show_progress=not quiet)
    _notice(f"wrote {dst} ({_size(dst)}) in {time.monotonic() - started:.1f}s", quiet)
    click.echo(str(dst))


@click.command("verify-gguf")
@click.argument("gguf", type=click.Path(path_type=Path))
@click.argument("hf_dir", type=click.Path(path_type=Path))
@click.option(
    "--base",
    "base_dir",
    type=click.Path(path_type=Path),
    help="Base checkpoint when HF_DIR is a v1.0 delta.",
)
@click.option(
    "--tokens",
    type=click.IntRange(min=0),
    default=32,
    show_default=True,
    help="Greedy tokens to compare per prompt.",
)
@click.option("--threads", type=click.IntRange(min=1), help="llama.cpp threads (default: up to 4).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON.")
def verify_command(gguf, hf_dir, base_dir, tokens, threads, as_json) -> None:
    """Check that the GGUF computes what the checkpoint in HF_DIR computes.

    Runs both (transformers and llama.cpp) on the same prompts and reports max |delta logit|
    and greedy agreement (unquantized) or top-1 agreement and mean KL (quantized), and whether
    the tokenizers give identical ids on multilingual text. Exits 1 when a bound fails.
    """
    from bayling_convert import verify_gguf

    threads = _threads(threads, as_json)
    report = verify_gguf(gguf, hf_dir, base_dir=base_dir, greedy_tokens=tokens, threads=threads)
    if as_json:
        data = asdict(report)
        data.update(ok=report.ok, failures=report.failures, rel_logit_diff=report.rel_logit_diff)
        data["bounds"] = {k: (v if v != float("inf") else None) for k, v in data["bounds"].items()}
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        _report_failure(report)
