"""Translating a whole document: parse, segment, recall, translate, force terms, write.

The one library entry point the CLI, the terminal UI and the server share:
:func:`translate_document` (a file to a file), :func:`translate_folder` (a tree) and
:func:`translate_bytes` (in memory). Progress goes to a callback, cancellation comes from an
event; nothing here prints.
"""

from __future__ import annotations

import os
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..errors import Cancelled, InputError, OutputError, UsageError
from ..languages import Language
from .constrained import append_missing, forced_continuation
from .formats import Format, format_for, load
from .glossary import Glossary, contains
from .memory import TranslationMemory, segment_key
from .model import OPEN, Block, split_tokens, tokens_in
from .segmentation import Sentence, join_sentences, split_sentences, unspaced


class SegmentTranslator(Protocol):
    """What the pipeline needs of a translator (``bayling_local.translate.Translator``)."""

    def translate_segments(
        self,
        segments: Sequence[str],
        target: Language,
        *,
        source: Any = ...,
        constraints: Any = ...,
        history: Any = ...,
        on_done: Any = ...,
        cancel: Any = ...,
    ) -> list[Any]: ...


@dataclass
class DocumentOptions:
    target: Language
    source: Language | None = None  # None: detected from the document
    format: str | None = None  # None: from the extension
    glossary: Glossary | None = None
    context: int = 0  # previous segments given as earlier conversation turns
    bilingual: bool = False
    memory: TranslationMemory | None = None  # None: no translation memory (--no-cache)
    second_pass_beam: int = 4


@dataclass
class DocumentProgress:
    """Where a document's translation stands (passed to the progress callback)."""

    path: str
    total: int
    done: int = 0
    cached: int = 0
    translated: int = 0
    generated_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class SecondPass:
    index: int
    where: str
    source: str
    missing: list[str]
    first: str
    final: str
    method: str  # "constrained-beam" | "forced-continuation" | "appended"


