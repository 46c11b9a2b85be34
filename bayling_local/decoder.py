"""The native decode loop: many sequences in one llama.cpp context, stepped together.

One :class:`Decoder` owns a llama.cpp context whose KV cache is shared by every sequence
(``kv_unified``), so a prompt prefix or a beam is forked by tagging cache cells with another
sequence id (``llama_memory_seq_cp``) rather than by evaluating again. Each :meth:`Decoder.step`
builds one ``llama_batch``: a row for every sequence that is decoding, then chunks of prompts
that are still being prefilled, up to ``n_batch`` tokens; asks for logits only on the rows that
are sampled; runs ``llama_decode`` once; and hands each sampled row to its job. Sampling of
ordinary sequences runs in llama.cpp's sampler chains (C); beam jobs read their rows' logits.

The decoder knows nothing of text formats or threads: :mod:`bayling_local.engine` drives it for
one conversation, :mod:`bayling_local.batch` from a scheduler thread for many requests.
"""

from __future__ import annotations

import codecs
import ctypes
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

FinishReason = Literal["stop", "length", "context", "cancelled"]

PREFIX_SEQ = 0  # the sequence id that keeps the last prompt's cache cells for reuse
NEG_INF = -1.0e9


@dataclass
class SeqStats:
    """Token counts and times of one job (engine.GenerationStats is filled from it)."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    finish_reason: FinishReason | None = None


class _TextStream:
    """Bytes of tokens -> text, holding back what may start a stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stops = tuple(s for s in stops if s)
        self.pending = ""
        self.text = ""  # everything emitted so far

    def feed(self, data: bytes) -> tuple[str, bool]:
        """Return ``(text safe to emit, stopped)``."""
        self.pending += self.decoder.decode(data)
        if not self.stops:
            out, self.pending = self.pending, ""
            self.text += out
            return out, False
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.pending = self.pending[:cut], ""
            self.text += out
            return out, True
        hold = 0
        for stop in self.stops:
            for length in range(min(len(stop) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(stop[:length]):
                    hold = max(hold, length)
                    break
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(self.pending) - hold :]
        self.text += out
        return out, False

    def flush(self) -> str:
        out = self.pending + self.decoder.decode(b"", final=True)
        self.pending = ""
        self.text += out
        return out


@dataclass(frozen=True)
class Sampling:
    """What the sampler chain of one sequence does (engine.SamplingConfig maps onto it)."""

    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None


def _chain(sampling: Sampling, default_seed: int, n_vocab: int):  # -> llama_sampler_p
    import llama_cpp as L

    params = L.llama_sampler_chain_default_params()
    params.no_perf = True
    chain = L.llama_sampler_chain_init(params)
    if sampling.repeat_penalty != 1.0:
        L.llama_sampler_chain_add(
            chain, L.llama_sampler_init_penalties(n_vocab, 64, sampling.repeat_penalty, 0.0, 0.0)
        )
    if sampling.temperature <= 0:
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
        return chain
    if sampling.top_k > 0:
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_k(sampling.top_k))
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(sampling.top_p, 1))
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_min_p(sampling.min_p, 1))
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(sampling.temperature))
    seed = sampling.seed if sampling.seed is not None else default_seed
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return chain


