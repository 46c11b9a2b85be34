"""BayLing-style instruction data from parallel text (field guide, sections 1 and 2).

* :func:`interactive` -- BayLing 1's interactive translation: a conversation that opens with a
  translation request and goes on with refinement turns. Every answer comes from the data:
  required words are taken from the reference itself, a third language and the way back exist
  only where the corpus is multi-way parallel, "the next sentence" is the corpus's next line,
  and joining two answers is their concatenation. No turn asks for what the data cannot answer.
* :func:`crosslingual` -- BayLing 2's cross-lingual instructions: the request in one language,
  the answer in another, spread evenly over every direction the data holds.
* :func:`mix` -- Chinese / English / cross-lingual sets in a given ratio (BayLing 2's published
  43.2 / 26.2 / 30.6 by default).
* :func:`finalize` -- length filter, de-duplication and a seeded shuffle, with a summary.

All randomness comes from one seeded :class:`random.Random`, so a seed fixes the output.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path

from bayling_local.errors import InputError, UsageError
from bayling_local.languages import Language, resolve
from bayling_local.prompts import Message

from . import instructions as ins
from .conversations import Example

# Scripts written without spaces between words: constraints are character n-grams there.
_UNSPACED_SCRIPTS = {"Hans", "Hant", "Jpan", "Kore", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"}
DEFAULT_RATIO: dict[str, float] = {"zh": 43.2, "en": 26.2, "cross": 30.6}


@dataclass(frozen=True)
class ParallelRecord:
    """One segment in several languages (codes from the language table)."""

    texts: Mapping[str, str]
    corpus: int = 0  # which input it came from: "next sentence" turns stay inside one corpus
    index: int = 0  # its line in that corpus


# --- reading parallel text ------------------------------------------------------------------


def _lang_code(name: str, where: str) -> str:
    try:
        return resolve(name.strip()).code
    except UsageError as exc:
        raise UsageError(f"{where}: {exc.message}") from None


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def read_parallel(spec: str, corpus: int = 0) -> list[ParallelRecord]:
    """Parallel text from ``LANG=FILE,LANG=FILE[,...]`` (line-aligned) or a JSONL file.

    A JSONL file holds one object per segment mapping language names or codes to text, e.g.
    ``{"en": "...", "zh": "...", "ja": "..."}``; a segment may miss some languages.
    """
    if "=" not in spec:
        return _read_parallel_jsonl(Path(spec), corpus)
    columns: dict[str, list[str]] = {}
    for part in spec.split(","):
        name, sep, file = part.partition("=")
        if not sep or not name.strip() or not file.strip():
            raise UsageError(f"bad parallel spec {part!r}: expected LANG=FILE")
        code = _lang_code(name, f"parallel spec {part!r}")
        if code in columns:
            raise UsageError(f"parallel spec {spec!r} names {code} twice")
        columns[code] = _read_lines(Path(file.strip()))
    if len(columns) < 2:
        raise UsageError(f"parallel spec {spec!r} needs at least two languages")
    lengths = {code: len(lines) for code, lines in columns.items()}
    if len(set(lengths.values())) != 1:
        detail = ", ".join(f"{code}: {n}" for code, n in lengths.items())
        raise InputError(f"the files of {spec!r} are not line-aligned ({detail} lines)")
    records = []
    for index, row in enumerate(zip(*columns.values())):
        texts = {code: text.strip() for code, text in zip(columns, row) if text.strip()}
        records.append(ParallelRecord(texts, corpus, index))
    return records


def _read_parallel_jsonl(path: Path, corpus: int) -> list[ParallelRecord]:
    records = []
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise InputError(f"{path}:{number}: expected an object of language -> text")
        texts = {_lang_code(k, f"{path}:{number}"): v.strip() for k, v in obj.items() if v.strip()}
        records.append(ParallelRecord(texts, corpus, number - 1))
    return records


# --- honest constraints ---------------------------------------------------------------------


def _unspaced(lang: Language) -> bool:
    return lang.script in _UNSPACED_SCRIPTS


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LNM"


def constraint_words(
    reference: str, lang: Language, rng: random.Random, *, most: int = 3
) -> list[str]:
    """Words the reference contains, in its order: BayLing's lexical constraints.

    Spaced scripts give whole words (of three letters or more); unspaced ones give runs of two
    to four characters, as BayLing's constrained test sets do. Empty when nothing qualifies.
    """
    if _unspaced(lang):
        runs, current = [], ""
        for char in reference + " ":
            if _is_word_char(char):
                current += char
            elif current:
                runs.append(current)
                current = ""
        candidates = []
        for run in runs:
            if len(run) >= 2:
                size = min(len(run), rng.randint(2, 4))
                start = rng.randint(0, len(run) - size)
                candidates.append(run[start : start + size])
    else:
        candidates = []
        for token in reference.split():
            word = token.strip("".join(c for c in token if not _is_word_char(c)))
            if len(word) >= 3 and all(_is_word_char(c) or c in "-'’" for c in word):
                candidates.append(word)
    candidates = list(dict.fromkeys(candidates))
    if not candidates:
        return []
    chosen = rng.sample(range(len(candidates)), min(len(candidates), rng.randint(1, most)))
    return [candidates[i] for i in sorted(chosen)]


def join_texts(first: str, second: str, lang: Language) -> str:
    """Two sentences as one passage: no space between them in unspaced scripts."""
    return first + second if _unspaced(lang) else f"{first} {second}"


# --- builders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    """Knobs shared by the builders."""

    seed: int = 0
    instruction_langs: Mapping[str, float] = field(default_factory=lambda: {"en": 0.5, "zh": 0.5})
    wording: ins.Wording = "varied"
    constraint_rate: float = 0.15  # share of first turns that carry required words
    max_turns: int = 4  # user turns per interactive conversation
    multi_turn_rate: float = 1.0  # share of interactive conversations with follow-up turns
    directions_per_record: int = 1  # cross-lingual examples drawn from one record


def _instruction_lang(
    options: BuildOptions, rng: random.Random, avoid: str | None = None
) -> ins.InstructionLang:
    langs = [(lang, w) for lang, w in options.instruction_langs.items() if w > 0]
    if avoid is not None and len(langs) > 1:
        langs = [(lang, w) for lang, w in langs if lang != avoid] or langs
    names, weights = zip(*langs)
    return rng.choices(names, weights=weights)[0]  # type: ignore[return-value]


def _languages(codes: Iterable[str]) -> dict[str, Language]:
    return {code: resolve(code) for code in codes}


def _translation_turn(record, source, target, ilang, langs, options, rng) -> list[Message]:
    """A translation request from ``source`` to ``target`` (with given words to include at
    ``options.constraint_rate``) and the record's own ``target`` text as the answer."""
    words = (
        constraint_words(record.texts[target], langs[target], rng)
        if rng.random() < options.constraint_rate
        else []
    )
    request = ins.translate_request(
        record.texts[source], langs[source], langs[target],
        instruction_lang=ilang, rng=rng, wording=options.wording, constraints=words,
    )  # fmt: skip
    return [Message("user", request), Message("assistant", record.texts[target])]


