"""How far a quantized model's next-token distributions drift from the unquantized model's.

For each source text, both models read the same tokens; at every position each gives a
distribution over the next token. The KL divergence KL(P_ref || P_quant) at a position is the
information lost by using the quantized model's guess where the reference model's was right;
the report card gives its mean over every position of every text (nats). A KL of 0 means the
same distributions (a model against itself). llama.cpp's ``perplexity --kl-divergence`` measures
the same quantity on wikitext; here it is measured per language on the test set's own sources.

The reference model's log-probabilities are kept on disk (one ``.npy`` per text, float32),
so the two models never need to be in memory together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import ModelError


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def kl_divergence(ref_logprobs: np.ndarray, logprobs: np.ndarray) -> np.ndarray:
    """KL(P_ref || P) for each row (position): sum_v P_ref(v) (log P_ref(v) - log P(v))."""
    return (np.exp(ref_logprobs) * (ref_logprobs - logprobs)).sum(axis=-1)


class LogitReader:
    """A model loaded to return the next-token log-probabilities at every position of a text."""

    def __init__(self, model_path: Path, *, threads: int | None = None, max_tokens: int = 128):
        import llama_cpp

        from ..engine import _quiet_stderr, physical_cores

        self.max_tokens = max_tokens
        n_ctx = max(64, max_tokens + 8)
        try:
            with _quiet_stderr():
                self._llm = llama_cpp.Llama(
                    model_path=str(model_path),
                    n_ctx=n_ctx,
                    n_batch=n_ctx,
                    n_threads=threads or physical_cores(),
                    n_threads_batch=threads or physical_cores(),
                    n_gpu_layers=0,
                    logits_all=True,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp could not load {model_path}: {exc}") from None

    def tokens(self, text: str) -> list[int]:
        ids = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        return ids[: self.max_tokens]

    def logprobs(self, text: str) -> np.ndarray:
        """(positions, vocabulary) log-probabilities of the token after each token of ``text``."""
        tokens = self.tokens(text)
        self._llm.reset()
        self._llm.eval(tokens)
        logits = np.array(self._llm.scores[: len(tokens)], dtype=np.float32)
        return log_softmax(logits)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._llm.close()


@contextlib.contextmanager
def logit_reader(model_path: Path, **kw: object) -> Iterator[LogitReader]:
    reader = LogitReader(model_path, **kw)  # type: ignore[arg-type]
    try:
        yield reader
    finally:
        reader.close()


def save_reference(
    model_path: Path, texts: Sequence[str], folder: Path, *, threads: int | None = None
) -> None:
    """Keep the reference model's log-probabilities for each text in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with logit_reader(model_path, threads=threads) as reader:
        for index, text in enumerate(texts):
            np.save(folder / f"{index}.npy", reader.logprobs(text))


def mean_kl(
    model_path: Path, texts: Sequence[str], reference: Path, *, threads: int | None = None
) -> float:
    """Mean KL(reference || model) over every position of every text."""
    total, positions = 0.0, 0
    with logit_reader(model_path, threads=threads) as reader:
        for index, text in enumerate(texts):
            ref = np.load(reference / f"{index}.npy")
            mine = reader.logprobs(text)
            if mine.shape != ref.shape:
                raise ModelError(
                    f"{model_path} does not share the reference model's vocabulary; "
                    "KL divergence compares quantizations of one model"
                )
            values = kl_divergence(ref.astype(np.float64), mine.astype(np.float64))
            total += float(np.clip(values, 0.0, None).sum())
            positions += len(values)
    return total / positions if positions else 0.0
