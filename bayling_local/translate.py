"""Translation with BayLing: instructions, splitting to fit the context, streaming the result.

BayLing was evaluated with one instruction per sentence (field guide, section 2), so a
document is translated line by line: blank lines and indentation are kept as they are and
never sent to the model, and a line too long for the context is split at sentence boundaries
(then clauses, then words) into pieces that each fit with room for their translation. Nothing
is ever silently truncated: a piece whose translation hits the token limit is reported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .batch import BatchEngine, DecodeRequest, DecodeResult
from .engine import Engine, GenerationStats, SamplingConfig
from .errors import Cancelled, ContextOverflowError, InputError
from .languages import Language
from .prompts import Message
from .segment import Line, join_lines, join_pieces, split_lines, split_to_fit

InstructionLang = Literal["en", "zh"]
INSTRUCTION_LANGS: tuple[str, ...] = ("en", "zh")

# Translation is deterministic by default: the paper decoded with beam search and no sampling.
TRANSLATION_SAMPLING = SamplingConfig(max_tokens=1024, temperature=0.0, repeat_penalty=1.0)


def build_instruction(
    text: str,
    target: Language,
    *,
    instruction_lang: InstructionLang = "en",
    constraints: Sequence[str] = (),
) -> str:
    """BayLing's translation instruction (``scripts/translate.py``), optionally constrained."""
    if instruction_lang == "zh":
        instruction = f"提供这句话的{target.chinese}翻译：{text}"
        if constraints:
            instruction += "\n确保包含这些词：" + ", ".join(constraints)
    else:
        instruction = f"Provide the {target.name} translation for this sentence: {text}"
        if constraints:
            instruction += "\nMake sure to include these words: " + ", ".join(constraints)
    return instruction


def translation_messages(
    text: str,
    target: Language,
    *,
    instruction_lang: InstructionLang = "en",
    constraints: Sequence[str] = (),
    system: str | None = None,
) -> list[Message]:
    """The conversation that asks for one translation."""
    messages = [Message("system", system)] if system else []
    messages.append(
        Message(
            "user",
            build_instruction(
                text, target, instruction_lang=instruction_lang, constraints=constraints
            ),
        )
    )
    return messages