class Job:
    """Something the decoder advances: a prompt to prefill, then tokens to produce.

    Subclasses say which rows they need (:meth:`decode_rows`) and take the sampled rows back
    (:meth:`on_rows`). ``seq_ids`` are the cache sequences the job owns.
    """

    def __init__(self, prompt: list[int], max_new: int, *, pull: bool = False) -> None:
        self.prompt = prompt
        self.max_new = max_new
        self.seq_ids: list[int] = []
        self.prefilled = 0  # prompt tokens already in the cache
        self.reused = 0  # of which copied from the prefix sequence
        self.stats = SeqStats(prompt_tokens=len(prompt))
        self.finished = False
        self.cancelled = False
        self.pull = pull  # advanced only when its consumer asks (``wanted``)
        self.wanted = not pull
        self.started_at = 0.0
        self.first_token_at = 0.0
        self.on_finish: Callable[[Job], None] | None = None

    # sizes ----------------------------------------------------------------------------------------
    def n_seqs(self) -> int:
        return 1

    def cells(self) -> int:
        """Most cache cells this job can occupy beyond its reused prefix."""
        return len(self.prompt) - self.reused + self.n_seqs() * self.max_new

    # the decoder's side -----------------------------------------------------------------------------
    @property
    def prefilling(self) -> bool:
        return self.prefilled < len(self.prompt)

    def decode_rows(self) -> list[tuple[int, int, int]]:
        """``(token, position, seq_id)`` rows to decode this step, each with logits."""
        raise NotImplementedError

    def on_rows(self, decoder: Decoder, rows: list[int]) -> None:
        """Take the batch indices of this job's sampled rows (prompt end or decode rows)."""
        raise NotImplementedError

    def finish(self, reason: FinishReason) -> None:
        if self.finished:
            return
        self.finished = True
        self.stats.finish_reason = reason
        now = time.perf_counter()
        if self.stats.generated_tokens > 1 and self.first_token_at:
            self.stats.decode_seconds = now - self.first_token_at
        if self.on_finish is not None:
            self.on_finish(self)

    def note_first_token(self) -> None:
        now = time.perf_counter()
        self.first_token_at = now
        self.stats.prefill_seconds = now - self.started_at


