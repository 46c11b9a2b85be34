"""``bayling-local tm``: the translation memory (export, import, stats, clear).

Documents translated with ``translate -i`` keep every finished segment in a SQLite memory;
these commands move it to and from TMX (the exchange format of CAT tools), show what it holds,
and empty it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UsageError


@click.group("tm")
def tm_group() -> None:
    """The translation memory of document translation (SQLite; TMX import and export)."""


def _memory():
    from ..documents.memory import TranslationMemory

    return TranslationMemory()


@tm_group.command("export")
@click.argument("tmx_file", type=click.Path(path_type=Path))
def export_command(tmx_file: Path) -> None:
    """Write every unit of the memory to TMX_FILE (TMX 1.4)."""
    from ..cli.common import open_output_check

    open_output_check(tmx_file)
    with _memory() as memory:
        count = memory.export_tmx(tmx_file)
    click.echo(f"exported {count} units to {tmx_file}", err=True)


@tm_group.command("import")
@click.argument("tmx_file", type=click.Path(path_type=Path))
def import_command(tmx_file: Path) -> None:
    """Add TMX_FILE's translation units (used before any machine translation)."""
    with _memory() as memory:
        count = memory.import_tmx(tmx_file)
    click.echo(f"imported {count} units from {tmx_file}", err=True)


@tm_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def stats_command(as_json: bool) -> None:
    """How many units the memory holds, by language pair."""
    with _memory() as memory:
        stats = memory.stats()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "path": stats.path,
                    "units": stats.units,
                    "machine": stats.machine,
                    "imported": stats.imported,
                    "size_bytes": stats.size_bytes,
                    "pairs": [{"source": s, "target": t, "units": n} for s, t, n in stats.pairs],
                }
            )
        )
        return
    click.echo(f"memory: {stats.path} ({stats.size_bytes / 1e6:.1f} MB)")
    click.echo(
        f"units: {stats.units} ({stats.machine} machine-translated, {stats.imported} imported)"
    )
    for source, target, count in stats.pairs:
        click.echo(f"  {source} -> {target}: {count}")


@tm_group.command("clear")
@click.option("-s", "--source", help="Only units from this language.")
@click.option("-t", "--target", help="Only units into this language.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def clear_command(source: str | None, target: str | None, yes: bool) -> None:
    """Delete the memory's units (all, or one language pair's)."""
    import sys

    from ..languages import resolve

    source_code = resolve(source).code if source else None
    target_code = resolve(target).code if target else None
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("tm clear deletes translations; confirm with --yes")
        click.confirm("Delete the translation memory's units?", abort=True, err=True)
    with _memory() as memory:
        count = memory.clear(source_lang=source_code, target_lang=target_code)
    click.echo(f"deleted {count} units", err=True)


def register(group: click.Group) -> None:
    group.add_command(tm_group)
