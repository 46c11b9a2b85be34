"""Keystroke-to-screen latency of the terminal UI while a reply streams.

The app runs on a pseudo-terminal with a model that streams fast (a random LLaMA model of
the project's own making, ~700 tokens/s on one thread: far more screen updates per second
than a real BayLing model on a laptop, so this is the hard case). In the chat view it starts
a long reply; while the reply streams, this script types one letter every 100 ms into the
chat box and times each from the write into the terminal to the first output of the app
that shows the box with the new letter. The same typing is first measured with the app idle,
for comparison. Usage:

    python benchmarks/tui_latency.py [--model GGUF] [--keys 60]

Without ``--model`` the model is built once into ``$TMPDIR/bayling-local-bench/`` (seconds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_pty import PtyApp  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "bayling-local-bench"  # outside the repository
PROMPT = "Tell me a long story"  # on this model, greedy, it runs to the token limit
TAIL = 6  # the last letters typed, which must appear together on the screen


def build_model() -> Path:
    from tests.support.tiny import TinyShape, make_tiny_checkpoint, make_tiny_gguf

    out = CACHE / "tui-latency-model-8k"
    gguf = out / "tiny-spm-f32.gguf"
    if gguf.is_file():
        return gguf
    shape = TinyShape(hidden_size=256, num_layers=4, intermediate_size=512, context_length=8192)
    checkpoint = make_tiny_checkpoint(out / "hf", "spm", shape=shape)
    return make_tiny_gguf(out, "spm", "f32", checkpoint=checkpoint)


def type_and_time(app: PtyApp, count: int, rng: random.Random, typed: list[str]) -> list[float]:
    """Type ``count`` letters, 100 ms apart; the latency of each in seconds."""
    latencies = []
    for _ in range(count):
        letter = rng.choice(string.ascii_lowercase)
        typed.append(letter)
        tail = "".join(typed[-TAIL:])
        offset = len(app.text)
        sent = app.send(letter)
        seen = app.wait_for(lambda text, tail=tail: tail in text, timeout=5, since=offset)
        latencies.append(seen - sent)
        app.drain(max(0.0, 0.1 - (time.perf_counter() - sent)))
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "median_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="GGUF to stream with (default: build one)")
    parser.add_argument("--keys", type=int, default=60, help="letters typed in each phase")
    parser.add_argument("--max-tokens", type=int, default=7800)
    args = parser.parse_args()
    model = args.model or build_model()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as home:
        config = Path(home, "config")
        config.mkdir()
        (config / "settings.toml").write_text(
            f'model = "{model}"\nthreads = 1\ntemperature = 0.0\nrepeat_penalty = 1.0\n'
            f"max_tokens = {args.max_tokens}\n",
            encoding="utf-8",
        )
        env = {"BAYLING_LOCAL_CONFIG_DIR": str(config), "BAYLING_LOCAL_DATA_DIR": f"{home}/data"}
        with PtyApp(env, size=(120, 36)) as app:
            app.wait_for(lambda text: "ctx 0/" in text, timeout=60)  # the model is loaded
            app.send("f3")
            app.drain(0.5)
            typed: list[str] = ["z"] * TAIL  # a fixed start so every tail is TAIL letters long
            for letter in typed:
                app.send(letter)
                app.drain(0.1)
            idle = type_and_time(app, args.keys // 2, rng, typed)

            for _ in typed:  # clear the box: Ctrl+U deletes to the start of the line
                pass
            app.send(b"\x15")
            app.drain(0.3)
            for letter in PROMPT:
                app.send(letter)
                app.drain(0.03)
            app.drain(0.3)
            app.send("enter")
            offset = len(app.text)
            app.wait_for(lambda text: "generating" in text, timeout=30, since=offset)
            app.drain(0.5)  # well into the reply
            typed = ["q"] * TAIL
            for letter in typed:
                app.send(letter)
                app.drain(0.1)
            streaming = type_and_time(app, args.keys, rng, typed)
            offset = len(app.text)
            app.send("escape")  # still streaming? then Esc stops it and says so
            try:
                app.wait_for(lambda text: "stopped" in text, timeout=10, since=offset)
                still_streaming = True
            except TimeoutError:
                still_streaming = False
    result = {
        "benchmark": "tui keystroke-to-screen latency while a reply streams",
        "keys": len(streaming),
        "while_streaming": summary(streaming),
        "idle": summary(idle),
        "reply_streamed_throughout": still_streaming,
        "goal_ms": 50,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