class SampleJob(Job):
    """One sequence, greedy or sampled by a llama.cpp sampler chain; streams text."""

    def __init__(
        self,
        prompt: list[int],
        max_new: int,
        sampling: Sampling,
        stops: Sequence[str],
        *,
        pull: bool = False,
        on_text: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(prompt, max_new, pull=pull)
        self.sampling = sampling
        self.stream = _TextStream(stops)
        self.on_text = on_text
        self.tokens: list[int] = []
        self.last: int | None = None  # sampled, not yet in the cache
        self.sampler = None
        self.limit_reason: FinishReason = "length"
        self.decoded = 0  # sampled tokens fed back into the cache

    def decode_rows(self) -> list[tuple[int, int, int]]:
        assert self.last is not None
        self.decoded += 1
        return [(self.last, len(self.prompt) + len(self.tokens) - 1, self.seq_ids[0])]

    @property
    def plain_greedy(self) -> bool:
        """Greedy without a repeat penalty: the argmax of the row, read by the decoder for
        every such row of a step at once (a sampler chain copies all the logits per row)."""
        return self.sampling.temperature <= 0 and self.sampling.repeat_penalty == 1.0

    def on_rows(self, decoder: Decoder, rows: list[int]) -> None:
        import llama_cpp as L

        if self.plain_greedy:
            token = decoder.argmax(rows[0])
        else:
            if self.sampler is None:
                self.sampler = _chain(self.sampling, decoder.next_seed(), decoder.n_vocab)
                if self.sampling.repeat_penalty != 1.0:
                    for token in self.prompt[-64:]:
                        L.llama_sampler_accept(self.sampler, token)
            token = L.llama_sampler_sample(self.sampler, decoder.ctx, rows[0])
        if not self.tokens and self.last is None:
            self.note_first_token()
        if self.cancelled:
            self.finish("cancelled")
            return
        if token in decoder.stop_ids:
            self.finish("stop")
            return
        self.tokens.append(token)
        self.last = token
        self.stats.generated_tokens += 1
        if self.first_token_at:
            self.stats.decode_seconds = time.perf_counter() - self.first_token_at
        text, stopped = self.stream.feed(decoder.piece(token))
        if text and self.on_text is not None:
            self.on_text(text)
        if stopped:
            self.finish("stop")
        elif self.stats.generated_tokens >= self.max_new:
            self.finish(self.limit_reason)
        if self.pull:
            self.wanted = False

    def finish(self, reason: FinishReason) -> None:
        if self.finished:
            return
        if reason != "stop":
            tail = self.stream.flush()
            if tail and self.on_text is not None:
                self.on_text(tail)
        super().finish(reason)

    def free(self) -> None:
        import llama_cpp as L

        if self.sampler is not None:
            L.llama_sampler_free(self.sampler)
            self.sampler = None


@dataclass
class _Beam:
    seq: int  # cache sequence id
    tokens: list[int]
    score: float  # sum of log-probabilities
    met: tuple[int, ...] = ()  # constraint state: indices of met constraints
    progress: tuple[int, int] = (-1, 0)  # (constraint in progress, tokens of it matched)


@dataclass
class Hypothesis:
    tokens: list[int]
    score: float  # length-normalised


class BeamJob(Job):
    """Beam search with ``transformers``' ``generate(num_beams=N, do_sample=False)`` rules.

    Per step: log-softmax of each beam's logits plus its running score; the best ``2N``
    continuations over all beams; those ending in an end-of-generation token and ranked among
    the first ``N`` become finished hypotheses scored by ``sum_logprobs / generated_len`` (the
    end token counted, ``length_penalty`` 1.0); the best ``N`` others continue. The search ends
    when ``N`` hypotheses are finished and no running beam can beat the worst of them, or at
    ``max_new`` tokens, where the best ``N`` continuations are finished as they are.

    With ``constraints`` (token sequences that must appear) the selection is dynamic beam
    allocation (Post & Vilar, 2018): candidates also include each beam's best token and the
    next token of every unmet constraint; the ``N`` slots are shared out over banks by the
    number of constraint tokens met, and only a beam that has met all of them may end.
    """

    def __init__(
        self,
        prompt: list[int],
        max_new: int,
        beams: int,
        n_best: int,
        stops: Sequence[str],
        constraints: Sequence[Sequence[int]] = (),
    ) -> None:
        super().__init__(prompt, max_new)
        self.width = beams
        self.n_best = n_best
        self.stops = tuple(s for s in stops if s)
        self.constraints = [list(c) for c in constraints if c]
        self.total_constraint = sum(len(c) for c in self.constraints)
        self.beams: list[_Beam] = []
        self.finished_hyps: list[Hypothesis] = []
        self.step_no = 0
        self.results: list[Hypothesis] = []
        self.required_text: tuple[str, ...] = ()  # the phrases as text (to cut at stops)

    def n_seqs(self) -> int:
        return self.width

    def decode_rows(self) -> list[tuple[int, int, int]]:
        pos = len(self.prompt) + self.step_no - 1
        return [(b.tokens[-1], pos, b.seq) for b in self.beams]

    # constraint bookkeeping -------------------------------------------------------------------------
    def _advance_constraints(
        self, met: tuple[int, ...], progress: tuple[int, int], token: int
    ) -> tuple[tuple[int, ...], tuple[int, int]]:
        current, matched = progress
        if current >= 0:
            want = self.constraints[current]
            if token == want[matched]:
                matched += 1
                if matched == len(want):
                    return tuple(sorted((*met, current))), (-1, 0)
                return met, (current, matched)
        for index, want in enumerate(self.constraints):
            if index not in met and want[0] == token:
                if len(want) == 1:
                    return tuple(sorted((*met, index))), (-1, 0)
                return met, (index, 1)
        return met, (-1, 0)

    def _met_tokens(self, met: tuple[int, ...], progress: tuple[int, int]) -> int:
        return sum(len(self.constraints[i]) for i in met) + max(0, progress[1])

    def _forced(self, beam: _Beam) -> list[int] | None:
        """Tokens a beam must take when only just enough steps remain for its constraints."""
        if not self.constraints:
            return None
        left = self.max_new - self.step_no  # tokens after this one
        need = self.total_constraint - sum(len(self.constraints[i]) for i in beam.met)
        if need <= 0 or left >= need:
            return None
        current, matched = beam.progress
        if current >= 0:
            return [self.constraints[current][matched]]
        return [c[0] for i, c in enumerate(self.constraints) if i not in beam.met]

    def _stop_hit(self, decoder: Decoder, tokens: list[int]) -> bool:
        if not self.stops:
            return False
        text = decoder.detokenize(tokens[-24:])
        return any(s in text for s in self.stops)

    # one step ---------------------------------------------------------------------------------------
    def on_rows(self, decoder: Decoder, rows: list[int]) -> None:
        if not self.beams:  # the prompt's last row: every beam starts from it
            self.note_first_token()
            parents = [_Beam(self.seq_ids[0], [], 0.0)]
        else:
            parents = self.beams
        if self.cancelled:
            self._finalize()
            self.finish("cancelled")
            return
        if self.pull:
            self.wanted = False
        logprobs = [decoder.logprobs(row) for row in rows]
        self.step_no += 1
        last_step = self.step_no >= self.max_new
        stop_ids = decoder.stop_ids
        if self.constraints:
            candidates = self._constrained_candidates(decoder, parents, logprobs)
        else:
            candidates = self._candidates(parents, logprobs)
        # candidates: (total score, parent index, token), best first
        running: list[tuple[float, int, int]] = []
        gen_len = self.step_no  # generated tokens including this one
        for rank, (score, parent, token) in enumerate(candidates):
            tokens = [*parents[parent].tokens, token]
            ends = token in stop_ids or last_step or self._stop_hit(decoder, tokens)
            if self.constraints and ends and not last_step:
                met, _ = self._advance_constraints(
                    parents[parent].met, parents[parent].progress, token
                )
                if len(met) < len(self.constraints):
                    continue  # may not end (token or stop string) before every phrase is met
            if ends:
                if rank < self.width or self.constraints:
                    self._add_hypothesis(tokens, score / gen_len, decoder)
                continue
            if len(running) < self.width:
                running.append((score, parent, token))
        self.stats.generated_tokens += 1
        if last_step or not running or self._done(running):
            self._finalize()
            self.finish("length" if last_step and len(self.finished_hyps) == 0 else "stop")
            return
        self._reassign(decoder, parents, running)

    def _candidates(
        self, parents: list[_Beam], logprobs: list[np.ndarray]
    ) -> list[tuple[float, int, int]]:
        keep = 2 * self.width
        scores = np.stack([lp + b.score for lp, b in zip(logprobs, parents)])
        flat = scores.reshape(-1)
        keep = min(keep, flat.size)
        top = np.argpartition(-flat, keep - 1)[:keep]
        top = top[np.argsort(-flat[top], kind="stable")]
        vocab = scores.shape[1]
        return [(float(flat[i]), int(i) // vocab, int(i) % vocab) for i in top]

    def _constrained_candidates(
        self, decoder: Decoder, parents: list[_Beam], logprobs: list[np.ndarray]
    ) -> list[tuple[float, int, int]]:
        pool: dict[tuple[int, int], float] = {}
        for index, (beam, lp) in enumerate(zip(parents, logprobs)):
            forced = self._forced(beam)
            if forced is not None:
                options = forced
            else:
                scores = lp.copy()
                if len(beam.met) < len(self.constraints):
                    for stop in decoder.stop_ids:
                        if stop < scores.size:
                            scores[stop] = -np.inf
                best = np.argpartition(-scores, self.width)[: self.width + 1]
                options = [int(t) for t in best]
                options += [c[0] for i, c in enumerate(self.constraints) if i not in beam.met]
                if beam.progress[0] >= 0:
                    options.append(self.constraints[beam.progress[0]][beam.progress[1]])
            for token in options:
                value = float(lp[token])
                if math.isfinite(value):
                    pool[(index, token)] = beam.score + value
        # banks by constraint tokens met after taking the token
        banked: dict[int, list[tuple[float, int, int]]] = {}
        for (index, token), score in pool.items():
            met, progress = self._advance_constraints(
                parents[index].met, parents[index].progress, token
            )
            banked.setdefault(self._met_tokens(met, progress), []).append((score, index, token))
        for members in banked.values():
            members.sort(key=lambda c: -c[0])
        # dynamic beam allocation: an equal share of the N slots per bank, most met first;
        # slots a bank cannot fill pass to the next ones
        order = sorted(banked, reverse=True)
        chosen: list[tuple[float, int, int]] = []
        taken = dict.fromkeys(order, 0)
        slots = self.width
        for position, bank in enumerate(order):
            share = slots // (len(order) - position) if position < len(order) else slots
            take = banked[bank][:share]
            chosen.extend(take)
            taken[bank] = len(take)
            slots -= len(take)
        for bank in order:
            if slots <= 0:
                break
            extra = banked[bank][taken[bank] : taken[bank] + slots]
            chosen.extend(extra)
            slots -= len(extra)
        chosen.sort(key=lambda c: -c[0])
        return chosen

    def _add_hypothesis(self, tokens: list[int], score: float, decoder: Decoder) -> None:
        body = tokens[:-1] if tokens and tokens[-1] in decoder.stop_ids else tokens
        self.finished_hyps.append(Hypothesis(body, score))
        self.finished_hyps.sort(key=lambda h: -h.score)
        del self.finished_hyps[self.width :]

    def _done(self, running: list[tuple[float, int, int]]) -> bool:
        """transformers' early-stop test (``early_stopping=False``, length_penalty 1.0)."""
        if len(self.finished_hyps) < self.width:
            return False
        best_running = max(score for score, _, _ in running)
        return self.finished_hyps[-1].score >= best_running / self.step_no

    def _reassign(
        self, decoder: Decoder, parents: list[_Beam], running: list[tuple[float, int, int]]
    ) -> None:
        """New beams take over cache sequences: a parent's first child keeps its cells, other
        children get a copy of them in a free sequence."""
        used_parents: set[int] = set()
        first_child: dict[int, int] = {}
        for slot, (_, parent, _) in enumerate(running):
            if parent not in first_child:
                first_child[parent] = slot
                used_parents.add(parent)
        all_ids = list(self.seq_ids)
        parent_seq = {i: p.seq for i, p in enumerate(parents)}
        busy = {parent_seq[p] for p in used_parents}
        free = [s for s in all_ids if s not in busy]
        for seq in free:
            decoder.seq_rm(seq)
        new_beams: list[_Beam] = []
        for slot, (score, parent, token) in enumerate(running):
            beam = parents[parent]
            if first_child[parent] == slot:
                seq = beam.seq
            else:
                seq = free.pop()
                decoder.seq_cp(beam.seq, seq)
            met, progress = (
                self._advance_constraints(beam.met, beam.progress, token)
                if self.constraints
                else ((), (-1, 0))
            )
            new_beams.append(_Beam(seq, [*beam.tokens, token], score, met, progress))
        self.beams = new_beams

    def _finalize(self) -> None:
        hyps = list(self.finished_hyps)
        if self.constraints:
            hyps = [h for h in hyps if self._contains_all(h.tokens)] or hyps
        self.results = hyps[: self.n_best]

    def _contains_all(self, tokens: list[int]) -> bool:
        for want in self.constraints:
            n = len(want)
            if not any(tokens[i : i + n] == want for i in range(len(tokens) - n + 1)):
                return False
        return True


class Decoder:
    """A llama.cpp context with a unified KV cache of ``cells`` cells for up to ``max_seqs``
    sequences, and the step loop that advances jobs on it."""

    def __init__(
        self,
        model,  # llama_cpp._internals.LlamaModel
        *,
        n_ctx_seq: int,
        cells: int,
        max_seqs: int,
        threads: int,
        n_batch: int = 512,
        n_ubatch: int = 512,
        stop_ids: frozenset[int] = frozenset(),
        unified: bool = True,
    ) -> None:
        import llama_cpp as L

        self.model = model
        self.n_ctx_seq = n_ctx_seq
        self.n_vocab = L.llama_vocab_n_tokens(model.vocab)
        params = L.llama_context_default_params()
        # unified: one pool of cells that sequences share (forks are free, but every row
        # attends over every sequence's cells); split: a stream of n_ctx_seq cells per sequence
        params.n_ctx = max(cells, n_ctx_seq) if unified else (max_seqs + 1) * n_ctx_seq
        params.n_batch = n_batch
        params.n_ubatch = min(n_ubatch, n_batch)
        params.n_seq_max = max_seqs + 1
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = unified
        # flash attention off: batched logits then stay 30x closer to decoding alone (measured
        # by benchmarks/batch_agreement.py) and CPU decode of small models is no slower
        params.flash_attn_type = 0
        params.no_perf = True
        ctx = L.llama_init_from_model(model.model, params)
        if ctx is None:
            raise MemoryError(f"llama.cpp could not allocate a KV cache of {params.n_ctx} cells")
        self.ctx = ctx
        self.mem = L.llama_get_memory(ctx)
        self.cells = L.llama_n_ctx(ctx)
        self.unified = unified
        self.max_seqs = max_seqs
        self.threads = threads
        self.n_batch = n_batch
        self.batch = L.llama_batch_init(n_batch, 0, 1)
        self._token = np.ctypeslib.as_array(self.batch.token, shape=(n_batch,))
        self._pos = np.ctypeslib.as_array(self.batch.pos, shape=(n_batch,))
        self._nseq = np.ctypeslib.as_array(self.batch.n_seq_id, shape=(n_batch,))
        self._logits = np.ctypeslib.as_array(self.batch.logits, shape=(n_batch,))
        self._seq = [self.batch.seq_id[i] for i in range(n_batch)]
        self._nseq[:] = 1
        self.stop_ids = stop_ids
        self.jobs: list[Job] = []
        self.free_ids = list(range(max_seqs, 0, -1))  # 0 is the prefix sequence
        self.prefix: list[int] = []  # tokens held by PREFIX_SEQ
        self.prefix_borrowers = 0
        self.reserved = 0  # cells promised to live jobs
        self._pieces: dict[int, bytes] = {}
        self._seed = 0x5EED
        self.mix_prefill = False  # True: prompt chunks share a llama_decode with decode rows
        self._buf = ctypes.create_string_buffer(256)
        self._output_of: dict[int, int] = {}  # batch row -> its index among the output rows
        self._n_outputs = 0
        self._argmax: list[int] | None = None  # per output row of the last decode, lazily

    # -- facts and helpers ------------------------------------------------------------------------------
    def next_seed(self) -> int:
        self._seed = (self._seed * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFF
        return self._seed

    def piece(self, token: int) -> bytes:
        data = self._pieces.get(token)
        if data is None:
            import llama_cpp as L

            n = L.llama_token_to_piece(self.model.vocab, token, self._buf, 256, 0, False)
            data = self._buf.raw[: max(0, n)]
            self._pieces[token] = data
        return data

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def argmax(self, row: int) -> int:
        """The most likely token of batch row ``row`` of the last decode (the first of equal
        maxima, as llama.cpp's greedy sampler takes). All output rows of the step are reduced
        in one call on first use."""
        if self._argmax is None:
            import llama_cpp as L

            pointer = L.llama_get_logits(self.ctx)
            logits = np.ctypeslib.as_array(pointer, shape=(self._n_outputs, self.n_vocab))
            self._argmax = logits.argmax(axis=1).tolist()
        return self._argmax[self._output_of[row]]

    def logprobs(self, row: int) -> np.ndarray:
        import llama_cpp as L

        pointer = L.llama_get_logits_ith(self.ctx, row)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).astype(np.float64)
        top = logits.max()
        return logits - (top + math.log(np.exp(logits - top).sum()))

    def logits(self, row: int) -> np.ndarray:
        import llama_cpp as L

        pointer = L.llama_get_logits_ith(self.ctx, row)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def seq_rm(self, seq: int, p0: int = -1, p1: int = -1) -> None:
        import llama_cpp as L

        L.llama_memory_seq_rm(self.mem, seq, p0, p1)

    def seq_cp(self, src: int, dst: int, p0: int = -1, p1: int = -1) -> None:
        import llama_cpp as L

        L.llama_memory_seq_cp(self.mem, src, dst, p0, p1)

    @property
    def free_cells(self) -> int:
        return self.cells - self.reserved - len(self.prefix)

    @property
    def idle(self) -> bool:
        return not self.jobs

    # -- admission ---------------------------------------------------------------------------------------
    def fits(self, job: Job) -> bool:
        """Whether ``job`` can start now (sequence ids and cache cells are free)."""
        if len(self.free_ids) < job.n_seqs():
            return False
        if not self.unified:
            return True  # every sequence has a stream of a full context
        need = len(job.prompt) + job.n_seqs() * job.max_new
        if need <= self.free_cells:
            return True
        # the prefix costs cells; it may go when nobody borrows it and the job then fits
        return self.prefix_borrowers == 0 and need <= self.cells - self.reserved

    def admit(self, job: Job) -> None:
        """Start ``job``: give it sequence ids and copy the reusable part of the prefix."""
        job.seq_ids = [self.free_ids.pop() for _ in range(job.n_seqs())]
        common = 0
        for a, b in zip(self.prefix, job.prompt):
            if a != b:
                break
            common += 1
        common = min(common, len(job.prompt) - 1)
        if self.prefix_borrowers == 0 and common < len(self.prefix):
            self.seq_rm(PREFIX_SEQ, common, -1)  # keep only what this prompt shares
            del self.prefix[common:]
        need = len(job.prompt) - common + job.n_seqs() * job.max_new
        if self.unified and need > self.free_cells and self.prefix_borrowers == 0:
            self.seq_rm(PREFIX_SEQ)
            self.prefix = []
            common = 0
        if common > 0:
            self.copy_prefix(PREFIX_SEQ, job.seq_ids[0], common)
            self.prefix_borrowers += 1
            job._borrowed = True  # type: ignore[attr-defined]
        job.prefilled = job.reused = common
        job.stats.cached_tokens = common
        job.started_at = time.perf_counter()
        self.reserved += job.cells()
        self.jobs.append(job)

    def _release(self, job: Job) -> None:
        """Free a finished job's cells; its tokens may become the prefix for the next prompt."""
        if job in self.jobs:
            self.jobs.remove(job)
        self.reserved -= job.cells()
        if getattr(job, "_borrowed", False):
            self.prefix_borrowers -= 1
        keep = job.seq_ids[0] if job.seq_ids else None
        if keep is not None and self.prefix_borrowers == 0 and not isinstance(job, BeamJob):
            cached = job.prefilled + getattr(job, "decoded", 0)
            if cached >= len(self.prefix):  # keep the longest history for the next turn
                self.seq_rm(PREFIX_SEQ)
                self.copy_prefix(keep, PREFIX_SEQ, cached)
                self.prefix = (job.prompt + list(getattr(job, "tokens", [])))[:cached]
        for seq in job.seq_ids:
            self.seq_rm(seq)
            self.free_ids.append(seq)
        # lowest ids first (kept sorted high to low, popped from the end): llama.cpp puts the
        # rows of split streams into one ubatch only while their sequence ids run s, s+1, ...
        self.free_ids.sort(reverse=True)
        job.seq_ids = []
        free = getattr(job, "free", None)
        if free is not None:
            free()

    def copy_prefix(self, src: int, dst: int, count: int) -> None:
        """Give ``dst`` the first ``count`` positions of ``src``: shared cells in a unified
        cache; in split streams a copy of the whole stream (llama.cpp copies only whole
        streams), then trimmed."""
        if self.unified:
            self.seq_cp(src, dst, 0, count)
        else:
            self.seq_cp(src, dst, -1, -1)
            self.seq_rm(dst, count, -1)

    def cancel(self, job: Job) -> None:
        """Stop ``job`` now and free its sequences and cells."""
        job.cancelled = True
        if job not in self.jobs:
            job.finish("cancelled")
            return
        if not job.finished:
            job.finish("cancelled")
        self._release(job)

    def drop_prefix(self) -> None:
        if self.prefix_borrowers == 0 and self.prefix:
            self.seq_rm(PREFIX_SEQ)
            self.prefix = []

    # -- the step ----------------------------------------------------------------------------------------
    def step(self) -> bool:
        """Advance every ready job by one batch; False when there was nothing to do."""

        for job in [j for j in self.jobs if j.finished or j.cancelled]:
            if not job.finished:
                job.finish("cancelled")
            self._release(job)
        decoding = [j for j in self.jobs if j.wanted and not j.prefilling and not j.cancelled]
        prefilling = [j for j in self.jobs if j.wanted and j.prefilling and not j.cancelled]
        if not decoding and not prefilling:
            return False
        if self.mix_prefill:
            self._decode_batch(decoding, prefilling)
        else:
            # Decode rows alone: a sequence's logits then do not depend on which prompts happen
            # to be starting beside it (llama.cpp's CPU kernels change path with batch size).
            if decoding:
                self._decode_batch(decoding, [])
            if prefilling:
                self._decode_batch([], [j for j in prefilling if not j.finished])
        for job in [j for j in self.jobs if j.finished]:
            self._release(job)
        return True

    def _decode_batch(self, decoding: list[Job], prefilling: list[Job]) -> None:
        """One ``llama_decode``: a row per decoding sequence, then prompt chunks."""
        import llama_cpp as L

        n = 0
        owners: list[tuple[Job, list[int]]] = []
        token, pos, logits, seqs = self._token, self._pos, self._logits, self._seq
        wanted: list[tuple[int, int, int, int, int]] = []
        rows_of: list[list[int]] = []
        for index, job in enumerate(decoding):
            job_rows = job.decode_rows()
            rows_of.append([0] * len(job_rows))
            wanted.extend((s, t, p, index, k) for k, (t, p, s) in enumerate(job_rows))
        wanted.sort()  # rows in sequence-id order: consecutive ids share a ubatch (_release)
        for s, t, p, index, k in wanted:
            token[n] = t
            pos[n] = p
            seqs[n][0] = s
            logits[n] = 1
            rows_of[index][k] = n
            n += 1
        for index, job in enumerate(decoding):
            owners.append((job, rows_of[index]))
        for job in sorted(prefilling, key=lambda j: j.seq_ids[0]):
            room = self.n_batch - n
            if room <= 0:
                break
            start = job.prefilled
            end = min(len(job.prompt), start + room)
            count = end - start
            token[n : n + count] = job.prompt[start:end]
            pos[n : n + count] = np.arange(start, end, dtype=np.int32)
            seq = job.seq_ids[0]
            for i in range(n, n + count):
                seqs[i][0] = seq
            logits[n : n + count] = 0
            n += count
            job.prefilled = end
            if end == len(job.prompt):
                logits[n - 1] = 1
                owners.append((job, [n - 1]))
        if n == 0:
            return
        self.batch.n_tokens = n
        # llama_get_logits holds the rows that asked for logits contiguously, in batch order
        outputs = sorted(r for _, rs in owners for r in rs)
        self._output_of = {row: i for i, row in enumerate(outputs)}
        self._n_outputs = len(outputs)
        self._argmax = None
        status = L.llama_decode(self.ctx, self.batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status}")
        for job, rows in owners:
            job.on_rows(self, rows)

    def run_until_idle(self) -> None:
        while self.jobs:
            if not self.step():
                break

    def close(self) -> None:
        import llama_cpp as L

        for job in list(self.jobs):
            job.cancelled = True
            job.finish("cancelled")
            self._release(job)
        if self.ctx is not None:
            L.llama_batch_free(self.batch)
            L.llama_free(self.ctx)
            self.ctx = None


def load_model(path: Path, *, gpu_layers: int, use_mmap: bool):  # -> _internals.LlamaModel
    """Load a GGUF's weights with llama.cpp (no context; :class:`Decoder` makes those)."""
    import llama_cpp as L
    from llama_cpp import _internals

    _backend_init()
    params = L.llama_model_default_params()
    params.n_gpu_layers = 0x7FFFFFFF if gpu_layers < 0 else gpu_layers
    if hasattr(params, "load_mode"):
        params.load_mode = L.LLAMA_LOAD_MODE_MMAP if use_mmap else L.LLAMA_LOAD_MODE_NONE
    elif hasattr(params, "use_mmap"):  # pragma: no cover - older llama-cpp-python
        params.use_mmap = use_mmap
    return _internals.LlamaModel(path_model=str(path), params=params, verbose=False)


_BACKEND_READY = False


def _backend_init() -> None:
    global _BACKEND_READY
    if not _BACKEND_READY:
        import llama_cpp as L
        from llama_cpp import _logger

        _logger.set_verbose(False)  # llama.cpp's log lines go to Python's logger, errors only
        L.llama_backend_init()
        _BACKEND_READY = True


@dataclass
class KVSize:
    """Bytes of KV cache per token cell, from the model's shape (F16 cache)."""

    layers: int
    kv_dim: int
    bytes_per_cell: int = field(init=False)

    def __post_init__(self) -> None:
        self.bytes_per_cell = self.layers * 2 * self.kv_dim * 2
