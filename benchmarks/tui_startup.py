"""Start-up time of the terminal UI, without a model, to the first usable frame.

Each run starts ``python -m bayling_local`` on a fresh pseudo-terminal with empty config and
data directories (so no model is installed) and measures from the moment the process is
spawned until the app has written the first frame that shows the translate view ready for
typing (its source box label). Python's own start-up and every import are included.
Usage:

    python benchmarks/tui_startup.py [--runs 15]
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


def one_run() -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {
            "BAYLING_LOCAL_CONFIG_DIR": f"{home}/config",
            "BAYLING_LOCAL_DATA_DIR": f"{home}/data",
            "HF_HUB_OFFLINE": "1",
        }
        with PtyApp(env) as app:
            seen = app.wait_for(lambda text: MARKER in text, timeout=30)
            elapsed = seen - app.started
            app.drain(0.3)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    one_run()  # warm the file cache (byte-compiled modules), as a second start would be
    times = []
    for _ in range(args.runs):
        times.append(one_run())
        time.sleep(0.2)
    result = {
        "benchmark": "tui start-up to first usable frame, no model",
        "runs": args.runs,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "goal_s": 0.5,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
