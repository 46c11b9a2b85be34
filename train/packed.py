"""Packed training rows on disk, memory-mapped: each process reads only the rows it trains on.

Rank 0 encodes and packs the run's data once into ``RUN_DIR/data/`` (token, label and position
arrays plus row offsets, written as it goes); every process then maps those files and reads
the rows of its own slots of each step (see :class:`bayling_train.data.Schedule`), so no process holds
the packed corpus in memory and the operating system pages in only what is read. A
fingerprint of the inputs (files, sizes, times, tokenizer, settings) decides whether a cache
can be reused on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .encoding import IGNORE, Row

ARRAYS = ("input_ids", "labels", "position_ids")
META = "meta.json"


class RowWriter:
    """Appends rows to the three arrays of a split; :meth:`close` writes the offsets."""

    def __init__(self, directory: Path, split: str) -> None:
        self.directory, self.split = directory, split
        self.handles = {name: (directory / f"{split}.{name}.bin").open("wb") for name in ARRAYS}
        self.offsets = [0]
        self.trained: list[int] = []

    def add(self, row: Row) -> None:
        self.handles["input_ids"].write(np.asarray(row.input_ids, dtype=np.int32).tobytes())
        self.handles["labels"].write(np.asarray(row.labels, dtype=np.int32).tobytes())
        self.handles["position_ids"].write(np.asarray(row.position_ids, dtype=np.int32).tobytes())
        self.offsets.append(self.offsets[-1] + len(row))
        self.trained.append(sum(label != IGNORE for label in row.labels[1:]))

    def close(self) -> int:
        for handle in self.handles.values():
            handle.close()
        np.save(self.directory / f"{self.split}.offsets.npy", np.asarray(self.offsets, np.int64))
        np.save(self.directory / f"{self.split}.trained.npy", np.asarray(self.trained, np.int64))
        return len(self.trained)


@dataclass
class PackedRows:
    """One split's rows, read lazily from the memory-mapped arrays."""

    offsets: np.ndarray
    trained: np.ndarray  # trained (assistant) tokens per row, for the loss denominator
    arrays: dict[str, np.ndarray]

    @classmethod
    def open(cls, directory: Path, split: str) -> PackedRows:
        offsets = np.load(directory / f"{split}.offsets.npy")
        arrays = {}
        for name in ARRAYS:
            path = directory / f"{split}.{name}.bin"
            # np.memmap refuses empty files; an empty split has nothing to map.
            arrays[name] = (
                np.memmap(path, dtype=np.int32, mode="r")
                if path.stat().st_size
                else np.zeros(0, np.int32)
            )
        return cls(offsets, np.load(directory / f"{split}.trained.npy"), arrays)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> Row:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return Row(
            input_ids=self.arrays["input_ids"][start:end].tolist(),
            labels=self.arrays["labels"][start:end].tolist(),
            position_ids=self.arrays["position_ids"][start:end].tolist(),
        )

    def __iter__(self) -> Iterator[Row]:
        return (self[i] for i in range(len(self)))

    def row_length(self, index: int) -> int:
        return int(self.offsets[index + 1] - self.offsets[index])


def fingerprint(parts: dict[str, object], files: list[str]) -> str:
    """A digest of the settings and of each data file's path, size and modification time."""
    stats = []
    for name in files:
        stat = os.stat(name)
        stats.append([name, stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"parts": parts, "files": stats}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def is_current(directory: Path, digest: str) -> bool:
    try:
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("fingerprint") == digest


def start(directory: Path) -> Path:
    """A fresh, empty staging directory next to ``directory``."""
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def finish(staging: Path, directory: Path, meta: dict[str, object]) -> None:
    """Publish a completely written cache in one rename (a killed build leaves no half cache)."""
    (staging / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)


def read_meta(directory: Path) -> dict[str, Any]:
    return json.loads((directory / META).read_text(encoding="utf-8"))
