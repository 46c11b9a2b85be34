"""The data each training process reads: packed rows on disk, and which rows a rank gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling_local.errors import UsageError
from bayling_local.prompts import get_format
from bayling_train.config import DataConfig
from bayling_train.data import Schedule, build_data, open_data, prepare_data
from bayling_train.demo import DemoDataOptions, build_demo_data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "train.jsonl"
    build_demo_data(path, None, DemoDataOptions(records=120, seed=3))
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_spm_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_spm_checkpoint))


IDENTITY = {"tokenizer": "tiny", "vocab": 0, "prompt_format": "bayling"}


def test_the_packed_cache_holds_the_rows_build_data_makes(corpus, tokenizer, tmp_path):
    config = DataConfig(train=[str(corpus)], eval_fraction=0.1, seq_len=256)
    fmt = get_format("bayling")
    directory = tmp_path / "data"
    prepare_data(config, fmt, tokenizer, seed=5, directory=directory, identity=IDENTITY)
    stored, reference = open_data(directory), build_data(config, fmt, tokenizer, seed=5)
    assert (stored.n_examples, stored.n_dropped) == (reference.n_examples, reference.n_dropped)
    for split in ("train", "eval"):
        rows, expected = getattr(stored, split), getattr(reference, split)
        assert len(rows) == len(expected) > 0
        assert [vars(r) for r in rows] == [vars(r) for r in expected]
    assert list(stored.train.trained) == [
        reference.trained_tokens([row]) for row in reference.train
    ]
    # Reused while nothing changed; rebuilt when a setting does.
    stamp = (directory / "train.input_ids.bin").stat().st_mtime_ns
    prepare_data(config, fmt, tokenizer, seed=5, directory=directory, identity=IDENTITY)
    assert (directory / "train.input_ids.bin").stat().st_mtime_ns == stamp
    longer = config.model_copy(update={"seq_len": 512})
    prepare_data(longer, fmt, tokenizer, seed=5, directory=directory, identity=IDENTITY)
    assert open_data(directory).n_dropped < stored.n_dropped


def test_missing_data_is_one_line(tokenizer, tmp_path):
    config = DataConfig(train=[str(tmp_path / "none.jsonl")])
    with pytest.raises(UsageError, match="none.jsonl: no such file"):
        prepare_data(
            config,
            get_format("bayling"),
            tokenizer,
            seed=0,
            directory=tmp_path / "d",
            identity=IDENTITY,
        )
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("step", [0, 3, 7])
def test_every_process_count_trains_the_same_micro_batches(step):
    """Slot m * world + r of a step holds the same rows whatever the process count."""
    batch, micro = 16, 2

    def slots(world: int) -> list[list[int]]:
        schedule = Schedule(
            n_rows=100,
            micro_batch_size=micro,
            grad_accum=batch // (micro * world),
            world_size=world,
            seed=4,
        )
        plan = schedule.step_rows(step)
        return [plan[m][r] for m in range(len(plan)) for r in range(world)]

    one = slots(1)
    assert len(one) == batch // micro and all(len(rows) == micro for rows in one)
    for world in (2, 4, 8):
        assert slots(world) == one
    # Ranks read disjoint rows.
    rows = [i for group in one for i in group]
    assert len(rows) == len(set(rows))