def interactive(records: Sequence[ParallelRecord], options: BuildOptions) -> list[Example]:
    """One interactive-translation conversation per record that has two languages or more."""
    rng = random.Random(f"interactive:{options.seed}")
    langs = _languages({code for r in records for code in r.texts})
    following = {(r.corpus, r.index): r for r in records}
    examples = []
    for record in records:
        if len(record.texts) < 2:
            continue
        source, target = rng.sample(sorted(record.texts), 2)
        ilang = _instruction_lang(options, rng)
        messages = _translation_turn(record, source, target, ilang, langs, options, rng)
        if rng.random() < options.multi_turn_rate:
            _follow_ups(messages, record, source, target, ilang, langs, following, options, rng)
        examples.append(
            Example(
                messages,
                kind="interactive",
                lang=target,
                source_lang=source,
                instruction_lang=ilang,
            )
        )
    return examples


def _follow_ups(
    messages: list[Message],
    record: ParallelRecord,
    source: str,
    target: str,
    ilang: ins.InstructionLang,
    langs: Mapping[str, Language],
    following: Mapping[tuple[int, int], ParallelRecord],
    options: BuildOptions,
    rng: random.Random,
) -> None:
    """Refinement turns whose answers the data holds; the current answer is in ``current``."""
    current, used, went_back, last_was_next = target, {source, target}, False, False
    turns = rng.randint(1, max(1, options.max_turns - 1))
    for _ in range(turns):
        moves = []
        unused = sorted(set(record.texts) - used)
        if unused:
            moves.append("third")
        if not went_back and current != source:
            moves.append("back")
        nxt = following.get((record.corpus, record.index + 1))
        if nxt is not None and source in nxt.texts and current in nxt.texts and current != source:
            moves.append("next")
        if last_was_next:
            moves.append("join")
        if not moves:
            return
        move = rng.choice(moves)
        last_was_next = False
        if move == "third":
            lang = rng.choice(unused)
            words = (
                constraint_words(record.texts[lang], langs[lang], rng) if rng.random() < 0.3 else []
            )
            ask = ins.third_language_request(
                langs[lang], instruction_lang=ilang, rng=rng, constraints=words
            )
            answer, current = record.texts[lang], lang
            used.add(lang)
        elif move == "back":
            ask = ins.back_request(langs[source], instruction_lang=ilang, rng=rng)
            answer, current, went_back = record.texts[source], source, True
        elif move == "next":
            assert nxt is not None
            ask = ins.next_sentence_request(
                nxt.texts[source], langs[current], instruction_lang=ilang, rng=rng
            )
            previous_answer, answer = messages[-1].content, nxt.texts[current]
            record, last_was_next = nxt, True
            used = {source, current}
        else:  # join the last two answers, both in the current language
            ask = ins.join_request(instruction_lang=ilang, rng=rng)
            answer = join_texts(previous_answer, messages[-1].content, langs[current])
        messages += [Message("user", ask), Message("assistant", answer)]
        if move == "join":  # the answer now spans two records: no single reference follows it
            return


