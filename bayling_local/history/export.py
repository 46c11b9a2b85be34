"""Exports of one history session: Markdown (with the version tree), JSON, plain text.

Pure functions of a session and its messages, so they are tested without a database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from .migrations import SCHEMA_VERSION
from .records import EXPORT_FORMAT_NAME, MessageRecord, SessionRecord


def to_markdown(session: SessionRecord, messages: Sequence[MessageRecord]) -> str:
    """A readable Markdown document; a translation starts with its versions as a tree."""
    lines = [f"# {session.title}", ""]
    facts = [f"kind: {'translation' if session.kind == 'translate' else 'chat'}"]
    if session.model:
        facts.append(f"model: {session.model}")
    if session.source_lang or session.target_lang:
        facts.append(f"languages: {session.source_lang or 'auto'} → {session.target_lang or '?'}")
    facts += [f"created: {session.created}", f"updated: {session.updated}"]
    lines += [f"- {fact}" for fact in facts] + [""]
    versions = _versions(messages)
    numbers = {message.id: number for number, (message, _) in enumerate(versions, 1)}
    if session.kind == "translate" and versions:
        lines += ["## Versions", ""]
        lines += _tree(versions, numbers, session.current_version)
        current = next((m for m, _ in versions if m.id == session.current_version), None)
        if current is not None:
            lines += ["", f"## Current translation (v{numbers[current.id]})", ""]
            lines += [current.content.rstrip()]
        lines += ["", "## Conversation", ""]
    for message in messages:
        if message.role == "assistant":
            heading = "BayLing"
            if session.kind == "translate":
                heading += f" — v{numbers[message.id]}"
                parent = numbers.get(message.parent_id) if message.parent_id else None
                if parent is not None:
                    heading += f", from v{parent}"
                if message.id == session.current_version:
                    heading += " (current)"
        else:
            heading = {"user": "You", "system": "System"}.get(message.role, message.role)
        if message.status == "stopped":
            heading += " — stopped"
        elif message.status == "cut":
            heading += " — cut off"
        lines += [f"### {heading}", "", message.content.rstrip(), ""]
    return "\n".join(lines)


def _versions(messages: Sequence[MessageRecord]) -> list[tuple[MessageRecord, str]]:
    """Every assistant message with the request that produced it (a refinement, or none)."""
    versions: list[tuple[MessageRecord, str]] = []
    request = ""
    for index, message in enumerate(messages):
        if message.role == "user":
            request = message.content if index else ""  # the first turn is the instruction
        elif message.role == "assistant":
            versions.append((message, request))
    return versions


def _tree(
    versions: list[tuple[MessageRecord, str]], numbers: dict[int, int], current: int | None
) -> list[str]:
    children: dict[int | None, list[tuple[MessageRecord, str]]] = {}
    for message, request in versions:
        parent = message.parent_id if message.parent_id in numbers else None
        children.setdefault(parent, []).append((message, request))
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for message, request in children.get(parent, []):
            what = " ".join(request.split())[:60] or "translation"
            mark = " ← current" if message.id == current else ""
            lines.append(f"{'  ' * depth}- v{numbers[message.id]} · {what}{mark}")
            walk(message.id, depth + 1)

    walk(None, 0)
    return lines


def to_json(session: SessionRecord, messages: Sequence[MessageRecord]) -> str:
    """The session and its messages as one JSON document (stable keys; CJK kept readable)."""
    data = {
        "format": EXPORT_FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "session": asdict(session),
        "messages": [asdict(m) for m in messages],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def to_text(session: SessionRecord, messages: Sequence[MessageRecord]) -> str:
    """A translation as plain text: the source, a blank line, the current translation."""
    current = next((m for m in messages if m.id == session.current_version), None)
    if current is None:
        current = next((m for m in reversed(messages) if m.role == "assistant"), None)
    source = (session.source_text or "").rstrip()
    return f"{source}\n\n{current.content.rstrip() if current else ''}\n"
