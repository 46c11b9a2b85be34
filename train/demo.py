"""The demo model that ships with bayling-local, rebuilt by one command: ``bayling-train demo``.

1. Data: scenes from :mod:`bayling_train.demo_corpus` in its five languages, as conversations of one
   to three BayLing translation requests -- exactly the instruction ``bayling-local translate``
   sends (English or Chinese wording), every direction between them.
2. Training: ``recipes/demo.yaml`` -- a small LLaMA-architecture model with its own
   SentencePiece vocabulary, trained from scratch on CPU.
3. Export to GGUF with :mod:`convert` (the BayLing chat template embedded).
4. BLEU on held-out scenes (subject-verb-object triples never seen in training), running the
   GGUF through llama.cpp with the app's own engine.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import permutations
from pathlib import Path

from bayling_local.atomic import write_text_atomic
from bayling_local.languages import resolve
from bayling_local.prompts import Message
from bayling_local.translate import build_instruction

from . import demo_corpus
from . import instructions as ins
from .conversations import Example, write_jsonl
from .datagen import ParallelRecord, Summary, finalize
from .evaluate import BleuReport, EvalItem, evaluate_gguf, write_eval_set

DEMO_NAME = "BayLing demo (tiny, 6 languages)"
DEMO_VOCAB = 1600


@dataclass(frozen=True)
class DemoDataOptions:
    records: int = 50000  # training scenes
    test_records: int = 200  # held-out scenes (unseen subject-verb-object triples)
    new_records: int = 200  # new sentences whose triple training has seen
    seed: int = 0
    zh_instruction_share: float = 0.3  # the rest use BayLing's English wording
    turn_weights: tuple[float, ...] = (0.4, 0.3, 0.3)  # conversations of 1, 2, 3 requests
    phrase_share: float = 0.3  # requests that translate a lexicon phrase instead of a scene


def conversations(records: Sequence[ParallelRecord], options: DemoDataOptions) -> list[Example]:
    """Each scene translated once, in a random direction, grouped into short conversations;
    lexicon phrases ("the old cat", "in the garden") come in between as extra requests."""
    rng = random.Random(f"demo-data:{options.seed}")
    langs = {code: resolve(code) for code in demo_corpus.LANGS}
    phrases = demo_corpus.phrase_records()
    examples: list[Example] = []
    index = 0
    while index < len(records):
        turns = rng.choices(range(1, len(options.turn_weights) + 1), weights=options.turn_weights)[
            0
        ]
        messages: list[Message] = []
        first = None
        for _ in range(turns):
            if rng.random() < options.phrase_share:
                record = rng.choice(phrases)
            elif index < len(records):
                record, index = records[index], index + 1
            else:
                break
            source, target = rng.sample(demo_corpus.LANGS, 2)
            ilang = "zh" if rng.random() < options.zh_instruction_share else "en"
            request = ins.translate_request(
                record.texts[source],
                langs[source],
                langs[target],
                instruction_lang=ilang,
                rng=rng,
                wording="canonical",
            )
            messages += [Message("user", request), Message("assistant", record.texts[target])]
            first = first or (source, target, ilang)
        if first is not None:
            examples.append(
                Example(
                    messages,
                    kind="demo",
                    lang=first[1],
                    source_lang=first[0],
                    instruction_lang=first[2],
                )
            )
    return examples


def eval_items(records: Sequence[ParallelRecord]) -> list[EvalItem]:
    """Held-out scenes dealt round-robin over all directions, with the English instruction."""
    directions = list(permutations(demo_corpus.LANGS, 2))
    return [
        EvalItem(
            source_lang=s,
            target_lang=t,
            source=r.texts[s],
            reference=r.texts[t],
            instruction_lang="en",
        )
        for r, (s, t) in zip(
            records, (directions[i % len(directions)] for i in range(len(records)))
        )
    ]


def build_demo_data(
    train_path: Path,
    test_path: Path | None,
    options: DemoDataOptions,
    new_path: Path | None = None,
) -> Summary:
    """Training conversations, the unseen-triple test set and (optionally) the new-sentence set."""
    train_records, test_records = demo_corpus.corpus(
        options.records, options.test_records, seed=options.seed
    )
    examples, summary = finalize(
        conversations(train_records, options), seed=options.seed, max_chars=100_000
    )
    train_path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(train_path, examples)
    if test_path is not None:
        write_eval_set(test_path, eval_items(test_records))
    if new_path is not None:
        new = demo_corpus.new_sentences(
            options.new_records, n_train=options.records, seed=options.seed
        )
        write_eval_set(new_path, eval_items(new))
    return summary


def build_demo_tokenizer(out_dir: Path, *, vocab_size: int = DEMO_VOCAB, seed: int = 0):
    """The demo's SentencePiece vocabulary: trained so that pieces keep to one lexicon unit."""
    from bayling_local.prompts import BAYLING

    from .spm import train_sentencepiece

    sep = demo_corpus.UNIT_SEPARATOR
    extra = [line for line in BAYLING.default_system.split("\n") if line] + [
        "### Instruction:",
        "### Response:",
    ]
    for code in demo_corpus.LANGS:
        lang = resolve(code)
        extra.append(build_instruction("", lang, instruction_lang="en").strip())
        extra.append(sep.join(["提供这句话的", lang.chinese, "翻译", "："]))
    extra += [sep + line for line in extra]  # also as they start a line of the prompt (no space)
    texts = demo_corpus.tokenizer_text(extra * 20, seed=seed)
    return train_sentencepiece(texts, out_dir, vocab_size=vocab_size, seed=seed, delimiter=sep)