def crosslingual(records: Sequence[ParallelRecord], options: BuildOptions) -> list[Example]:
    """Single-turn requests whose answer is in another language than the instruction.

    Directions are dealt round-robin so every direction the data holds gets its share, and the
    instruction language differs from the answer's language wherever it can.
    """
    rng = random.Random(f"crosslingual:{options.seed}")
    langs = _languages({code for r in records for code in r.texts})
    served: Counter[tuple[str, str]] = Counter()
    examples = []
    for record in records:
        directions = list(permutations(sorted(record.texts), 2))
        if not directions:
            continue
        rng.shuffle(directions)
        directions.sort(key=lambda d: served[d])  # least-served first; ties in shuffled order
        for source, target in directions[: options.directions_per_record]:
            served[(source, target)] += 1
            ilang = _instruction_lang(options, rng, avoid=target)
            messages = _translation_turn(record, source, target, ilang, langs, options, rng)
            examples.append(
                Example(
                    messages,
                    kind="crosslingual",
                    lang=target,
                    source_lang=source,
                    instruction_lang=ilang,
                )
            )
    return examples


# --- mixing, filtering, summary ------------------------------------------------------------


def parse_ratio(text: str, names: Sequence[str] = ("zh", "en", "cross")) -> dict[str, float]:
    """``43.2/26.2/30.6`` or ``zh=43.2,en=26.2,cross=30.6`` into shares per category."""
    try:
        if "=" in text:
            pairs = [part.split("=", 1) for part in text.split(",")]
            ratio = {name.strip(): float(value) for name, value in pairs}
        else:
            values = [float(v) for v in text.replace(",", "/").split("/")]
            if len(values) != len(names):
                raise ValueError
            ratio = dict(zip(names, values))
    except ValueError:
        raise UsageError(
            f"bad ratio {text!r}: expected e.g. 43.2/26.2/30.6 or zh=43.2,en=26.2,cross=30.6"
        ) from None
    unknown = set(ratio) - set(names)
    if unknown:
        raise UsageError(
            f"ratio names unknown categories {sorted(unknown)}; known: {', '.join(names)}"
        )
    if any(v < 0 for v in ratio.values()) or sum(ratio.values()) <= 0:
        raise UsageError(f"bad ratio {text!r}: shares must be non-negative and not all zero")
    return ratio


