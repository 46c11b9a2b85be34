"""``models pull``: what to fetch, then download, convert, quantize, validate and register.

Two kinds of pull:

- ``NAME[:QUANT]``: a BayLing model from the registry. Only the files the converter needs are
  downloaded from the official checkpoint (weights, configs, tokenizer), then converted with
  ``convert/``, quantized (the registry's laptop default unless ``:QUANT`` says otherwise),
  validated and registered; the checkpoint is deleted afterwards unless ``--keep-source``.
- ``hf:USER/REPO/FILE.gguf``: any GGUF on the hub, registered as it is.

Downloads (:mod:`.transfer`) go to ``<store>/.downloads/<repo>@<commit>/``; only a validated
GGUF is registered, so an interrupted or corrupt pull never leaves a half model in the store.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import registry
from ..atomic import describe_os_error
from ..errors import BaylingError, Cancelled, ModelError, OutputError, UsageError
from ..registry import KnownModel
from ..store import Store, StoreEntry, default_name_for, validate_name
from .transfer import HubConfig, Notify, RemoteFile, RemoteRepo, fetch_files, fetch_repo

# Files of a Hugging Face LLaMA checkpoint that the converter reads (besides the weights).
CHECKPOINT_SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
)


# --- what to pull --------------------------------------------------------------------------


@dataclass(frozen=True)
class PullTarget:
    """A parsed ``pull`` argument."""

    repo_id: str
    name: str  # the store name it is registered under
    quantization: str | None = None  # checkpoints only: the quantization to produce
    filename: str | None = None  # GGUF pulls only: the file in the repository
    model: KnownModel | None = None

    @property
    def is_gguf(self) -> bool:
        return self.filename is not None


def parse_target(text: str, *, name: str | None = None) -> PullTarget:
    """``bayling-2-8b``, ``bayling-2-8b:Q8_0`` or ``hf:USER/REPO/FILE.gguf``."""
    text = text.strip()
    if text.lower().startswith("hf:"):
        parts = text[3:].strip("/").split("/")
        if len(parts) < 3 or not all(parts) or not parts[-1].lower().endswith(".gguf"):
            raise UsageError(f"expected hf:USER/REPO/FILE.gguf, got {text!r}")
        repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
        known = registry.lookup(repo_id)
        return PullTarget(
            repo_id=repo_id,
            name=validate_name(name or default_name_for(Path(filename))),
            filename=filename,
            model=known,
        )
    base, _, quant = text.partition(":")
    model = registry.require(base)
    from bayling_convert import resolve_quant_type

    quant = resolve_quant_type(quant or model.recommended_quant).name
    default = model.name if quant == model.recommended_quant else f"{model.name}:{quant}"
    return PullTarget(
        repo_id=model.hub_id, name=validate_name(name or default), quantization=quant, model=model
    )


def checkpoint_files(repo: RemoteRepo) -> list[RemoteFile]:
    """The files of a Hugging Face checkpoint the converter needs: never optimizer states,
    duplicate weight formats or anything in sub-folders."""
    top = [f for f in repo.files if "/" not in f.name]
    safetensors = [f for f in top if f.name.endswith(".safetensors")]
    if safetensors:
        weights = safetensors + [f for f in top if f.name == "model.safetensors.index.json"]
    else:
        weights = [
            f
            for f in top
            if re.fullmatch(r"(pytorch_model|model)(-\d+-of-\d+)?\.bin", f.name)
            or f.name == "pytorch_model.bin.index.json"
        ]
    if not weights:
        raise ModelError(f"{repo.repo_id} has no safetensors or PyTorch weights to convert")
    if not any(f.name == "config.json" for f in top):
        raise ModelError(f"{repo.repo_id} has no config.json; it is not a Hugging Face checkpoint")
    return weights + [f for f in top if f.name in CHECKPOINT_SIDE_FILES]


def _safe_repo(repo_id: str) -> str:
    return repo_id.replace("/", "--")


@contextlib.contextmanager
def _exclusive(work: Path) -> Iterator[None]:
    """One pull at a time per download folder: two writers would interleave one partial file."""
    import filelock

    work.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(work) + ".lock", timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise ModelError(
            "another bayling-local is already pulling this model; wait for it to finish"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _download_dir(store: Store, repo: RemoteRepo) -> Path:
    """``.downloads/<repo>@<commit>``; leftovers of older commits of the same repo are removed."""
    root = store.downloads_dir
    prefix = f"{_safe_repo(repo.repo_id)}@"
    if root.is_dir():
        for old in root.iterdir():
            if (
                old.is_dir()
                and old.name.startswith(prefix)
                and old.name != f"{prefix}{repo.commit}"
            ):
                shutil.rmtree(old, ignore_errors=True)
    return root / f"{prefix}{repo.commit}"


# --- the pull ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    entry: StoreEntry
    already_installed: bool = False
    kept_source: Path | None = None


def _installed(store: Store, target: PullTarget) -> StoreEntry | None:
    for entry in store.entries():
        if target.is_gguf:
            if entry.source.startswith(f"hf:{target.repo_id}/{target.filename}@"):
                return entry
        elif (
            target.model is not None
            and entry.known_model == target.model.name
            and entry.quantization == target.quantization
            and entry.source.startswith(f"hf:{target.repo_id}@")
        ):
            return entry
    return None


def _check_base(target: PullTarget, base: Path | None) -> Path | None:
    model = target.model
    if target.is_gguf or model is None or not model.is_delta:
        if base is not None:
            raise UsageError(
                "--base is only needed for the v1.0 models, which are published as weight deltas"
            )
        return None
    if base is None:
        raise UsageError(
            f"{model.name} is published as a weight delta over {model.delta_of}: pass "
            f"--base DIR with the original {model.delta_of} weights in Hugging Face format "
            "(or pull bayling-2-7b, which needs no base)"
        )
    base = base.expanduser()
    if not (base / "config.json").is_file():
        raise UsageError(
            f"--base {base} is not a Hugging Face checkpoint directory (no config.json)"
        )
    return base


def pull(
    text: str,
    *,
    store: Store | None = None,
    name: str | None = None,
    keep_source: bool = False,
    base: Path | None = None,
    force: bool = False,
    verify: bool = False,
    notify: Notify = lambda _line: None,
) -> PullResult:
    """Download, convert, verify and register a model; see the module docstring."""
    store = store or Store()
    target = parse_target(text, name=name)
    base = _check_base(target, base)
    existing = _installed(store, target)
    if existing is not None and not force:
        return PullResult(existing, already_installed=True)
    taken = store.get(target.name)
    if taken is not None and taken.name.lower() == target.name.lower() and not force:
        raise UsageError(
            f"a model named {taken.name!r} is already in the store; pass --name NAME, "
            f"--force to replace it, or remove it with: bayling-local models rm {taken.name}"
        )
    store._ensure_root()
    config = HubConfig.from_env()
    try:
        repo = fetch_repo(target.repo_id, config)
        if target.is_gguf:
            return PullResult(_pull_gguf(store, repo, target, config, force=force, notify=notify))
        return _pull_checkpoint(
            store,
            repo,
            target,
            config,
            base=base,
            keep_source=keep_source,
            force=force,
            verify=verify,
            notify=notify,
        )
    except KeyboardInterrupt:
        raise Cancelled("interrupted; run the same pull again to continue the download") from None
    except OSError as exc:  # a folder that cannot be made, a file that cannot be moved
        raise OutputError(
            describe_os_error(exc, getattr(exc, "filename", None) or store.root)
        ) from None


def _pull_gguf(
    store: Store,
    repo: RemoteRepo,
    target: PullTarget,
    config: HubConfig,
    *,
    force: bool,
    notify: Notify,
) -> StoreEntry:
    assert target.filename is not None
    remote = repo.file(target.filename)
    if remote is None:
        ggufs = [f.name for f in repo.files if f.name.lower().endswith(".gguf")]
        listing = f"; its GGUF files: {', '.join(ggufs[:8])}" if ggufs else "; it has no GGUF files"
        raise ModelError(f"{repo.repo_id} has no file {target.filename!r}{listing}")
    work = _download_dir(store, repo)
    with _exclusive(work):
        digests = fetch_files(repo, [remote], work, config, notify=notify)
        entry = store.add(
            work / remote.name,
            name=target.name,
            move=True,
            replace=force,
            sha256=digests.get(remote.name),
            source=f"hf:{repo.repo_id}/{target.filename}@{repo.commit}",
        )
        shutil.rmtree(work, ignore_errors=True)
    return entry


def _pull_checkpoint(
    store: Store,
    repo: RemoteRepo,
    target: PullTarget,
    config: HubConfig,
    *,
    base: Path | None,
    keep_source: bool,
    force: bool,
    verify: bool,
    notify: Notify,
) -> PullResult:
    from bayling_convert import QUANT_TYPES, convert_checkpoint

    model, quant = target.model, target.quantization
    assert model is not None and quant is not None
    files = checkpoint_files(repo)
    weight_bytes = sum(f.size or 0 for f in files if f.name.endswith((".safetensors", ".bin")))
    # Peak disk use: the checkpoint, the F16 GGUF convert writes first, and the quantized one.
    f16_bytes = min(weight_bytes, int(model.params_b * 2e9 * 1.05)) or weight_bytes
    out_bytes = int(f16_bytes * QUANT_TYPES[quant].bits / 16)
    work = _download_dir(store, repo)
    with _exclusive(work):
        source_dir = work / "checkpoint"
        fetch_files(
            repo, files, source_dir, config, extra_bytes=f16_bytes + out_bytes, notify=notify
        )
        out_path = work / f"{model.name}.{quant}.gguf"
        direct = quant in ("F32", "F16", "BF16", "Q8_0")  # types convert writes itself
        notify(f"converting {repo.repo_id} to {quant}")
        try:
            convert_checkpoint(
                source_dir,
                out_path,
                outtype=quant.lower() if direct else "f16",
                quant=None if direct else quant,
                base_dir=base,
                force=True,
                name=model.name,
                repo=repo.repo_id,
            )
        except Cancelled:
            raise
        except BaylingError as exc:
            raise type(exc)(
                f"{exc.message} (the download is kept: the next pull converts it without downloading again)",
                exit_code=exc.exit_code,
            ) from None
        if verify:
            _verify(out_path, source_dir, base, notify)
        entry = store.add(
            out_path,
            name=target.name,
            move=True,
            replace=force,
            source=f"hf:{repo.repo_id}@{repo.commit}",
        )
        kept: Path | None = None
        if keep_source:
            kept = store.root / "sources" / model.name
            shutil.rmtree(kept, ignore_errors=True)
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source_dir, kept)
        shutil.rmtree(work, ignore_errors=True)
    return PullResult(entry, kept_source=kept)


def _verify(gguf_path: Path, source_dir: Path, base: Path | None, notify: Notify) -> None:
    """Compare the GGUF with the checkpoint run in PyTorch (``convert.verify_gguf``)."""
    from bayling_convert import verify_gguf

    notify("verifying the GGUF against the checkpoint")
    report = verify_gguf(gguf_path, source_dir, base_dir=base)
    failures = report.failures
    if failures:
        gguf_path.unlink(missing_ok=True)
        raise ModelError(
            f"the converted model failed verification ({'; '.join(failures)}); it was not installed"
        )
