"""Screenshots of the terminal UI's main views for ``docs/screenshots/`` (PNG).

The app runs headless (Textual's Pilot) at a fixed size and each view is saved with
``App.save_screenshot`` as SVG, then converted to PNG with ``rsvg-convert`` (Debian package
``librsvg2-bin``; it draws CJK text with the system's fallback fonts, e.g. ``fonts-wqy-microhei``)
or, failing that, the ``cairosvg`` Python package. No BayLing weights are available where these
are made, so the conversations shown are written into a fresh history first and the model
loaded is a tiny test model built by the project's own code. Usage:

    python benchmarks/tui_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = (120, 36)


def seed_history(path: Path):
    from bayling_local.history import History
    from tests.test_tui_support import stage_history

    history = History(path)
    t, c = stage_history(history, model="tiny-demo")
    for title, kind in (
        ("Der Vertrag tritt am 1. Januar in Kraft.", "translate"),
        ("Summarise the meeting notes", "chat"),
        ("今天天气很好，我们去公园散步吧。", "translate"),
    ):
        sid = history.new_session(kind, title, model="tiny-demo", target_lang="en")
        history.add_message(sid, "user", title)
        history.add_message(sid, "assistant", "…")
    return history, t, c


def build_model(workdir: Path) -> Path:
    from tests.tiny import make_tiny_gguf

    return make_tiny_gguf(workdir, "spm", "f32")


def to_png(svg: Path, png: Path) -> None:
    # Textual writes spaces as no-break spaces, and some rasterizers drop one that starts a
    # text run; plain spaces with xml:space="preserve" draw the same in every one of them.
    text = svg.read_text(encoding="utf-8")
    svg.write_text(
        text.replace("<svg ", '<svg xml:space="preserve" ', 1).replace("&#160;", " "),
        encoding="utf-8",
    )
    if not shutil.which("rsvg-convert"):
        raise SystemExit("rsvg-convert is needed: apt-get install librsvg2-bin fonts-wqy-microhei")
    subprocess.run(["rsvg-convert", "-w", "1600", str(svg), "-o", str(png)], check=True)


async def take(out: Path, workdir: Path) -> list[Path]:
    from bayling_local.settings import Settings
    from bayling_local.store import Store, set_default_model
    from bayling_local.tui.app import BaylingApp

    model = build_model(workdir)
    Store().add(model, name="tiny-demo")
    set_default_model("tiny-demo")
    history, translation, chat = seed_history(workdir / "history.sqlite3")
    app = BaylingApp(settings=Settings(model="tiny-demo", threads=1), history=history)
    shots: list[Path] = []

    async def shot(name: str) -> None:
        await pilot.pause(0.3)
        svg = workdir / f"{name}.svg"
        app.save_screenshot(filename=svg.name, path=str(workdir))
        png = out / f"{name}.png"
        to_png(svg, png)
        shots.append(png)

    async with app.run_test(size=SIZE) as pilot:
        while app.engine is None:
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        app.clear_notifications()
        await app.translate_view.load_session(translation)
        await shot("translate")
        await pilot.press("ctrl+t")
        for char in "ger":
            await pilot.press(char)
        await shot("language-picker")
        await pilot.press("escape")
        await pilot.press("f3")
        await app.chat_view.load_session(chat)
        await shot("chat")
        await pilot.press("f4")
        await shot("history")
        await pilot.press("slash")
        for char in "ballon":
            await pilot.press(char)
        await shot("history-search")
        await pilot.press("f5")
        await shot("models")
        await pilot.press("f6")
        await shot("settings")
        await pilot.press("f1")
        await shot("keys")
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        os.environ["BAYLING_LOCAL_CONFIG_DIR"] = f"{home}/config"
        os.environ["BAYLING_LOCAL_DATA_DIR"] = f"{home}/data"
        shots = asyncio.run(take(args.out.resolve(), Path(home)))
    for path in shots:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
