"""BayLing-80: answer the single- and multi-turn instruction sets, ready for a judge.

BayLing-80 (BayLing's ``data/BayLing-80/``) is four JSONL files, English and Chinese, single-
and multi-turn, one question a line: ``{"question_id": 1, "text": "..." | ["turn 1", "turn 2"],
"category": "generic"}``. The answers keep that layout, so a judge (GPT-4 review, as in the
paper) pairs them by ``question_id``: ``text`` holds the answer, or the list of answers to each
turn, and ``model_id`` names the model. Each question is answered on its own conversation;
turn *k* of a multi-turn question sees the model's own earlier answers. All questions of a
turn decode together on the batch engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, ModelError, UsageError
from ..prompts import Message

if TYPE_CHECKING:
    from ..batch import BatchEngine
    from ..engine import SamplingConfig


@dataclass
class Question:
    question_id: Any
    turns: list[str]
    multi: bool  # the file gives ``text`` as a list (answers are written as a list too)
    record: dict[str, Any]


def question_files(path: Path | str) -> list[Path]:
    """The JSONL files to answer: ``path`` itself, or every ``*.jsonl`` in a folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise InputError(f"{path} holds no .jsonl question files")
        return files
    if not path.is_file():
        raise InputError(f"question file not found: {path}")
    return [path]


def read_questions(path: Path) -> list[Question]:
    """Questions of one BayLing-80 file; a line that is not a question is named."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path} is not valid UTF-8 text") from None
    questions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        text = record.get("text") if isinstance(record, dict) else None
        if isinstance(text, str):
            turns, multi = [text], False
        elif isinstance(text, list) and text and all(isinstance(t, str) for t in text):
            turns, multi = list(text), True
        else:
            raise InputError(
                f'{path}:{number}: a question needs "text": a string or a list of strings'
            )
        questions.append(Question(record.get("question_id", number), turns, multi, record))
    if not questions:
        raise InputError(f"{path} holds no questions (it is empty)")
    return questions


def answer_questions(
    batch: BatchEngine,
    questions: Sequence[Question],
    sampling: SamplingConfig,
    *,
    system: str | None = None,
    on_answer: Callable[[], None] | None = None,
) -> tuple[list[list[str]], float, int]:
    """Every turn's answer for each question; returns (answers, seconds, generated tokens)."""
    from ..batch import DecodeRequest

    engine = batch.engine
    stops = tuple(dict.fromkeys((*engine.prompt_format.stop_strings, *sampling.stop)))
    answers: list[list[str]] = [[] for _ in questions]
    generated = 0
    start = time.perf_counter()
    for turn in range(max(len(q.turns) for q in questions)):
        active = [i for i, q in enumerate(questions) if turn < len(q.turns)]
        requests = []
        for i in active:
            messages = [Message("system", system)] if system else []
            for earlier in range(turn):
                messages.append(Message("user", questions[i].turns[earlier]))
                messages.append(Message("assistant", answers[i][earlier]))
            messages.append(Message("user", questions[i].turns[turn]))
            requests.append(DecodeRequest(engine.render(messages), sampling, stops))

        def done(_k: int, _result: object) -> None:
            if on_answer is not None:
                on_answer()

        for i, result in zip(active, batch.run(requests, on_done=done)):
            if result.finish_reason == "cancelled":  # nothing here cancels: the decoder failed
                raise ModelError(
                    f"decoding question {questions[i].question_id} stopped with no answer"
                )
            answers[i].append(result.text.strip())
            generated += result.stats.generated_tokens
    return answers, time.perf_counter() - start, generated


def answer_records(
    questions: Sequence[Question], answers: Sequence[Sequence[str]], model_id: str
) -> list[dict[str, Any]]:
    """Answers in BayLing-80's layout: the question's fields, ``text`` now the answer(s)."""
    records = []
    for question, answer in zip(questions, answers):
        record = {key: value for key, value in question.record.items() if key != "text"}
        record["question_id"] = question.question_id
        record["text"] = list(answer) if question.multi else answer[0]
        record["model_id"] = model_id
        records.append(record)
    return records


def check_questions_path(path: Path | str | None) -> list[Path]:
    if path is None:
        raise UsageError("give the BayLing-80 question files with --questions FILE_OR_FOLDER")
    return question_files(path)
