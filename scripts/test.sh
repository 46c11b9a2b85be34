#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
# torch is pinned first: 2.13.0 is the CPU build; an open range would pull CUDA packages.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$(dirname "$0")/.."
if ! command -v tmux >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || echo "note: could not install tmux; the tmux end-to-end test will be skipped" >&2
fi
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e ".[dev]"
# Static checks first (a minute together): types on the package, and every import declared.
python3 -m mypy bayling_local
NO_COLOR=1 python3 -m deptry .
exec python3 -m pytest -q -p no:cacheprovider "$@"