def mix(
    categories: Mapping[str, Sequence[Example]],
    ratio: Mapping[str, float],
    *,
    total: int | None = None,
    seed: int = 0,
) -> list[Example]:
    """Draw from each category in proportion, without repeating an example.

    Without ``total`` the mix is as large as the scarcest category allows; a ``total`` that
    would need more examples than a category has is refused with the largest possible total.
    """
    weights = {name: share for name, share in ratio.items() if share > 0}
    missing = [name for name in weights if not categories.get(name)]
    if missing:
        raise UsageError(
            f"the ratio gives a share to {', '.join(missing)} but no examples of it were given"
        )
    whole = sum(weights.values())
    largest = int(min(len(categories[name]) * whole / share for name, share in weights.items()))
    if total is None:
        total = largest
    elif total > largest:
        raise UsageError(
            f"--total {total} needs more examples than given; the largest mix at this ratio is {largest}"
        )
    rng = random.Random(f"mix:{seed}")
    counts = _apportion(total, weights)
    chosen: list[Example] = []
    for name, count in counts.items():
        chosen += rng.sample(list(categories[name]), count)
    rng.shuffle(chosen)
    return chosen


def _apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Integer counts that sum to ``total`` (largest remainders)."""
    whole = sum(weights.values())
    exact = {name: total * w / whole for name, w in weights.items()}
    counts = {name: int(x) for name, x in exact.items()}
    for name in sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)[
        : total - sum(counts.values())
    ]:
        counts[name] += 1
    return counts


@dataclass
class Summary:
    """What a builder wrote: counts by type and language, and what it dropped."""

    total: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_lang: Counter[str] = field(default_factory=Counter)
    by_direction: Counter[str] = field(default_factory=Counter)
    by_instruction_lang: Counter[str] = field(default_factory=Counter)
    turns: Counter[int] = field(default_factory=Counter)
    dropped_duplicates: int = 0
    dropped_length: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "by_type": dict(sorted(self.by_type.items())),
            "by_lang": dict(sorted(self.by_lang.items())),
            "by_direction": dict(sorted(self.by_direction.items())),
            "by_instruction_lang": dict(sorted(self.by_instruction_lang.items())),
            "user_turns": {str(k): v for k, v in sorted(self.turns.items())},
            "dropped_duplicates": self.dropped_duplicates,
            "dropped_length": self.dropped_length,
        }

    def text(self) -> str:
        def fmt(counter: Counter) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "-"

        return "\n".join(
            [
                f"{self.total} conversations "
                f"(dropped {self.dropped_duplicates} duplicates, {self.dropped_length} by length)",
                f"  by type: {fmt(self.by_type)}",
                f"  by response language: {fmt(self.by_lang)}",
                f"  by instruction language: {fmt(self.by_instruction_lang)}",
                f"  by user turns: {fmt(self.turns)}",
            ]
        )


def finalize(
    examples: Iterable[Example],
    *,
    seed: int = 0,
    min_chars: int = 1,
    max_chars: int = 8000,
    shuffle: bool = True,
) -> tuple[list[Example], Summary]:
    """Drop too short / too long conversations and duplicates, shuffle, and count."""
    summary = Summary()
    seen: set[str] = set()
    kept = []
    for example in examples:
        if any(not m.content.strip() for m in example.messages if m.role != "system") or not (
            min_chars <= example.n_chars() <= max_chars
        ):
            summary.dropped_length += 1
            continue
        key = example.key()
        if key in seen:
            summary.dropped_duplicates += 1
            continue
        seen.add(key)
        kept.append(example)
    if shuffle:
        random.Random(f"finalize:{seed}").shuffle(kept)
    for example in kept:
        summary.total += 1
        summary.by_type[example.kind] += 1
        summary.by_lang[example.lang or "?"] += 1
        if example.source_lang and example.lang:
            summary.by_direction[f"{example.source_lang}-{example.lang}"] += 1
        summary.by_instruction_lang[example.instruction_lang or "?"] += 1
        summary.turns[sum(m.role == "user" for m in example.messages)] += 1
    return kept, summary
