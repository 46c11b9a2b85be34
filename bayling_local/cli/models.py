"""CLI commands: ``bayling-local models list|show|rm|import|default|pull``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import registry
from ..resolve import clear_default_if, default_model_name, set_default_model
from ..store import PULL_HINT, Store, StoreEntry


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _note(line: str) -> None:
    click.echo(line, err=True)


def _is_default(entry: StoreEntry, default: str | None, store: Store) -> bool:
    if not default:
        return False
    return default.lower() == entry.name.lower() or default == str(store.path_of(entry))


def _entry_json(entry: StoreEntry, store: Store, default: str | None) -> dict[str, object]:
    data = entry.to_json()
    data["path"] = str(store.path_of(entry))
    data["default"] = _is_default(entry, default, store)
    return data


@click.group("models", context_settings={"help_option_names": ["-h", "--help"]})
def models_group() -> None:
    """Manage local models: list, pull from the Hugging Face hub, import, remove."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest entries as JSON.")
def list_command(as_json: bool) -> None:
    """List installed models (the default one is marked with *)."""
    store = Store()
    entries = store.entries()
    default = default_model_name()
    if as_json:
        click.echo(
            json.dumps(
                [_entry_json(e, store, default) for e in entries], indent=2, ensure_ascii=False
            )
        )
        return
    if not entries:
        _note(f"no models installed; get BayLing with: {PULL_HINT}")
        return
    rows = [("NAME", "QUANT", "SIZE", "FORMAT", "ADDED")]
    for entry in entries:
        mark = "*" if _is_default(entry, default, store) else " "
        rows.append(
            (
                f"{mark}{entry.name}",
                entry.quantization,
                _size(entry.size),
                entry.prompt_format,
                entry.added[:10],
            )
        )
    rows[0] = (" " + rows[0][0], *rows[0][1:])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@models_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def show_command(name: str, as_json: bool) -> None:
    """Show what is known about an installed (or a known) model."""
    store = Store()
    entry = store.get(name)
    if entry is None:
        known = registry.lookup(name.partition(":")[0])
        if known is None:
            store.require(name)  # raises the 'unknown model' error with suggestions
            return
        _show_known(known, as_json)
        return
    path = store.path_of(entry)
    data = _entry_json(entry, store, default_model_name())
    known = registry.lookup(entry.known_model) if entry.known_model else None
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    lines = [
        ("name", entry.name + ("  (default)" if data["default"] else "")),
        ("file", str(path) + ("  (linked, not copied)" if entry.linked else "")),
        ("size", _size(entry.size)),
        ("quantization", entry.quantization),
        ("architecture", entry.architecture),
        ("context", str(entry.context_length or "?")),
        ("prompt format", entry.prompt_format),
        ("sha256", entry.sha256),
        ("source", entry.source),
        ("added", entry.added),
    ]
    if known is not None:
        lines += [
            ("model", f"{known.name} ({known.hub_id}, base {known.base})"),
            ("licence", known.licence),
        ]
    if not path.is_file():
        lines.append(("warning", "the file is missing"))
    for key, value in lines:
        click.echo(f"{key + ':':15}{value}")


def _show_known(known: registry.KnownModel, as_json: bool) -> None:
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps({**asdict(known), "installed": False}, indent=2, ensure_ascii=False))
        return
    lines = [
        ("name", known.name),
        ("hub id", known.hub_id),
        ("base", known.base + (" (published as a weight delta)" if known.is_delta else "")),
        ("parameters", f"{known.params_b:g}B"),
        ("context", str(known.context)),
        ("prompt format", known.prompt_format),
        ("licence", known.licence),
        ("recommended", known.recommended_quant),
        ("installed", f"no; run: bayling-local models pull {known.name}"),
    ]
    for key, value in lines:
        click.echo(f"{key + ':':15}{value}")


@models_group.command("rm")
@click.argument("name")
def rm_command(name: str) -> None:
    """Remove a model from the store (a linked file is left where it is)."""
    store = Store()
    entry = store.remove(name)
    cleared = clear_default_if(entry.name)
    freed = "" if entry.linked else f", freed {_size(entry.size)}"
    click.echo(f"removed {entry.name}{freed}")
    if cleared:
        _note("it was the default model; set another with: bayling-local models default NAME")


@models_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", help="Name in the store (default: from the file name).")
@click.option("--link", is_flag=True, help="Register the file where it is instead of copying it.")
def import_command(path: Path, name: str | None, link: bool) -> None:
    """Add a GGUF file you already have to the store (its header is checked first)."""
    entry = Store().add(path, name=name, link=link)
    how = "linked" if entry.linked else "imported"
    click.echo(
        f"{how} {entry.name} ({entry.quantization}, {_size(entry.size)}, format {entry.prompt_format})"
    )


@models_group.command("default")
@click.argument("name")
def default_command(name: str) -> None:
    """Make NAME the model every command uses when --model is not given."""
    resolved = set_default_model(name)
    click.echo(f"default model: {resolved.name}")


@models_group.command("pull")
@click.argument("target", metavar="NAME[:QUANT] | hf:USER/REPO/FILE.gguf")
@click.option("--name", help="Name in the store (default: the model's short name).")
@click.option("--keep-source", is_flag=True, help="Keep the downloaded Hugging Face checkpoint.")
@click.option(
    "--base",
    type=click.Path(path_type=Path, file_okay=False),
    help="The original LLaMA weights (HF format) that the v1.0 delta models are added to.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Compare the converted model with the checkpoint run in PyTorch (needs the train extra).",
)
@click.option(
    "--force", is_flag=True, help="Pull again even if installed; replace a model of the same name."
)
def pull_command(
    target: str, name: str | None, keep_source: bool, base: Path | None, verify: bool, force: bool
) -> None:
    """Download a model from the Hugging Face hub, convert and quantize it, and install it.

    \b
    Examples:
      bayling-local models pull bayling-2-8b
      bayling-local models pull bayling-2-7b:Q8_0
      bayling-local models pull hf:USER/REPO/model.Q4_K_M.gguf
    """
    from ..hub import pull

    result = pull(
        target,
        name=name,
        keep_source=keep_source,
        base=base,
        force=force,
        verify=verify,
        notify=_note,
    )
    entry = result.entry
    if result.already_installed:
        click.echo(
            f"{entry.name} ({entry.quantization}) is already installed; use --force to pull it again"
        )
        return
    click.echo(f"installed {entry.name} ({entry.quantization}, {_size(entry.size)})")
    if result.kept_source is not None:
        _note(f"kept the checkpoint in {result.kept_source}")
    if default_model_name() is None and len(Store().entries()) == 1:
        _note(
            f"it is the only model, so commands use it; make it explicit with: bayling-local models default {entry.name}"
        )


def register(group: click.Group) -> None:
    """Add this module's commands to the main group."""
    group.add_command(models_group)
