"""Start-up of the terminal UI to its first usable frame, as a ratio to a minimal Textual app.

Absolute start-up times do not travel between machines (or between two moments of a shared
one), so each run starts, alternately and on the same fresh pseudo-terminal setup, two
programs and times each from the moment its process is spawned until its first frame that is
ready for typing has been written:

- ours: ``python -m bayling_local`` with empty config and data directories (no model), until
  the translate view's source box label is on the screen;
- minimal: a Textual app of one TextArea and one Label, nothing else, until its label is.

Python's own start-up and every import are included in both. The result is the median of each
and the ratio of the medians (goal: at most 1.5).

Both start from byte-compiled modules, as after ``pip install`` (which compiles them) or any
earlier start: the runs get a private ``PYTHONPYCACHEPREFIX`` that the first (unmeasured) start
of each app fills, even where the environment sets ``PYTHONDONTWRITEBYTECODE`` (this project's
dev machine does; without bytecode every module of bayling_local is compiled from source at
each start, about 50 ms, while Textual's are not). ``--no-bytecode`` keeps the environment's
setting, to measure that case. Usage:

    python benchmarks/tui_startup.py [--runs 9] [--plot docs/benchmarks/tui_startup.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tui_pty import PtyApp  # noqa: E402

MARKER = "Source · Enter translates"
MINIMAL_MARKER = "minimal-app-ready"
GOAL_RATIO = 1.5

# The smallest app that, like ours, shows a text box ready for typing.
MINIMAL_APP = f"""
from textual.app import App
from textual.widgets import Label, TextArea


class Minimal(App):
    def compose(self):
        yield Label("{MINIMAL_MARKER}")
        yield TextArea()


Minimal().run()
"""


def one_run(kind: str, pycache: str | None) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {
            "BAYLING_LOCAL_CONFIG_DIR": f"{home}/config",
            "BAYLING_LOCAL_DATA_DIR": f"{home}/data",
            "HF_HUB_OFFLINE": "1",
        }
        if pycache is not None:  # bytecode written once, then read, as an install has it
            env.update(PYTHONDONTWRITEBYTECODE="", PYTHONPYCACHEPREFIX=pycache)
        if kind == "ours":
            argv, marker = None, MARKER
        else:
            argv, marker = [sys.executable, "-c", MINIMAL_APP], MINIMAL_MARKER
        with PtyApp(env, argv=argv) as app:
            seen = app.wait_for(lambda text: marker in text, timeout=30)
            elapsed = seen - app.started
            app.drain(0.3)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--plot", type=Path, help="also draw every start of both apps (PNG)")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="keep the environment's PYTHONDONTWRITEBYTECODE (modules compiled at each start)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as pycache_dir:
        pycache = None if args.no_bytecode else pycache_dir
        one_run("ours", pycache)  # warm the file cache and write the bytecode
        one_run("minimal", pycache)
        times: dict[str, list[float]] = {"ours": [], "minimal": []}
        for index in range(args.runs):
            order = ("ours", "minimal") if index % 2 == 0 else ("minimal", "ours")
            for kind in order:  # alternated, so a burst of load on the machine hits both alike
                times[kind].append(one_run(kind, pycache))
                time.sleep(0.2)
    ours, minimal = (statistics.median(times[k]) for k in ("ours", "minimal"))
    result = {
        "benchmark": "tui start-up to first usable frame, no model, vs a minimal Textual app",
        "runs": args.runs,
        "ours_median_s": round(ours, 3),
        "minimal_median_s": round(minimal, 3),
        "ratio": round(ours / minimal, 2),
        "goal_ratio": GOAL_RATIO,
        "bytecode": "as installed" if not args.no_bytecode else "as the environment says",
        "ours_s": [round(t, 3) for t in times["ours"]],
        "minimal_s": [round(t, 3) for t in times["minimal"]],
    }
    print(json.dumps(result))
    if args.plot:
        plot(times, result, args.plot)


def plot(times: dict[str, list[float]], result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for row, kind in enumerate(("minimal", "ours")):
        values = times[kind]
        ax.scatter(values, [row] * len(values), alpha=0.6, label=f"{kind} (each start)")
        median = result[f"{kind}_median_s"]
        ax.plot([median, median], [row - 0.3, row + 0.3], color="black")
    ax.set_yticks([0, 1], ["minimal Textual app", "bayling-local"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("seconds from spawn to first usable frame (line: median)")
    ax.set_title(f"TUI start-up: ratio of medians {result['ratio']} (goal <= {GOAL_RATIO})")
    ax.set_xlim(left=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
