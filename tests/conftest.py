"""Shared test fixtures: isolated user directories and tiny models built by the project's code.

Session-scoped tiny models (each built once per test session, in about a second):

- ``tiny_spm_checkpoint`` / ``tiny_bpe_checkpoint``: Hugging Face directories of random
  LLaMA-architecture models with a SentencePiece (LLaMA/Llama-2 style) or a Llama-3-style BPE
  tokenizer trained on WMT22 lines (see ``tests/support/tiny.py``);
- ``tiny_spm_gguf`` / ``tiny_bpe_gguf``: the same models converted to F32 GGUF by ``convert/``;
  llama.cpp loads them in milliseconds. They carry the BayLing (spm) and BayLing-3 (bpe) chat
  templates.

Every test runs with its own empty config and data directories and with the Hugging Face hub
offline, so no test touches the user's files or the network.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

# A shell that starts the test run in the background (`... &`) leaves SIGINT ignored, and
# ignored signals stay ignored in every process started from here: the Ctrl-C tests would
# then interrupt nothing. Restore Python's own handler (exec resets it to the default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `tests.support` importable however pytest is started
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.tiny import make_tiny_checkpoint, make_tiny_gguf  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point bayling-local's config and data directories at fresh temporary ones."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("BAYLING_LOCAL_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("BAYLING_LOCAL_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BAYLING_LOCAL_THREADS", "1")  # tiny models decode fastest on one thread
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return home


@pytest.fixture(scope="session")
def tiny_spm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LLaMA-2-style checkpoint (SentencePiece tokenizer, 1.5k tokens)."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-spm") / "hf", "spm")


@pytest.fixture(scope="session")
def tiny_bpe_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama-3-style checkpoint (byte-level BPE, grouped-query attention)."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bpe") / "hf", "bpe")


@pytest.fixture(scope="session")
def tiny_spm_gguf(tiny_spm_checkpoint: Path) -> Path:
    """``tiny_spm_checkpoint`` as an F32 GGUF (BayLing chat template)."""
    return make_tiny_gguf(tiny_spm_checkpoint.parent, "spm", "f32", checkpoint=tiny_spm_checkpoint)


@pytest.fixture(scope="session")
def tiny_bpe_gguf(tiny_bpe_checkpoint: Path) -> Path:
    """``tiny_bpe_checkpoint`` as an F32 GGUF (BayLing-3 chat template, stops at <|eot_id|>)."""
    return make_tiny_gguf(tiny_bpe_checkpoint.parent, "bpe", "f32", checkpoint=tiny_bpe_checkpoint)


@pytest.fixture(scope="session")
def scripted_spm(tmp_path_factory: pytest.TempPathFactory, tiny_spm_checkpoint: Path):
    """A tiny SentencePiece model that always answers ``Hallo Welt!`` and then ``</s>``."""
    from tests.support.scripted import build_scripted

    return build_scripted(tmp_path_factory, tiny_spm_checkpoint, "Hallo Welt!", "</s>")
