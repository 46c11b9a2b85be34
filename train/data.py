"""Training data for a run: JSONL conversations to packed, deterministic batches.

The order of everything is a function of the seed and the step number alone: examples are
shuffled once before packing, rows once per epoch. The batch of any optimizer step can be
recomputed from the step number, which is what makes resuming exact without saving a data
loader's state.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from bayling_local.errors import UsageError
from bayling_local.prompts import PromptFormat

from . import packed
from .config import DataConfig
from .conversations import Example, read_jsonl
from .encoding import IGNORE, Encoded, Row, collate, encode, pack, split_by_length


@dataclass
class RunData:
    """Packed training and evaluation rows, and how they were made."""

    train: list[Row]
    eval: list[Row]
    n_examples: int
    n_dropped: int  # too long for seq_len, or nothing to train on

    def trained_tokens(self, rows: Sequence[Row]) -> int:
        return sum(sum(label != IGNORE for label in row.labels[1:]) for row in rows)


def load_examples(paths: Sequence[str]) -> list[Example]:
    examples: list[Example] = []
    for path in paths:
        examples += read_jsonl(path)
    return examples


def build_data(config: DataConfig, fmt: PromptFormat, tokenizer, *, seed: int) -> RunData:
    """Read, encode, filter, split and pack the run's data."""
    train_examples = load_examples(config.train)
    eval_examples = load_examples(config.eval) if config.eval else []
    rng = random.Random(f"data:{seed}")
    rng.shuffle(train_examples)
    if not eval_examples and config.eval_fraction > 0:
        n_eval = max(1, int(len(train_examples) * config.eval_fraction))
        eval_examples, train_examples = train_examples[:n_eval], train_examples[n_eval:]
    encoded_train, dropped_train = split_by_length(
        _encode_all(train_examples, fmt, tokenizer), config.seq_len
    )
    encoded_eval, dropped_eval = split_by_length(
        _encode_all(eval_examples, fmt, tokenizer), config.seq_len
    )
    if not encoded_train:
        raise UsageError(f"no training example fits in seq_len {config.seq_len} tokens")
    return RunData(
        train=pack(encoded_train, config.seq_len, packing=config.packing),
        eval=pack(encoded_eval, config.seq_len, packing=config.packing),
        n_examples=len(encoded_train),
        n_dropped=dropped_train + dropped_eval,
    )


def prepare_data(
    config: DataConfig,
    fmt: PromptFormat,
    tokenizer,
    *,
    seed: int,
    directory: Path,
    identity: dict[str, object],
) -> None:
    """Encode, filter and pack the run's data into ``directory`` (rank 0 does this once).

    The same rows, in the same order, as :func:`build_data`, but written as they are made:
    tokens never pile up in memory (the conversations' text does, to be shuffled). Skipped when
    ``directory`` already holds a cache of the same inputs.
    """
    files = [*config.train, *config.eval]
    for name in files:
        if not Path(name).is_file():
            raise UsageError(f"{name}: no such file")
    parts = {"data": config.model_dump(mode="json"), "seed": seed, **identity}
    digest = packed.fingerprint(parts, files)
    if packed.is_current(directory, digest):
        return
    train_examples = load_examples(config.train)
    eval_examples = load_examples(config.eval) if config.eval else []
    rng = random.Random(f"data:{seed}")
    rng.shuffle(train_examples)
    if not eval_examples and config.eval_fraction > 0:
        n_eval = max(1, int(len(train_examples) * config.eval_fraction))
        eval_examples, train_examples = train_examples[:n_eval], train_examples[n_eval:]
    staging = packed.start(directory)
    counts = {}
    for split, examples in (("train", train_examples), ("eval", eval_examples)):
        writer = packed.RowWriter(staging, split)
        encoded = (encode(e.messages, fmt, tokenizer) for e in examples)
        counts[split] = _pack_into(writer, encoded, config.seq_len, config.packing)
        writer.close()
    n_train, dropped_train = counts["train"]
    if not n_train:
        raise UsageError(f"no training example fits in seq_len {config.seq_len} tokens")
    meta = {
        "fingerprint": digest,
        "n_examples": n_train,
        "n_dropped": dropped_train + counts["eval"][1],
    }
    packed.finish(staging, directory, meta)


def open_data(directory: Path) -> RunData:
    """The packed rows of a prepared run, memory-mapped (every process calls this)."""
    try:
        meta = packed.read_meta(directory)
    except (OSError, ValueError):
        raise UsageError(
            f"{directory} (prepared by rank 0) cannot be read here: with several nodes the run "
            "directory must be on storage every node sees"
        ) from None
    return RunData(
        train=packed.PackedRows.open(directory, "train"),  # type: ignore[arg-type]
        eval=packed.PackedRows.open(directory, "eval"),  # type: ignore[arg-type]
        n_examples=int(meta["n_examples"]),
        n_dropped=int(meta["n_dropped"]),
    )


def _pack_into(writer: packed.RowWriter, encoded, seq_len: int, packing: bool) -> tuple[int, int]:
    """:func:`split_by_length` then :func:`pack`, one example at a time: (kept, dropped)."""
    kept = dropped = 0
    current = Row()
    for example in encoded:
        if len(example) > seq_len or example.n_trained == 0:
            dropped += 1
            continue
        if len(current) and (not packing or len(current) + len(example) > seq_len):
            writer.add(current)
            current = Row()
        current.add(example)
        kept += 1
    if len(current):
        writer.add(current)
    return kept, dropped


def _encode_all(examples: Sequence[Example], fmt: PromptFormat, tokenizer) -> list[Encoded]:
    return [encode(example.messages, fmt, tokenizer) for example in examples]


@dataclass(frozen=True)
class Schedule:
    """Which rows each rank reads at each optimizer step."""

    n_rows: int
    micro_batch_size: int
    grad_accum: int
    world_size: int
    seed: int

    @property
    def rows_per_step(self) -> int:
        return self.micro_batch_size * self.grad_accum * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return self.n_rows // self.rows_per_step

    def order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n_rows, generator=generator).tolist()

    def step_rows(self, step: int) -> list[list[list[int]]]:
        """Row indices for ``step``: ``[micro_step][rank] -> rows``.

        The step's rows are the same whatever the process count (for one global batch); the
        micro-batch of rank ``r`` at micro-step ``m`` is slot ``m * world_size + r`` of them.
        """
        epoch, index = divmod(step, self.steps_per_epoch)
        order = self.order(epoch)
        start = index * self.rows_per_step
        chunk = order[start : start + self.rows_per_step]
        mb = self.micro_batch_size
        return [
            [
                chunk[(m * self.world_size + r) * mb : (m * self.world_size + r + 1) * mb]
                for r in range(self.world_size)
            ]
            for m in range(self.grad_accum)
        ]


def make_batch(
    rows: Sequence[Row], indices: Sequence[int], pad_id: int, *, explicit_mask: bool
) -> dict[str, torch.Tensor]:
    return collate([rows[i] for i in indices], pad_id, explicit_mask=explicit_mask)
