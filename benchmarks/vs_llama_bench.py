"""``bayling-local bench`` beside llama.cpp's own ``llama-bench`` on the same GGUF and threads.

llama-bench is built from the llama.cpp sources vendored in the llama-cpp-python source
distribution of the installed version (fetched from PyPI with pip, built with cmake once and
cached in ``~/.cache/bayling-local/llama-bench``), so both sides run the same llama.cpp. The
two are run alternately, ``--rounds`` times each, and the ratio of medians is printed:

    python benchmarks/vs_llama_bench.py --gguf MODEL.gguf [--threads 2] [--rounds 3]

Without ``--gguf`` it uses the 85M-parameter random model of ``engine_decode.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bayling-local" / "llama-bench"
)


def build_llama_bench() -> Path:
    """Build (once) llama-bench from the installed llama-cpp-python's vendored llama.cpp."""
    llama_version = version("llama-cpp-python")
    binary = CACHE / llama_version / "bin" / "llama-bench"
    if binary.is_file():
        return binary
    work = Path(tempfile.mkdtemp(prefix="llama-bench-"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(work),
            f"llama-cpp-python=={llama_version}",
        ],
        check=True,
    )
    archive = next(work.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    source = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
    build = work / "build"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(source),
            "-B",
            str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_BUILD_SERVER=OFF",
        ],
        check=True,
    )
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "llama-bench", "-j", str(os.cpu_count() or 2)],
        check=True,
    )
    binary.parent.mkdir(parents=True, exist_ok=True)
    for built in (build / "bin").iterdir():  # the program and the shared libraries it loads
        if built.is_file():
            shutil.copy(built, binary.parent / built.name)
    shutil.rmtree(work, ignore_errors=True)
    return binary


def run_llama_bench(
    binary: Path, gguf: Path, threads: int, pp: int, tg: int
) -> tuple[float, float]:
    env = {**os.environ, "LD_LIBRARY_PATH": str(binary.parent)}
    out = subprocess.run(
        [
            str(binary),
            "-m",
            str(gguf),
            "-t",
            str(threads),
            *_size_args(pp, tg),
            "-o",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    rows = json.loads(out)
    pp_tps = next(r["avg_ts"] for r in rows if r["n_prompt"] == pp and r["n_gen"] == 0)
    tg_tps = next(r["avg_ts"] for r in rows if r["n_gen"] == tg and r["n_prompt"] == 0)
    return pp_tps, tg_tps


def _size_args(pp: int, tg: int) -> list[str]:
    """The test sizes, spelled the same by llama-bench and `bayling-local bench`."""
    return ["-p", str(pp), "-n", str(tg), "-r", "3"]


def run_ours(gguf: Path, threads: int, pp: int, tg: int) -> tuple[float, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bayling_local",
            "bench",
            "-m",
            str(gguf),
            "--threads",
            str(threads),
            *_size_args(pp, tg),
            "--json",
            "-q",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out)
    return data["pp_tps"], data["tg_tps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-p", type=int, default=512)
    parser.add_argument("-n", type=int, default=128)
    args = parser.parse_args()
    binary = build_llama_bench()
    with tempfile.TemporaryDirectory() as tmp:
        if args.gguf is None:
            sys.path.insert(0, str(ROOT))
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from engine_decode import build_model

            gguf = build_model(Path(tmp))
        else:
            gguf = args.gguf
        theirs, ours = [], []
        for _ in range(args.rounds):
            theirs.append(run_llama_bench(binary, gguf, args.threads, args.p, args.n))
            ours.append(run_ours(gguf, args.threads, args.p, args.n))
        result = {
            "model": gguf.name,
            "threads": args.threads,
            "llama_bench_pp_tps": round(statistics.median(t[0] for t in theirs), 2),
            "llama_bench_tg_tps": round(statistics.median(t[1] for t in theirs), 2),
            "bayling_local_pp_tps": round(statistics.median(o[0] for o in ours), 2),
            "bayling_local_tg_tps": round(statistics.median(o[1] for o in ours), 2),
        }
        result["pp_ratio"] = round(result["bayling_local_pp_tps"] / result["llama_bench_pp_tps"], 4)
        result["tg_ratio"] = round(result["bayling_local_tg_tps"] / result["llama_bench_tg_tps"], 4)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
