"""What the package installs into a user's environment: only names that say whose they are.

The folders convert/ and train/ install as ``bayling_convert`` and ``bayling_train``; names as
generic as ``convert`` or ``train`` would shadow, or be shadowed by, other packages.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OLD_IMPORT = re.compile(r"^\s*(from|import)\s+(convert|train)\b|-m\s+(convert|train)\.", re.M)


def test_every_installed_top_level_name_is_ours() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    top_level = {name.split(".")[0] for name in setuptools["packages"]}
    assert top_level == {"bayling_local", "bayling_convert", "bayling_train"}
    assert setuptools["package-dir"] == {
        "bayling_local": "bayling_local",
        "bayling_convert": "convert",
        "bayling_train": "train",
    }
    # Every package folder is listed (a forgotten subpackage would install without its modules).
    folders = {
        ".".join(path.parent.relative_to(REPO).parts)
        for root in ("bayling_local", "convert", "train")
        for path in (REPO / root).rglob("__init__.py")
    }
    renamed = {
        name.replace("convert", "bayling_convert", 1) if name.startswith("convert") else name
        for name in folders
    }
    renamed = {
        name.replace("train", "bayling_train", 1) if name.startswith("train") else name
        for name in renamed
    }
    assert renamed == set(setuptools["packages"])


def test_the_installed_names_import_and_the_generic_ones_do_not(tmp_path: Path) -> None:
    code = (
        "import importlib.util, bayling_convert, bayling_train, bayling_train.cli\n"
        "print(bayling_convert.__file__)\n"
        "print(importlib.util.find_spec('convert'), importlib.util.find_spec('train'))\n"
    )
    # Run from an empty folder: the repository's own folders are not on the path there.
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    first, second = result.stdout.splitlines()
    assert Path(first).parent == REPO / "convert"
    assert second == "None None"


def test_no_source_imports_the_old_names() -> None:
    offenders = []
    for pattern in ("*.py", "*.md", "*.yaml", "*.toml", "*.sh"):
        for path in REPO.rglob(pattern):
            if any(part in {".git", "build", "node_modules"} for part in path.parts):
                continue
            if ".egg-info" in str(path) or "__snapshots__" in path.parts:
                continue
            text = path.read_text(errors="replace")
            offenders += [
                f"{path.relative_to(REPO)}: {m.group(0)}" for m in OLD_IMPORT.finditer(text)
            ]
    assert offenders == []
