"""COMET through unbabel-comet's own ``comet-score`` program, run in its own environment.

unbabel-comet cannot be installed beside bayling-local (it pins ``huggingface-hub<1`` and
``numpy<2``; bayling-local needs huggingface-hub 2), so it is not an extra of this package:
install it apart (``pipx install unbabel-comet``) and bayling-local runs its ``comet-score``
on a checkpoint already on the machine (``--comet PATH``), offline. Without a checkpoint or
without the program, COMET is simply not computed, and the user is told how to get it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError

COMET_INSTALL = (
    "install unbabel-comet in its own environment (pipx install unbabel-comet); it cannot be an "
    "extra of bayling-local because it pins huggingface-hub<1 and numpy<2"
)
COMET_PROGRAM_ENV = "BAYLING_LOCAL_COMET_SCORE"  # path of comet-score, when not on PATH
_SYSTEM_LINE = re.compile(r"\tscore:\s*(-?\d+(?:\.\d+)?)\s*$")


def comet_program() -> str:
    """The ``comet-score`` executable, or a one-line error naming how to install it."""
    program = os.environ.get(COMET_PROGRAM_ENV) or shutil.which("comet-score")
    if not program:
        raise UsageError(f"COMET needs unbabel-comet's comet-score program: {COMET_INSTALL}")
    return program


def resolve_checkpoint(path: Path | str) -> Path:
    """A COMET checkpoint file: ``model.ckpt`` itself, or a model folder holding checkpoints/."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidate = path / "checkpoints" / "model.ckpt"
        if candidate.is_file():
            return candidate
        raise UsageError(f"{path} holds no COMET checkpoint (checkpoints/model.ckpt)")
    if not path.is_file():
        raise UsageError(f"COMET checkpoint not found: {path}")
    return path


def default_checkpoint() -> Path | None:
    """COMET-22 (Unbabel/wmt22-comet-da) where unbabel-comet stores downloads, if present."""
    root = Path.home() / ".cache" / "torch" / "unbabel_comet"
    for found in sorted(root.glob("*wmt22-comet-da*/**/checkpoints/model.ckpt")):
        return found
    return None


def comet_score(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    checkpoint: Path | str,
    *,
    gpus: int = 0,
) -> float:
    """The system-level COMET score of ``hypotheses`` (comet-score's last ``score:`` line)."""
    checkpoint = resolve_checkpoint(checkpoint)
    program = comet_program()
    with tempfile.TemporaryDirectory(prefix="bayling-comet-") as tmp:
        files = []
        for name, lines in (("src", sources), ("hyp", hypotheses), ("ref", references)):
            file = Path(tmp) / f"{name}.txt"
            file.write_text(
                "".join(" ".join(line.splitlines()) + "\n" for line in lines), encoding="utf-8"
            )
            files.append(str(file))
        command = [
            program, "-s", files[0], "-t", files[1], "-r", files[2],
            "--model", str(checkpoint), "--gpus", str(gpus), "--quiet", "--only_system",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise UsageError(f"could not run {program}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise UsageError(f"comet-score failed (exit {done.returncode}): {last}")
    for line in reversed(done.stdout.splitlines()):
        match = _SYSTEM_LINE.search(line)
        if match and "Segment" not in line:
            return float(match[1])
    raise UsageError("comet-score printed no system score")