@dataclass
class DocumentSummary:
    input: str
    output: str | None
    format: str
    source: str | None
    target: str
    blocks: int = 0
    segments: int = 0
    cached: int = 0
    translated: int = 0
    kept: int = 0  # segments with nothing to translate (inline code, numbers): left as they are
    generated_tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0
    terms_required: int = 0  # (segment, glossary term) pairs
    terms_hit_first: int = 0
    terms_hit_final: int = 0
    placeholders_required: int = 0
    placeholders_hit_first: int = 0
    second_pass: list[SecondPass] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary printed at the end."""
        parts = [
            f"{self.output or 'stdout'}: {self.segments} segments",
            f"{self.translated} translated, {self.cached} from memory"
            + (f", {self.kept} kept as they are" if self.kept else ""),
            f"{self.seconds:.1f}s",
        ]
        if self.translated and self.seconds > 0:
            parts.append(f"{self.generated_tokens / self.seconds:.1f} tokens/s")
        if self.terms_required:
            parts.append(
                f"terms {_percent(self.terms_hit_first, self.terms_required)} before, "
                f"{_percent(self.terms_hit_final, self.terms_required)} after the second pass"
            )
        if self.second_pass:
            parts.append(f"{len(self.second_pass)} segments needed the second pass")
        if self.truncated:
            parts.append(f"{self.truncated} hit the token limit")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["terms_hit_rate_first"] = _rate(self.terms_hit_first, self.terms_required)
        data["terms_hit_rate_final"] = _rate(self.terms_hit_final, self.terms_required)
        return data


def _rate(hit: int, total: int) -> float | None:
    return round(hit / total, 4) if total else None


def _percent(hit: int, total: int) -> str:
    return f"{100 * hit / total:.0f}% ({hit}/{total})"


@dataclass
class _Unit:
    block: int
    text: str
    terms: list[str]  # glossary target terms (named in the instruction)
    placeholders: list[str]
    translation: str | None = None
    history: list[tuple[str, str]] = field(default_factory=list)
    key: str = ""
    source_positions: dict[str, int] = field(default_factory=dict)  # target term -> offset

    @property
    def required(self) -> list[str]:
        return [*self.terms, *self.placeholders]

    def missing(self, text: str | None = None) -> list[str]:
        text = self.translation if text is None else text
        return [p for p in self.required if not contains(text or "", p)]

    def missing_terms(self, text: str | None = None) -> list[str]:
        text = self.translation if text is None else text
        return [p for p in self.terms if not contains(text or "", p)]


ProgressCallback = Callable[[DocumentProgress], None]


# -- the translator's identity, for the memory's keys ----------------------------------------


def fingerprint(
    translator: Any, options: DocumentOptions, source: Language | None
) -> dict[str, Any]:
    """Everything besides the segment that decides its translation."""
    engine = getattr(translator, "engine", None)
    model = "none"
    if engine is not None and options.memory is not None:
        model = options.memory.model_sha256(engine.config.model_path)
    sampling = getattr(translator, "sampling", None)
    return {
        "v": 1,
        "model": model,
        "prompt_format": engine.prompt_format.name if engine is not None else None,
        "source": source.code if source else None,
        "target": options.target.code,
        "instruction_lang": getattr(translator, "instruction_lang", None),
        "system": getattr(translator, "system", None),
        "sampling": asdict(sampling) if sampling is not None else None,
        "context": options.context,
        "second_pass_beam": options.second_pass_beam,
    }


# -- the pipeline ------------------------------------------------------------------------------


def _detect_source(blocks: list[Block]) -> Language | None:
    from ..detect import detect

    sample = " ".join(b.text for b in blocks)[:4000]
    for token in set(tokens_in(sample)):
        sample = sample.replace(token, " ")
    try:
        return detect(sample).language
    except (UsageError, Exception):  # detection is advisory: sentence rules default to English
        return None


def _units(
    blocks: list[Block], source: Language | None, glossary: Glossary | None
) -> tuple[list[_Unit], list[tuple[str, list[Sentence]]]]:
    units: list[_Unit] = []
    layouts: list[tuple[str, list[Sentence]]] = []
    for number, block in enumerate(blocks):
        if block.split:
            lead, sentences = split_sentences(block.text, source)
        else:
            body = block.text.strip()
            lead = block.text[: len(block.text) - len(block.text.lstrip())]
            sentences = [Sentence(body, block.text[len(lead) + len(body) :])] if body else []
        layouts.append((lead, sentences))
        for sentence in sentences:
            units.append(
                _Unit(
                    number,
                    sentence.text,
                    glossary.required(sentence.text) if glossary else [],
                    list(dict.fromkeys(tokens_in(sentence.text))),
                    source_positions=glossary.positions(sentence.text) if glossary else {},
                )
            )
    return units, layouts


def has_words(text: str) -> bool:
    """Whether ``text`` holds anything to translate: a letter outside its placeholders."""
    plain = "".join(part for part in split_tokens(text) if part not in tokens_in(part))
    return any(unicodedata.category(char).startswith("L") for char in plain)


def _clean(source: str, translated: str) -> str:
    """A translation shaped like its source: no stray newlines in a one-line segment."""
    text = "".join(c for c in translated if c in "\t\n" or not _is_control(c)).strip()
    if "\n" not in source:
        text = " ".join(text.split())
    return text


def _is_control(char: str) -> bool:
    """Characters XML cannot hold and no document wants (C0/C1 controls, surrogates, FFFE/F)."""
    code = ord(char)
    return code < 32 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000 or code in (0xFFFE, 0xFFFF)


def translate_bytes(
    data: bytes,
    fmt: Format,
    translator: SegmentTranslator,
    options: DocumentOptions,
    *,
    name: str = "input",
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[bytes, DocumentSummary]:
    """Translate a document held in memory; returns the new document and its summary."""
    started = time.perf_counter()
    if not data.strip():
        raise InputError(f"{name} is empty: there is no text to translate")
    document = load(data, fmt, name)
    blocks = document.blocks()
    source = options.source or _detect_source(blocks)
    units, layouts = _units(blocks, source, options.glossary)
    summary = DocumentSummary(
        name, None, fmt.name, source.code if source else None, options.target.code
    )
    summary.blocks, summary.segments = len(blocks), len(units)
    state = DocumentProgress(name, len(units))
    report = progress or (lambda _state: None)
    memory = options.memory
    print_key = fingerprint(translator, options, source) if memory is not None else {}
    source_code = source.code if source else "und"
    model = print_key.get("model", "")

    def recall(unit: _Unit) -> bool:
        if memory is None:
            return False
        unit.key = segment_key(print_key, unit.text, unit.terms, unit.history)
        found = memory.get(unit.key, source_code, options.target.code, unit.text)
        if found is None:
            return False
        unit.translation = found
        state.cached += 1
        state.done += 1
        return True

    def remember(unit: _Unit) -> None:
        if memory is not None and unit.translation is not None and not unit.missing():
            if not unit.key:
                unit.key = segment_key(print_key, unit.text, unit.terms, unit.history)
            memory.put(
                unit.key, unit.text, unit.translation, source_code, options.target.code, model
            )

    def finished(unit: _Unit, result: Any) -> None:
        if result.finish_reason == "cancelled":
            return
        unit.translation = _clean(unit.text, result.text)
        if result.finish_reason in ("length", "context"):
            summary.truncated += 1
        summary.generated_tokens += result.stats.generated_tokens
        state.generated_tokens += result.stats.generated_tokens
        state.translated += 1
        state.done += 1
        remember(unit)
        report(state)

    for unit in units:  # a cell of code or a lone number: nothing for the model to do
        if not has_words(unit.text):
            unit.translation = unit.text
            summary.kept += 1
            state.done += 1
    try:
        if options.context <= 0:
            for unit in units:
                if unit.translation is None:
                    recall(unit)
            if memory is not None:
                memory.touch()
            report(state)
            todo = [u for u in units if u.translation is None]
            if todo:
                _first_pass(todo, translator, options, source, finished, cancel)
        else:
            done_pairs: list[tuple[str, str]] = []
            for unit in units:
                unit.history = done_pairs[-options.context :]
                if unit.translation is None and not recall(unit):
                    _first_pass([unit], translator, options, source, finished, cancel)
                report(state)
                if unit.translation is None:
                    break
                done_pairs.append((unit.text, unit.translation))
        if cancel is not None and cancel.is_set() or any(u.translation is None for u in units):
            raise Cancelled(_interrupted(state))
        for unit in _second_pass(units, blocks, translator, options, summary):
            remember(unit)
    except KeyboardInterrupt:
        raise Cancelled(_interrupted(state)) from None
    except Cancelled as exc:
        if "kept in the translation memory" in exc.message:
            raise
        raise Cancelled(_interrupted(state)) from None

    translations: dict[int, str] = {}
    by_block: dict[int, list[str]] = {}
    for unit in units:
        by_block.setdefault(unit.block, []).append(unit.translation or "")
    for number, (lead, sentences) in enumerate(layouts):
        if sentences:
            translations[number] = join_sentences(
                lead, sentences, by_block.get(number, []), options.target, source
            )
    summary.cached, summary.translated = state.cached, state.translated
    output = document.render(translations, bilingual=options.bilingual)
    summary.seconds = time.perf_counter() - started
    return output, summary


def _first_pass(
    units: list[_Unit],
    translator: Any,
    options: DocumentOptions,
    source: Language | None,
    finished: Callable[[_Unit, Any], None],
    cancel: threading.Event | None,
) -> None:
    """Translate ``units``; glossary terms are named in the instruction, not yet forced.

    Segments with terms that fit one request go to the batch engine directly with BayLing's
    constrained instruction (the model's own choice first, so the summary can say how often
    the instruction alone was enough); everything else goes through
    ``Translator.translate_segments`` (which splits a segment too long for the context).
    """
    engine = getattr(translator, "engine", None)
    batch = getattr(translator, "batch", None)
    instructed: list[tuple[_Unit, Any]] = []
    plain: list[_Unit] = []
    for unit in units:
        request = _request(unit, translator, options.target) if unit.terms else None
        if request is not None and engine is not None and batch is not None:
            instructed.append((unit, request))
        else:
            plain.append(unit)
    if plain:
        results = translator.translate_segments(
            [u.text for u in plain],
            options.target,
            source=source,
            constraints=[u.terms or None for u in plain],
            history=[u.history for u in plain] if any(u.history for u in plain) else None,
            on_done=lambda i, r: finished(plain[i], r),
            cancel=cancel,
        )
        for unit, result in zip(plain, results):
            if unit.translation is None and result.finish_reason != "cancelled":
                finished(unit, result)
    if instructed and not (cancel is not None and cancel.is_set()):
        results = batch.run(  # type: ignore[union-attr]
            [request for _, request in instructed],
            on_done=lambda i, r: finished(instructed[i][0], r),
            cancel=cancel,
        )
        for (unit, _), result in zip(instructed, results):
            if unit.translation is None and result.finish_reason != "cancelled":
                finished(unit, result)


def _request(
    unit: _Unit, translator: Any, target: Language, required: Sequence[str] = (), beam: int = 1
):
    """One decode request for ``unit`` (None when its prompt does not fit the context)."""
    from dataclasses import replace

    from ..batch import DecodeRequest

    engine = getattr(translator, "engine", None)
    if engine is None:
        return None
    prompt = engine.render(_messages(translator, unit, target))
    budget = _budget(translator, unit.text)
    if len(engine.tokenize(prompt)) + budget >= engine.n_ctx:
        return None
    stops = tuple(dict.fromkeys((*engine.prompt_format.stop_strings, *translator.sampling.stop)))
    return DecodeRequest(
        prompt,
        replace(translator.sampling, max_tokens=budget),
        stops,
        beam=beam,
        required=tuple(required),
    )


def _interrupted(state: DocumentProgress) -> str:
    return (
        f"interrupted: {state.done} of {state.total} segments finished and kept in the "
        "translation memory; run the same command again to resume"
    )


def _second_pass(
    units: list[_Unit],
    blocks: list[Block],
    translator: Any,
    options: DocumentOptions,
    summary: DocumentSummary,
) -> list[_Unit]:
    """Force the glossary terms and placeholders a first translation missed; returns those."""
    for unit in units:
        summary.terms_required += len(unit.terms)
        summary.terms_hit_first += sum(contains(unit.translation or "", t) for t in unit.terms)
        summary.placeholders_required += len(unit.placeholders)
        summary.placeholders_hit_first += sum(
            (unit.translation or "").count(p) >= 1 for p in unit.placeholders
        )
    needy = [u for u in units if u.missing()]
    spaced = not unspaced(options.target)
    if needy:
        firsts = {id(u): u.translation or "" for u in needy}
        wanting_terms = [u for u in needy if u.missing_terms()]
        methods = _constrained_beam(wanting_terms, translator, options)
        for unit in needy:
            method = methods.get(id(unit), "")
            if unit.missing_terms():
                text, method = _force(unit, translator, options)
                if _plausible(text, firsts[id(unit)], unit) and not unit.missing_terms(text):
                    unit.translation = text
                else:
                    method = "inserted"
            if unit.missing():  # placeholders (and any term still missing): put in place
                unit.translation = _insert_missing(unit, spaced)
                method = method or "inserted"
            summary.second_pass.append(
                SecondPass(
                    units.index(unit),
                    blocks[unit.block].where,
                    unit.text,
                    [p for p in unit.required if not contains(firsts[id(unit)], p)],
                    firsts[id(unit)],
                    unit.translation or "",
                    method,
                )
            )
    summary.terms_hit_final = sum(contains(u.translation or "", t) for u in units for t in u.terms)
    return needy


def _plausible(candidate: str, first: str, unit: _Unit) -> bool:
    """Whether a forced translation still looks like a translation of the segment.

    Forcing a phrase the model finds unlikely can make it run on past its answer (a beam kept
    from ending until the phrase fits); such output is longer than any translation of the
    segment, or repeats the prompt's own markers.
    """
    limit = 2 * max(len(first), len(unit.text)) + sum(len(p) for p in unit.required) + 24
    if len(candidate) > limit:
        return False
    return all(marker not in candidate or marker in unit.text for marker in _PROMPT_MARKERS)


_PROMPT_MARKERS = ("### Response", "### Instruction", "<|start_header_id|>", "<|eot_id|>", "</s>")


def _insert_missing(unit: _Unit, spaced: bool) -> str:
    """The translation with each missing phrase written where its source sits.

    Phrases go in in source order, each after the one before; a paired placeholder
    (``⟦n⟧`` ... ``⟦/n⟧``: a link, an inline element) always lands on the right side of its
    partner, and a pair the model wrote in the wrong order is taken out and put back in order.
    A placeholder glued to a word in the source (``<b>word``, ``word</b>``, ``ball<x/>.``) is
    glued to the neighbouring word the same way.
    """
    text = unit.translation or ""
    for token in unit.placeholders:  # a closing token before its opening one: redo both
        if token.startswith(OPEN + "/"):
            opening = OPEN + token[2:]
            if opening in text and token in text and text.index(token) < text.index(opening):
                text = " ".join(text.replace(token, " ").replace(opening, " ").split())
    floor = 0
    for phrase in sorted(unit.missing(text), key=lambda p: _position(unit, p)):
        low, high = floor, len(text)
        if phrase.startswith(OPEN + "/") and (OPEN + phrase[2:]) in text:
            low = max(low, text.index(OPEN + phrase[2:]) + len(phrase) - 1)
        partner = OPEN + "/" + phrase[1:]
        if not phrase.startswith(OPEN + "/") and partner in text:
            high = min(high, text.index(partner))
        high = max(high, low)
        wanted = round(len(text) * _position(unit, phrase))
        points = [low, high]
        if spaced:
            points += [i for i, char in enumerate(text) if char == " " and low <= i <= high]
        else:
            points += list(range(low, high + 1))
        cut = min(points, key=lambda b: (abs(b - wanted), b))
        head, tail = text[:cut].rstrip() if spaced else text[:cut], text[cut:]
        if spaced:
            tail = tail.lstrip()
            at = unit.text.find(phrase)
            after = at + len(phrase)
            glue_left = at > 0 and unit.text[at - 1].isalnum()
            glue_right = at >= 0 and after < len(unit.text) and unit.text[after].isalnum()
            left = "" if glue_left or not head else " "
            right = "" if glue_right or not tail else " "
            text = head + left + phrase + right + tail
            floor = len(head + left + phrase)
        else:
            text = head + phrase + tail
            floor = len(head + phrase)
    return append_missing(text, unit.missing(text), spaced=spaced)


def _messages(translator: Any, unit: _Unit, target: Language) -> list:
    from ..prompts import Message
    from ..translate import build_instruction

    lang: Literal["en", "zh"] = (
        "zh" if getattr(translator, "instruction_lang", "") == "zh" else "en"
    )
    system = getattr(translator, "system", None)
    messages = [Message("system", system)] if system else []
    for source_text, translated in unit.history:
        messages.append(
            Message("user", build_instruction(source_text, target, instruction_lang=lang))
        )
        messages.append(Message("assistant", translated))
    messages.append(
        Message(
            "user",
            build_instruction(unit.text, target, instruction_lang=lang, constraints=unit.terms),
        )
    )
    return messages


def _budget(translator: Any, text: str) -> int:
    engine = translator.engine
    source_tokens = len(engine.tokenize(text, add_bos=False))
    return min(translator.sampling.max_tokens, 2 * source_tokens + 32 + 8)


def _constrained_beam(
    units: list[_Unit], translator: Any, options: DocumentOptions
) -> dict[int, str]:
    """Lexically constrained beam search on the batch engine for the missing glossary terms."""
    batch = getattr(translator, "batch", None)
    if batch is None or not units:
        return {}
    requests, owners = [], []
    for unit in units:
        request = _request(
            unit, translator, options.target, unit.terms, max(1, options.second_pass_beam)
        )
        if request is not None:
            requests.append(request)
            owners.append(unit)
    if not requests:
        return {}
    methods = {}
    for unit, result in zip(owners, batch.run(requests)):
        text = _clean(unit.text, result.text)
        if not unit.missing_terms(text) and _plausible(text, unit.translation or "", unit):
            unit.translation = text
            methods[id(unit)] = "constrained-beam"
    return methods


def _force(unit: _Unit, translator: Any, options: DocumentOptions) -> tuple[str, str]:
    """The translation with the missing phrases forced in, and how it was done."""
    engine = getattr(translator, "engine", None)
    spaced = not unspaced(options.target)
    if engine is None:
        return append_missing(unit.translation or "", unit.missing(), spaced=spaced), "appended"
    from dataclasses import replace

    prompt = engine.render(_messages(translator, unit, options.target))
    stops = tuple(dict.fromkeys((*engine.prompt_format.stop_strings, *translator.sampling.stop)))
    phrases = [(phrase, _position(unit, phrase)) for phrase in unit.missing_terms()]
    text = forced_continuation(
        engine,
        prompt,
        unit.translation or "",
        phrases,
        replace(translator.sampling, max_tokens=_budget(translator, unit.text)),
        stops=stops,
        spaced=spaced,
    )
    return _clean(unit.text, text), "forced-continuation"


def _position(unit: _Unit, phrase: str) -> float:
    """Where in the source (0..1) the phrase's source sits: a placeholder, or a glossary term."""
    length = max(1, len(unit.text))
    at = unit.text.find(phrase)
    if at < 0:
        at = unit.source_positions.get(phrase, length)
    return at / length