def default_recipe() -> Path:
    return Path(str(resources.files("train").joinpath("recipes/demo.yaml")))


@dataclass
class DemoReport:
    gguf: Path
    size_bytes: int
    train_seconds: float
    cpu_seconds: float  # user + system time of the training: about 2x the wall time on 2 free cores
    steps: int
    bleu: BleuReport  # unseen subject-verb-object triples
    bleu_new: BleuReport  # new sentences of familiar triples

    def text(self) -> str:
        return (
            f"wrote {self.gguf} ({self.size_bytes / 1e6:.1f} MB) after {self.steps} steps "
            f"in {self.train_seconds / 60:.1f} min ({self.cpu_seconds / 60:.1f} CPU-min)\n"
            f"new sentences: {self.bleu_new.text()}\n"
            f"unseen subject-verb-object triples: {self.bleu.text()}"
        )


def build_demo(
    output: Path,
    work_dir: Path,
    *,
    recipe: Path | None = None,
    overrides: Mapping[str, object] | None = None,
    resume: bool = False,
    force: bool = False,
    data_options: DemoDataOptions | None = None,
    quiet: bool = False,
) -> DemoReport:
    """Data, training, export and evaluation of the demo model, with every artefact in ``work_dir``."""
    from .config import load_config
    from .export import export_run
    from .sft import run_sft

    data_dir = work_dir / "data"
    train_path, test_path = data_dir / "train.jsonl", data_dir / "test.jsonl"
    new_path = data_dir / "new.jsonl"
    tokenizer_dir = work_dir / "tokenizer"
    if force or not all(p.exists() for p in (train_path, test_path, new_path)):
        build_demo_data(train_path, test_path, data_options or DemoDataOptions(), new_path)
    if force or not (tokenizer_dir / "tokenizer.model").exists():
        build_demo_tokenizer(tokenizer_dir)
    settings = {
        "run_dir": str(work_dir / "run"),
        "data.train": [str(train_path)],
        "model.tokenizer": str(tokenizer_dir),
        **(overrides or {}),
    }
    config = load_config(recipe or default_recipe(), settings)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_sft(config, resume=resume, overwrite=force and not resume, quiet=quiet)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    exported = export_run(
        config.run_dir,
        output,
        outtype="f16",
        name=DEMO_NAME,
        force=True,
        dtype="float32",
        show_progress=not quiet,
    )
    from .evaluate import read_eval_set

    bleu = evaluate_gguf(exported.gguf, read_eval_set(test_path))
    bleu_new = evaluate_gguf(exported.gguf, read_eval_set(new_path))
    exported.gguf.chmod(0o644)  # shipped in the package: readable by everyone
    report = DemoReport(
        exported.gguf,
        exported.gguf.stat().st_size,
        seconds,
        cpu_seconds,
        result.steps,
        bleu,
        bleu_new,
    )
    write_text_atomic(
        work_dir / "report.json",
        json.dumps(
            {
                "gguf": str(report.gguf),
                "size_bytes": report.size_bytes,
                "train_seconds": round(seconds, 1),
                "train_cpu_seconds": round(cpu_seconds, 1),
                "steps": result.steps,
                "final_losses": result.losses[-5:],
                "eval_loss": result.eval_loss,
                "new_sentences": bleu_new.as_dict(),
                "unseen_triples": bleu.as_dict(),
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
    )
    return report
