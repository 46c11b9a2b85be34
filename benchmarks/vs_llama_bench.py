"""``bayling-local bench`` beside llama.cpp's own ``llama-bench`` on the same GGUF and threads.

llama-bench is built from the llama.cpp sources vendored in the llama-cpp-python source
distribution of the installed version (fetched from PyPI with pip, built with cmake once and
cached in ``~/.cache/bayling-local/llama-bench``), so both sides run the same llama.cpp. The
two are run alternately, ``--rounds`` times each, and the ratio of medians is printed:

    python benchmarks/vs_llama_bench.py --gguf MODEL.gguf [--threads 2] [--rounds 3]

Without ``--gguf`` it uses the 85M-parameter random model of ``engine_decode.py``.

``--batched 1,2,4,8,16`` compares aggregate decode speed at N sequences instead: llama.cpp's
``llama-batched-bench`` (same build, a KV stream per sequence as ours) beside
``bayling-local bench --parallel``; ``--plot FILE.png`` draws both and the ratio.
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


TOOLS = ("llama-bench", "llama-batched-bench")


def build_llama_bench(tool: str = "llama-bench") -> Path:
    """Build (once) llama.cpp's benchmark tools from the installed llama-cpp-python's vendored
    llama.cpp; the build tree is kept in the cache, so another target builds incrementally."""
    llama_version = version("llama-cpp-python")
    root = CACHE / llama_version
    binary = root / "bin" / tool
    if binary.is_file():
        return binary
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    sources = list(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
    if not sources:
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
        sources = list(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
    source = sources[0]
    build = work / "build"
    if not (build / "CMakeCache.txt").is_file():
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
        ["cmake", "--build", str(build), "--target", *TOOLS, "-j", str(os.cpu_count() or 2)],
        check=True,
    )
    binary.parent.mkdir(parents=True, exist_ok=True)
    for built in (build / "bin").iterdir():  # the programs and the shared libraries they load
        if built.is_file():
            shutil.copy(built, binary.parent / built.name)
    return binary


SAME_LIBRARY = False  # --same-library: llama.cpp's tools run on the installed wheel's libraries


def library_dir(binary: Path) -> str:
    """Where the tools load libllama/libggml from: their own build (llama.cpp as cmake builds
    it natively here) or, with ``--same-library``, the libraries inside the installed
    llama-cpp-python (the very code our engine calls), so that only our side's own work
    differs. The tools' RUNPATH yields to LD_LIBRARY_PATH, and both are the same llama.cpp
    version, so the interface matches."""
    if SAME_LIBRARY:
        import llama_cpp

        return str(Path(llama_cpp.__file__).parent / "lib")
    return str(binary.parent)


def run_llama_bench(
    binary: Path, gguf: Path, threads: int, pp: int, tg: int
) -> tuple[float, float]:
    env = {**os.environ, "LD_LIBRARY_PATH": library_dir(binary)}
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


def bench_ours(gguf: Path, threads: int, *args: str) -> dict:
    """``bayling-local bench -m GGUF --threads N ARGS --json`` run as a user runs it, parsed."""
    command = [sys.executable, "-m", "bayling_local", "bench", "-m", str(gguf)]
    command += ["--threads", str(threads), *args, "--json", "-q"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_ours(gguf: Path, threads: int, pp: int, tg: int) -> tuple[float, float]:
    data = bench_ours(gguf, threads, *_size_args(pp, tg))
    return data["pp_tps"], data["tg_tps"]


def run_batched_bench(
    binary: Path, gguf: Path, threads: int, pp: int, tg: int, sizes: list[int]
) -> dict[int, float]:
    """llama-batched-bench's S_TG (aggregate decode tokens/s) for each N in ``sizes``."""
    env = {**os.environ, "LD_LIBRARY_PATH": library_dir(binary)}
    out = subprocess.run(
        [
            str(binary.parent / "llama-batched-bench"),
            "-m",
            str(gguf),
            "-t",
            str(threads),
            "-tb",
            str(threads),
            "-c",
            str(max(sizes) * stream_cells(pp, tg)),
            "-b",
            "512",
            "-ub",
            "512",
            "-npp",
            str(pp),
            "-ntg",
            str(tg),
            "-npl",
            ",".join(map(str, sizes)),
            "--output-format",
            "jsonl",
            "-fa",
            "off",  # as the engine's decoder runs (flash attention off: see docs/ENGINE.md)
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    rows = [
        json.loads(line) for line in (out.stdout + out.stderr).splitlines() if line.startswith("{")
    ]
    return {int(r["pl"]): float(r["speed_tg"]) for r in rows}


def stream_cells(pp: int, tg: int) -> int:
    """Cells per KV stream on both sides: the sequence's tokens, rounded up as llama.cpp pads
    the cache (256). Ours gets it as ``--context`` (the engine gives every sequence a stream
    of a full context), llama-batched-bench as ``-c`` divided over its N streams."""
    return -(-(pp + tg + 2) // 256) * 256


def run_ours_batched(
    gguf: Path, threads: int, pp: int, tg: int, sizes: list[int]
) -> dict[int, float]:
    data = bench_ours(
        gguf,
        threads,
        *("--context", str(stream_cells(pp, tg)), "-p", "32", "-n", "16", "-r", "1"),
        *("--parallel", ",".join(map(str, sizes)), "--npp", str(pp), "--ntg", str(tg)),
    )
    return {p["parallel"]: p["tg_tps"] for p in data["parallel"]}


def batched(args: argparse.Namespace, binary: Path, gguf: Path) -> dict:
    sizes = [int(n) for n in args.batched.split(",")]
    theirs: dict[int, list[float]] = {n: [] for n in sizes}
    ours: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(args.rounds):
        for n, value in run_batched_bench(
            binary, gguf, args.threads, args.npp, args.ntg, sizes
        ).items():
            theirs[n].append(value)
        for n, value in run_ours_batched(gguf, args.threads, args.npp, args.ntg, sizes).items():
            ours[n].append(value)
    rows = []
    for n in sizes:
        t, o = statistics.median(theirs[n]), statistics.median(ours[n])
        rows.append(
            {
                "parallel": n,
                "llama_batched_bench_tg_tps": round(t, 2),
                "bayling_local_tg_tps": round(o, 2),
                "ratio": round(o / t, 4) if t else None,
                "llama_gain": round(t / statistics.median(theirs[sizes[0]]), 3),
                "our_gain": round(o / statistics.median(ours[sizes[0]]), 3),
            }
        )
    result = {
        "model": gguf.name,
        "llama_cpp_libraries": "llama-cpp-python's" if SAME_LIBRARY else "native build",
        "threads": args.threads,
        "npp": args.npp,
        "ntg": args.ntg,
        "rounds": args.rounds,
        "rows": rows,
    }
    if args.plot:
        plot_batched(result, args.plot)
    return result


def plot_batched(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["parallel"] for r in result["rows"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(
        sizes,
        [r["llama_batched_bench_tg_tps"] for r in result["rows"]],
        "o-",
        label="llama-batched-bench",
    )
    left.plot(
        sizes,
        [r["bayling_local_tg_tps"] for r in result["rows"]],
        "s-",
        label="bayling-local bench --parallel",
    )
    left.set_xscale("log", base=2)
    left.set_xticks(sizes, [str(n) for n in sizes])
    left.set_xlabel("sequences decoded together")
    left.set_ylabel("aggregate decode tokens/s (median)")
    left.legend()
    right.bar([str(n) for n in sizes], [r["ratio"] or 0 for r in result["rows"]])
    right.axhline(0.95, color="grey", linestyle="--", label="goal 0.95")
    right.set_xlabel("sequences decoded together")
    right.set_ylabel("ours / llama-batched-bench")
    right.legend()
    fig.suptitle(
        f"{result['model']}, {result['threads']} thread(s), pp{result['npp']} tg{result['ntg']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-p", type=int, default=512)
    parser.add_argument("-n", type=int, default=128)
    parser.add_argument("--batched", help="compare decode of N sequences, e.g. 1,2,4,8,16")
    parser.add_argument("--npp", type=int, default=128, help="prompt tokens per sequence")
    parser.add_argument("--ntg", type=int, default=128, help="tokens decoded per sequence")
    parser.add_argument("--plot", type=Path, help="PNG of the --batched comparison")
    parser.add_argument(
        "--same-library",
        action="store_true",
        help="run llama.cpp's tools on llama-cpp-python's own libllama/libggml",
    )
    args = parser.parse_args()
    global SAME_LIBRARY
    SAME_LIBRARY = args.same_library
    binary = build_llama_bench("llama-batched-bench" if args.batched else "llama-bench")
    with tempfile.TemporaryDirectory() as tmp:
        if args.gguf is None:
            sys.path.insert(0, str(ROOT))
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from engine_decode import build_model

            gguf = build_model(Path(tmp))
        else:
            gguf = args.gguf
        if args.batched:
            print(json.dumps(batched(args, binary, gguf), indent=2))
            return
        theirs, ours = [], []
        for _ in range(args.rounds):
            theirs.append(run_llama_bench(binary, gguf, args.threads, args.p, args.n))
            ours.append(run_ours(gguf, args.threads, args.p, args.n))
        result = {
            "model": gguf.name,
            "llama_cpp_libraries": "llama-cpp-python's" if SAME_LIBRARY else "native build",
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