# -- files and folders -------------------------------------------------------------------------


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (by device and inode, through links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path_in: Path, path_out: Path) -> None:
    """Refuse before any work: an output that is the input (same inode), or unwritable."""
    if same_file(path_in, path_out) or Path(path_in).resolve() == Path(path_out).resolve():
        raise OutputError(f"the output {path_out} is the input file; choose another output")
    try:
        from ..output import check_output as check
    except ImportError:  # pragma: no cover - older tree without the shared writer
        from ..cli.common import open_output_check

        open_output_check(path_out)
        return
    check(path_out, inputs=(path_in,))


def read_document(path: Path) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory (give -o DIR to translate a folder)") from None
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None


def write_document(path: Path, data: bytes, *, source: Path | None = None) -> None:
    """Write atomically, never over the input (the shared writer checks the inode again)."""
    try:
        from ..output import write_bytes
    except ImportError:  # pragma: no cover - older tree without the shared writer
        from ..atomic import atomic_open

        with atomic_open(path, "wb") as handle:
            handle.write(data)
        return
    write_bytes(path, data, inputs=(source,) if source is not None else ())


def translate_document(
    path_in: Path | str,
    path_out: Path | str | None,
    translator: SegmentTranslator,
    options: DocumentOptions,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[DocumentSummary, bytes]:
    """Translate one file; with ``path_out`` None the result is only returned.

    The output is written atomically after the whole document is translated: an interruption
    leaves no partial file (and the finished segments in the memory).
    """
    path_in = Path(path_in)
    fmt = format_for(path_in, options.format)
    if path_out is not None:
        check_output(path_in, Path(path_out))
    data = read_document(path_in)
    output, summary = translate_bytes(
        data, fmt, translator, options, name=str(path_in), progress=progress, cancel=cancel
    )
    if path_out is not None:
        write_document(Path(path_out), output, source=path_in)
        summary.output = str(path_out)
    return summary, output


@dataclass
class FolderSummary:
    documents: list[DocumentSummary] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        segments = sum(d.segments for d in self.documents)
        cached = sum(d.cached for d in self.documents)
        parts = [
            f"{len(self.documents)} documents, {segments} segments "
            f"({segments - cached} translated, {cached} from memory)",
            f"{self.seconds:.1f}s",
        ]
        required = sum(d.terms_required for d in self.documents)
        if required:
            first = sum(d.terms_hit_first for d in self.documents)
            final = sum(d.terms_hit_final for d in self.documents)
            parts.append(
                f"terms {_percent(first, required)} before, {_percent(final, required)} after"
            )
        if self.skipped:
            parts.append(f"{len(self.skipped)} files of other formats skipped")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": [d.as_dict() for d in self.documents],
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
        }


