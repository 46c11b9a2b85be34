"""Training conversations and the JSONL files that hold them.

The builders write sharegpt-style JSONL, the layout most fine-tuning tools read::

    {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}],
     "type": "interactive", "lang": "de", "source_lang": "zh", "instruction_lang": "en"}

Readers also accept ``{"messages": [{"role", "content"}]}`` and alpaca records
(``instruction``, ``input``, ``output``), so users can mix in the instruction sets they have.
A malformed line is an :class:`~bayling_local.errors.InputError` naming file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayling_local.atomic import atomic_open
from bayling_local.errors import InputError, PromptError
from bayling_local.prompts import Message, to_messages

_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}
_ROLE_TO_SHAREGPT = {"user": "human", "assistant": "gpt", "system": "system"}


@dataclass
class Example:
    """One training conversation and what it is (for mixing and the summary)."""

    messages: list[Message]
    kind: str = "chat"  # interactive | crosslingual | zh | en | chat | ...
    lang: str | None = None  # language of the responses
    source_lang: str | None = None
    instruction_lang: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "conversations": [
                {"from": _ROLE_TO_SHAREGPT[m.role], "value": m.content} for m in self.messages
            ],
            "type": self.kind,
        }
        for key in ("lang", "source_lang", "instruction_lang"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        record.update(self.extra)
        return record

    def key(self) -> str:
        """What makes two examples duplicates: the same turns, ignoring surrounding spaces."""
        return "\x1e".join(f"{m.role}\x1f{' '.join(m.content.split())}" for m in self.messages)

    def n_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)


def parse_record(record: Any, *, kind: str | None = None, lang: str | None = None) -> Example:
    """One JSON object in any of the accepted layouts, validated into an :class:`Example`."""
    if not isinstance(record, Mapping):
        raise PromptError("expected a JSON object")
    if "conversations" in record:
        turns = record["conversations"]
        if not isinstance(turns, list):
            raise PromptError("'conversations' is not a list")
        items = []
        for index, turn in enumerate(turns):
            if not isinstance(turn, Mapping) or turn.get("from") not in _SHAREGPT_ROLES:
                raise PromptError(f"turn {index} needs 'from' (human, gpt or system) and 'value'")
            items.append({"role": _SHAREGPT_ROLES[turn["from"]], "content": turn.get("value")})
        if isinstance(record.get("system"), str) and record["system"]:
            items.insert(0, {"role": "system", "content": record["system"]})
        messages = to_messages(items)
    elif "messages" in record:
        messages = to_messages(record["messages"])
    elif "instruction" in record and "output" in record:
        instruction, extra_input, output = (
            record["instruction"],
            record.get("input") or "",
            record["output"],
        )
        if not all(isinstance(x, str) for x in (instruction, extra_input, output)):
            raise PromptError("alpaca fields 'instruction', 'input' and 'output' must be text")
        user = f"{instruction}\n{extra_input}" if extra_input.strip() else instruction
        messages = [Message("user", user), Message("assistant", output)]
    else:
        raise PromptError(
            "expected 'conversations' (sharegpt), 'messages', or 'instruction'/'output' (alpaca)"
        )
    turns = [m for m in messages if m.role != "system"]
    if not turns or turns[-1].role != "assistant":
        raise PromptError("the conversation must end with an assistant reply")
    for previous, current in zip(turns, turns[1:]):
        if previous.role == current.role:
            raise PromptError("user and assistant turns must alternate")
    if turns[0].role != "user":
        raise PromptError("the conversation must start with a user turn")
    return Example(
        messages=messages,
        kind=kind or str(record.get("type") or "chat"),
        lang=lang or record.get("lang"),
        source_lang=record.get("source_lang"),
        instruction_lang=record.get("instruction_lang"),
    )


def read_jsonl(
    path: Path | str, *, kind: str | None = None, lang: str | None = None
) -> Iterator[Example]:
    """Examples from a JSONL file; the first bad line stops with file and line number."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                try:
                    yield parse_record(record, kind=kind, lang=lang)
                except PromptError as exc:
                    raise InputError(f"{path}:{number}: {exc.message}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None


def write_jsonl(path: Path | str, examples: Iterable[Example]) -> int:
    """Write examples atomically; returns how many."""
    count = 0
    with atomic_open(path) as handle:
        for example in examples:
            handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count