def validate_text(data: bytes) -> str:
    """Decode user input, refusing binary data and invalid UTF-8 with one clear line."""
    if b"\x00" in data:
        raise InputError("the input looks like binary data, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the input is not valid UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.strip():
        raise InputError("there is no text to translate (the input is empty)")
    return text


@dataclass
class TranslationResult:
    """A finished translation and what it cost."""

    text: str
    target: Language
    source: Language | None
    pieces: int = 0
    stats: GenerationStats = field(default_factory=GenerationStats)
    truncated_pieces: int = 0  # pieces whose translation hit the token limit
    segments: list[SegmentResult] = field(default_factory=list)  # per line, when batched


@dataclass(frozen=True)
class Piece:
    """A unit sent to the model: part of one input line."""

    line: int
    text: str


class Translator:
    """Translates text with one loaded engine."""

    def __init__(
        self,
        engine: Engine,
        sampling: SamplingConfig = TRANSLATION_SAMPLING,
        *,
        instruction_lang: InstructionLang = "en",
        system: str | None = None,
        parallel: int | None = None,
        batch: BatchEngine | None = None,
    ) -> None:
        """``batch``: decode segments on this open batch engine (of ``engine``) instead of one
        the translator starts and closes itself; its owner closes it. Without it, a translator
        shares the batch engine already open on ``engine``, if any (one per engine)."""
        if batch is not None and batch.engine is not engine:
            raise ValueError("the batch engine runs on another engine")
        self.engine = engine
        self.sampling = sampling
        self.instruction_lang = instruction_lang
        self.system = system
        self.parallel = batch.parallel if batch is not None and parallel is None else parallel
        self._batch: BatchEngine | None = batch
        self._owns_batch = batch is None

    def messages_for(
        self, text: str, target: Language, constraints: Sequence[str] = ()
    ) -> list[Message]:
        return translation_messages(
            text,
            target,
            instruction_lang=self.instruction_lang,
            constraints=constraints,
            system=self.system,
        )

    def _prompt_tokens(self, text: str, target: Language, constraints: Sequence[str]) -> int:
        return len(
            self.engine.tokenize(self.engine.render(self.messages_for(text, target, constraints)))
        )

    def _output_budget(self, source_tokens: int) -> int:
        """Room for a translation: scripts differ in tokens per word, so allow twice the source."""
        return min(self.sampling.max_tokens, 2 * source_tokens + 32)

    def plan(
        self, text: str, target: Language, constraints: Sequence[str] = ()
    ) -> tuple[list[Line], list[Piece]]:
        """Split ``text`` into lines and the pieces that fit the context."""
        lines = split_lines(text)
        overhead = self._prompt_tokens("", target, constraints)
        n_ctx = self.engine.n_ctx

        def fits(candidate: str) -> bool:
            source_tokens = len(self.engine.tokenize(candidate, add_bos=False))
            return overhead + source_tokens + self._output_budget(source_tokens) <= n_ctx

        if overhead + 8 >= n_ctx:
            raise ContextOverflowError(
                f"the model's context ({n_ctx} tokens) is too small for a translation prompt"
            )
        pieces = [
            Piece(index, chunk)
            for index, line in enumerate(lines)
            if line.body
            for chunk in split_to_fit(line.body, fits)
        ]
        return lines, pieces

    def translate(
        self,
        text: str,
        target: Language,
        *,
        source: Language | None = None,
        constraints: Sequence[str] = (),
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        beam: int = 1,
        n_best: int = 1,
    ) -> TranslationResult:
        """Translate ``text``; ``on_text`` receives the output as it is produced, layout included.

        With ``parallel`` > 1 (and more than one line), a beam, or alternatives, the lines are
        translated together on the batch engine (where ``constraints`` are also enforced by
        constrained beam search) and each line is written as soon as it and
        every line before it are done; otherwise the translation streams token by token.
        """
        try:
            lines_with_text = sum(1 for line in split_lines(text) if line.body)
            batched = (self.parallel or 1) > 1 and lines_with_text > 1
            if beam > 1 or n_best > 1 or batched:
                return self._translate_lines(
                    text, target, source, constraints, on_text, cancel, beam, n_best
                )
            return self._translate(text, target, source, constraints, on_text, cancel)
        except KeyboardInterrupt:
            raise Cancelled("interrupted") from None

    def _translate_lines(
        self,
        text: str,
        target: Language,
        source: Language | None,
        constraints: Sequence[str],
        on_text: Callable[[str], None] | None,
        cancel: threading.Event | None,
        beam: int,
        n_best: int,
    ) -> TranslationResult:
        lines = split_lines(text)
        bodies = [index for index, line in enumerate(lines) if line.body]
        emit = on_text or (lambda _text: None)
        done: dict[int, SegmentResult] = {}
        written = 0  # lines written so far
        emit(lines[0].lead)

        def flush() -> None:
            nonlocal written
            while written < len(lines):
                line = lines[written]
                if line.body:
                    result = done.get(written)
                    if result is None:
                        return
                    emit(result.text)
                emit(
                    line.trail
                    + ("\n" + lines[written + 1].lead if written + 1 < len(lines) else "")
                )
                written += 1

        def finished(index: int, result: SegmentResult) -> None:
            done[bodies[index]] = result
            flush()

        results = self.translate_segments(
            [lines[i].body for i in bodies],
            target,
            constraints=[constraints] * len(bodies) if constraints else None,
            beam=beam,
            n_best=n_best,
            on_done=finished,
            cancel=cancel,
        )
        if any(r.finish_reason == "cancelled" for r in results):
            raise Cancelled("translation cancelled")
        flush()
        total = TranslationResult(text="", target=target, source=source, segments=results)
        for result in results:
            _accumulate(total.stats, result.stats)
            total.pieces += 1
            if result.finish_reason in ("length", "context"):
                total.truncated_pieces += 1
        texts = {bodies[i]: r.text for i, r in enumerate(results)}
        total.text = join_lines(lines, [texts.get(i, "") for i in range(len(lines))])
        return total

    def _translate(
        self,
        text: str,
        target: Language,
        source: Language | None,
        constraints: Sequence[str],
        on_text: Callable[[str], None] | None,
        cancel: threading.Event | None,
    ) -> TranslationResult:
        lines, pieces = self.plan(text, target, constraints)
        bodies: list[list[str]] = [[] for _ in lines]
        result = TranslationResult(text="", target=target, source=source, pieces=len(pieces))
        emit = on_text or (lambda _text: None)
        written_line = 0  # index of the line the streamed output is on

        def advance_to(line_index: int) -> None:
            nonlocal written_line
            while written_line < line_index:
                emit(lines[written_line].trail + "\n" + lines[written_line + 1].lead)
                written_line += 1

        emit(lines[0].lead)
        for piece in pieces:
            advance_to(piece.line)
            if bodies[piece.line] and not emit_cjk_joined(bodies[piece.line][-1]):
                emit(" ")
            source_tokens = len(self.engine.tokenize(piece.text, add_bos=False))
            sampling = _replace_max_tokens(self.sampling, self._output_budget(source_tokens))
            generation = self.engine.chat(
                self.messages_for(piece.text, target, constraints), sampling, cancel=cancel
            )
            translated = ""
            leading = True
            for chunk in generation:
                if leading:  # the model's leading whitespace would break the layout
                    chunk = chunk.lstrip()
                    leading = not chunk
                translated += chunk
                if chunk:
                    emit(chunk)
            _accumulate(result.stats, generation.stats)
            if generation.stats.finish_reason == "cancelled":
                raise Cancelled("translation cancelled")
            if generation.stats.finish_reason in ("length", "context"):
                result.truncated_pieces += 1
            bodies[piece.line].append(translated.strip())
        advance_to(len(lines) - 1)
        emit(lines[-1].trail)
        result.text = join_lines(lines, [join_pieces(parts) for parts in bodies])
        return result

    # -- many segments at once -------------------------------------------------------------------

    @property
    def batch(self) -> BatchEngine:
        """The batch engine this translator decodes segments on: the one given, the one
        already open on the engine, or one started on first use."""
        return self._batch_for(1)

    def _batch_for(self, beam: int) -> BatchEngine:
        if self._batch is not None and self._batch.closed:
            self._batch, self._owns_batch = None, True
        if self._batch is not None and not self._owns_batch:
            return self._batch  # shared: used as laid out (wider beams fork by copying)
        if self._batch is not None and self._batch.beam < beam:
            self._batch.close()
            self._batch = None
        if self._batch is None:
            shared = self.engine.batch_engine
            if shared is not None:
                self._batch, self._owns_batch = shared, False
            else:
                self._batch = BatchEngine(self.engine, self.parallel, beam=beam)
                self._owns_batch = True
        return self._batch

    def close(self) -> None:
        """Stop the batch engine's scheduler if this translator started it (the engine itself
        stays loaded; a given or shared batch engine is its owner's to close)."""
        if self._batch is not None and self._owns_batch:
            self._batch.close()
        self._batch = None

    def _segment_messages(
        self,
        text: str,
        target: Language,
        constraints: Sequence[str],
        history: Sequence[tuple[str, str]],
        budget: int,
    ) -> list[Message]:
        """The instruction for ``text`` after as many of the latest ``history`` turns as fit."""
        turns = list(history)
        while True:
            messages = [Message("system", self.system)] if self.system else []
            for source_text, translated in turns:
                messages.append(
                    Message(
                        "user",
                        build_instruction(
                            source_text, target, instruction_lang=self.instruction_lang
                        ),
                    )
                )
                messages.append(Message("assistant", translated))
            messages.append(
                Message(
                    "user",
                    build_instruction(
                        text,
                        target,
                        instruction_lang=self.instruction_lang,
                        constraints=constraints,
                    ),
                )
            )
            if not turns:
                return messages
            used = len(self.engine.tokenize(self.engine.render(messages)))
            if used + budget <= self.engine.n_ctx:
                return messages
            turns.pop(0)  # the oldest context goes first

    def translate_segments(
        self,
        segments: Sequence[str],
        target: Language,
        *,
        source: Language | None = None,
        constraints: Sequence[Sequence[str] | None] | None = None,
        beam: int = 1,
        n_best: int = 1,
        history: Sequence[Sequence[tuple[str, str]] | None] | None = None,
        on_done: Callable[[int, SegmentResult], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[SegmentResult]:
        """Translate each segment on its own, many at once; results come in input order.

        A segment too long for the context is split to fit (as :meth:`translate` does) and its
        pieces' translations joined. ``constraints[i]`` are phrases segment ``i``'s translation
        must contain (named in the instruction and enforced by constrained beam search);
        ``history[i]`` are earlier ``(source, translation)`` turns given as context.
        ``on_done(i, result)`` is called as each segment finishes (in the calling thread).
        Setting ``cancel`` stops the work: unfinished segments come back with the finish reason
        ``"cancelled"`` and what they had so far.
        """
        del source  # BayLing's instruction names only the target language
        if constraints is not None and len(constraints) != len(segments):
            raise ValueError("constraints must have one entry per segment")
        if history is not None and len(history) != len(segments):
            raise ValueError("history must have one entry per segment")
        if not 1 <= n_best <= beam:
            raise ValueError("n_best must be between 1 and beam")
        stops = tuple(dict.fromkeys((*self.engine.prompt_format.stop_strings, *self.sampling.stop)))
        requests: list[DecodeRequest] = []
        owners: list[tuple[int, int, int]] = []  # (segment, line, piece) of each request
        layouts: list[tuple[list[Line], list[list[int]]]] = []
        for index, segment in enumerate(segments):
            phrases = tuple(p for p in (constraints[index] or ()) if p) if constraints else ()
            turns = tuple(history[index] or ()) if history else ()
            lines, pieces = self.plan(segment, target, phrases)
            slots: list[list[int]] = [[] for _ in lines]
            for number, piece in enumerate(pieces):
                source_tokens = len(self.engine.tokenize(piece.text, add_bos=False))
                budget = self._output_budget(source_tokens)
                sampling = _replace_max_tokens(self.sampling, budget)
                # A phrase split across pieces cannot be forced; force only those the piece names.
                required = tuple(p for p in phrases if len(pieces) == 1 or p in piece.text)
                messages = self._segment_messages(
                    piece.text, target, phrases, turns if number == 0 else (), budget
                )
                slots[piece.line].append(len(requests))
                owners.append((index, piece.line, number))
                requests.append(
                    DecodeRequest(
                        self.engine.render(messages),
                        sampling,
                        stops,
                        beam=beam,
                        n_best=n_best,
                        required=required if len(pieces) == 1 else (),
                    )
                )
            layouts.append((lines, slots))

        results: list[DecodeResult | None] = [None] * len(requests)
        remaining = [sum(len(s) for s in slots) for _, slots in layouts]
        finished: list[SegmentResult | None] = [None] * len(segments)

        def assemble(index: int) -> SegmentResult:
            lines, slots = layouts[index]
            parts = [[results[r] for r in slot] for slot in slots]
            stats = GenerationStats()
            finish: str = "stop"
            for part in (p for line in parts for p in line if p is not None):
                _accumulate(stats, part.stats)
                if part.finish_reason != "stop" and finish != "cancelled":
                    finish = part.finish_reason
            bodies = [
                join_pieces([p.text.strip() for p in line if p is not None]) for line in parts
            ]
            text = join_lines(lines, bodies)
            single = [p for line in parts for p in line if p is not None]
            if len(single) == 1:
                alternatives = [
                    (text_of(lines, alt), score) for alt, score in single[0].alternatives
                ]
            else:
                alternatives = [(text, sum(s for p in single for _, s in p.alternatives[:1]))]
            stats.finish_reason = finish  # type: ignore[assignment]
            return SegmentResult(segments[index], text, alternatives, finish, stats)

        def text_of(lines: list[Line], body: str) -> str:
            return join_lines(lines, [body.strip() if line.body else "" for line in lines])

        def done(request_index: int, result: DecodeResult) -> None:
            results[request_index] = result
            segment_index = owners[request_index][0]
            remaining[segment_index] -= 1
            if remaining[segment_index] == 0:
                finished[segment_index] = assemble(segment_index)
                if on_done is not None:
                    on_done(segment_index, finished[segment_index])  # type: ignore[arg-type]

        for index, count in enumerate(remaining):  # segments with nothing to translate
            if count == 0:
                finished[index] = assemble(index)
                if on_done is not None:
                    on_done(index, finished[index])  # type: ignore[arg-type]
        # constrained search needs beams: a shared cache pool forks them without copying
        constrained = any(r.required for r in requests)
        self._batch_for(max(beam, 4) if constrained else beam).run(
            requests, on_done=done, cancel=cancel
        )
        return [r for r in finished if r is not None]


@dataclass
class SegmentResult:
    """One translated segment: the best text, the n-best alternatives, and what it cost."""

    source: str
    text: str
    alternatives: list[tuple[str, float]]  # best first: (text, score)
    finish_reason: str  # "stop" | "length" | "context" | "cancelled"
    stats: GenerationStats


def emit_cjk_joined(previous: str) -> bool:
    """Whether the next piece of a line follows ``previous`` with no space (CJK text)."""
    return join_pieces([previous, "x"]) == previous.strip() + "x"


def _replace_max_tokens(sampling: SamplingConfig, max_tokens: int) -> SamplingConfig:
    from dataclasses import replace

    return replace(sampling, max_tokens=max(1, max_tokens))


def _accumulate(total: GenerationStats, part: GenerationStats) -> None:
    total.prompt_tokens += part.prompt_tokens
    total.cached_tokens += part.cached_tokens
    total.generated_tokens += part.generated_tokens
    total.prefill_seconds += part.prefill_seconds
    total.decode_seconds += part.decode_seconds
    total.finish_reason = part.finish_reason