def folder_files(dir_in: Path, dir_out: Path, fmt: str | None) -> tuple[list[Path], list[str]]:
    """The documents under ``dir_in`` (relative paths), and the files of other formats."""
    documents, skipped = [], []
    out_resolved = dir_out.resolve()
    for root, dirs, files in os.walk(dir_in):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (Path(root) / d).resolve() != out_resolved
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            try:
                found = format_for(path)
            except UsageError:
                found = None
            if found is None or (fmt and found.name != format_for(path, fmt).name):
                skipped.append(str(path.relative_to(dir_in)))
                continue
            documents.append(path.relative_to(dir_in))
    return documents, skipped


def translate_folder(
    dir_in: Path | str,
    dir_out: Path | str,
    translator: SegmentTranslator,
    options: DocumentOptions,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    on_document: Callable[[DocumentSummary], None] | None = None,
) -> FolderSummary:
    """Translate every supported file under ``dir_in`` into the same place under ``dir_out``."""
    dir_in, dir_out = Path(dir_in), Path(dir_out)
    if not dir_in.is_dir():
        raise InputError(f"{dir_in} is not a folder")
    if dir_out.exists() and (same_file(dir_in, dir_out) or not dir_out.is_dir()):
        raise OutputError(
            f"the output folder {dir_out} is the input folder"
            if dir_out.is_dir()
            else f"{dir_out} is a file, not a folder"
        )
    documents, skipped = folder_files(dir_in, dir_out, options.format)
    if not documents:
        from .formats import supported

        raise InputError(f"no documents to translate in {dir_in} (supported: {supported()})")
    started = time.perf_counter()
    summary = FolderSummary(skipped=skipped)
    for relative in documents:
        target = dir_out / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {target.parent}: {exc.strerror}") from None
        document, _ = translate_document(
            dir_in / relative, target, translator, options, progress=progress, cancel=cancel
        )
        summary.documents.append(document)
        if on_document is not None:
            on_document(document)
    summary.seconds = time.perf_counter() - started
    return summary
