"""Helpers and fixtures shared by the terminal-UI tests (this module holds no tests itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bayling_local.history import History
from bayling_local.settings import Settings
from tests.support.tiny import TinyShape, make_tiny_checkpoint, make_tiny_gguf

SIZE = (110, 34)

# Greedy, one thread (two llama.cpp threads on a busy two-core runner spin against the UI
# thread), short replies: flows stay fast and reproducible.
TEST_SETTINGS = Settings(threads=1, temperature=0.0, max_tokens=16)


class TickClock:
    """A history clock that advances one minute per call: fixed dates for snapshots."""

    def __init__(self) -> None:
        self.tick = 0

    def __call__(self) -> str:
        self.tick += 1
        return f"2024-05-01T{9 + self.tick // 60:02d}:{self.tick % 60:02d}:00+00:00"


def make_app(
    model: Path | str | None = None,
    *,
    autoload: bool | None = None,
    history: History | None = None,
    **settings,
):
    """The app with test settings; ``model`` is loaded on start unless ``autoload`` is False."""
    from bayling_local.tui.app import BaylingApp

    chosen = Settings(**{**TEST_SETTINGS.__dict__, **settings})
    return BaylingApp(
        model=str(model) if model is not None else None,
        settings=chosen,
        history=history,
        autoload=(model is not None) if autoload is None else autoload,
        ime_window=0.0,  # Pilot types faster than any person: no input-method guard in flows
    )


async def wait_for(
    pilot, condition: Callable[[], object], timeout: float = 30.0, what: str = ""
) -> None:
    """Let the app run until ``condition()`` holds (workers run in threads meanwhile)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.02)


async def wait_idle(pilot, app) -> None:
    """Until no reply is being generated and the last messages were handled."""
    await wait_for(pilot, lambda: not app.generating, what="the reply to finish")
    await pilot.pause(0.05)


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[" " if c == " " else c for c in text])


def notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.fixture(scope="session")
def slow_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bigger tiny model (8k context, 700-3,000 tokens/s on one thread): long replies to stop."""
    out = tmp_path_factory.mktemp("tui-slow")
    shape = TinyShape(hidden_size=256, num_layers=4, intermediate_size=512, context_length=8192)
    checkpoint = make_tiny_checkpoint(out / "hf", "spm", shape=shape)
    return make_tiny_gguf(out, "spm", "f32", checkpoint=checkpoint)


def run(coro) -> None:
    asyncio.run(coro)


def stage_history(history: History, *, model: str) -> tuple[int, int]:
    """A refined translation (three versions) and a chat with Markdown and a stopped reply:
    what the snapshot tests and benchmarks/tui_screenshots.py show. Returns their session ids."""
    text = "梅西获得了金球奖，这是他的第八座金球奖。"
    t = history.new_session(
        "translate",
        text,
        model=model,
        source_lang="zh",
        target_lang="en",
        source_text=text,
    )
    history.add_message(t, "user", f"Provide the English translation for this sentence: {text}")
    v1 = history.add_message(t, "assistant", "Messi won the Golden Ball, his eighth Golden Ball.")
    history.add_message(t, "user", "use 'Ballon d'Or' for 金球奖", parent_id=v1)
    v2 = history.add_message(
        t, "assistant", "Messi won the Ballon d'Or, his eighth Ballon d'Or.", parent_id=v1
    )
    history.add_message(t, "user", "more formal", parent_id=v2)
    v3 = history.add_message(
        t, "assistant", "Messi was awarded the Ballon d'Or, his eighth such honour.", parent_id=v2
    )
    history.update_session(t, current_version=v3)
    c = history.new_session("chat", "How do I reverse a list in Python?", model=model)
    history.add_message(c, "user", "How do I reverse a list in Python?")
    history.add_message(
        c,
        "assistant",
        "Two common ways:\n\n1. **In place**, changing the list:\n\n```python\nitems.reverse()\n```\n\n"
        "2. **A reversed copy**, leaving the list as it is:\n\n```python\nbackwards = items[::-1]\n```\n\n"
        "Use `reversed(items)` when you only need to iterate.",
    )
    history.add_message(c, "user", "用中文解释一下切片。")
    history.add_message(
        c,
        "assistant",
        "切片 `items[::-1]` 的步长是 -1，所以从最后一个元素开始向前取。",
        status="stopped",
    )
    return t, c
