"""Screenshots of the terminal UI's main views for ``docs/screenshots/`` (PNG).

The app runs headless (Textual's Pilot) at a fixed size on the bundled demo model, and every
text shown is typed into it and produced by that model as a user would: a translation, a
refinement, a chat message, then the history of exactly those sessions (nothing is written
into the history for the picture). Each view is saved with ``App.save_screenshot`` as SVG,
then converted to PNG with ``rsvg-convert`` (Debian package ``librsvg2-bin``; it draws CJK
text with the system's fallback fonts, e.g. ``fonts-wqy-microhei``). Usage:

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
    from bayling_local.tui.app import BaylingApp

    # The demo model, as a fresh install runs it; one thread keeps it steady on a busy machine.
    app = BaylingApp(settings=Settings(threads=1, temperature=0.0))
    shots: list[Path] = []

    async def shot(name: str) -> None:
        await pilot.pause(0.3)
        svg = workdir / f"{name}.svg"
        app.save_screenshot(filename=svg.name, path=str(workdir))
        png = out / f"{name}.png"
        to_png(svg, png)
        shots.append(png)

    async def type_text(text: str) -> None:
        await pilot.press(*[" " if c == " " else c for c in text])

    async def idle() -> None:
        await pilot.pause(0.2)
        while app.generating:
            await pilot.pause(0.1)
        await pilot.pause(0.3)

    async with app.run_test(size=SIZE) as pilot:
        while app.engine is None:
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        app.clear_notifications()
        await pilot.press("ctrl+t")
        await type_text("chinese")
        await pilot.press("enter")
        await type_text("Every day, the happy cat finds the red apple in the garden.")
        await pilot.press("enter")
        await idle()
        await type_text("now into German")  # the refine box has the focus
        await pilot.press("enter")
        await idle()
        app.clear_notifications()
        await shot("translate")
        await pilot.press("ctrl+t")
        await type_text("ger")
        await shot("language-picker")
        await pilot.press("escape")
        await pilot.press("f3")
        await type_text("In the morning, the old dog sees the blue ball.")
        await pilot.press("enter")
        await idle()
        app.clear_notifications()
        await shot("chat")
        await pilot.press("f4")
        await shot("history")
        await pilot.press("slash")
        await type_text("cat")
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
