"""The demo model's corpus: template sentences in five languages (six in the lexicon) from a small lexicon.

A *scene* -- who (with an optional adjective), does what, to which object (with an optional
colour), where and when -- is written out in English, Chinese, German, French, Spanish and
Japanese with each language's own grammar (see ``lexicon.yaml``). Every scene gives one
multi-way parallel record, which the ordinary data builders of :mod:`train.datagen` turn into
BayLing-style instructions.

To show that the model translates rather than remembers, a fixed share of subject-verb-object
triples never appears in training: the held-out test set is made only of scenes with such
triples, so each test sentence is a combination the model has not seen.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from ..datagen import ParallelRecord

# The languages the demo model learns. The lexicon and the writers also cover Spanish; each
# language more makes the small model's training longer (20 directions instead of 30).
LANGS: tuple[str, ...] = ("en", "zh", "de", "fr", "ja")
HELD_OUT_SHARE = 0.12  # of subject-verb-object triples


@dataclass(frozen=True)
class Scene:
    subject: str
    verb: str
    obj: str
    adjective: str | None = None
    colour: str | None = None
    place: str | None = None
    time: str | None = None


@cache
def lexicon() -> dict[str, dict[str, dict[str, Any]]]:
    text = resources.files(__package__).joinpath("lexicon.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def held_out(scene: Scene) -> bool:
    """Whether the scene's subject-verb-object triple is reserved for testing (stable hash)."""
    key = f"{scene.subject}|{scene.verb}|{scene.obj}".encode()
    return zlib.crc32(key) % 1000 < HELD_OUT_SHARE * 1000


def random_scene(rng: random.Random) -> Scene:
    lex = lexicon()

    def pick(kind: str, chance: float = 1.0) -> str | None:
        return rng.choice(sorted(lex[kind])) if rng.random() < chance else None

    return Scene(
        subject=pick("subjects"),  # type: ignore[arg-type]
        verb=pick("verbs"),  # type: ignore[arg-type]
        obj=pick("objects"),  # type: ignore[arg-type]
        adjective=pick("adjectives", 0.5),
        colour=pick("colours", 0.5),
        place=pick("places", 0.7),
        time=pick("times", 0.3),
    )


# --- noun phrases ------------------------------------------------------------------------------

_DE_ARTICLE = {
    "nom": {"m": "der", "f": "die", "n": "das"},
    "acc": {"m": "den", "f": "die", "n": "das"},
}


def subject_phrase(lang: str, key: str, adjective: str | None, sep: str = "") -> str:
    """The subject (nominative, definite), e.g. "the old man", "le vieil homme", "年老的男人"."""
    lex = lexicon()
    entry = lex["subjects"][key]
    adj = lex["adjectives"][adjective][lang] if adjective else None
    if lang == "en":
        return " ".join(filter(None, ["the", adj, entry["en"]]))
    if lang in ("zh", "ja"):
        return sep.join(filter(None, [adj, entry[lang]]))
    noun, gender = entry[lang]
    if lang == "de":
        return " ".join(filter(None, [_DE_ARTICLE["nom"][gender], adj, noun]))
    if lang == "es":
        form = adj and adj[1 if gender == "f" else 0]
        return " ".join(filter(None, ["la" if gender == "f" else "el", noun, form]))
    vowel = bool(entry.get("vowel"))
    before = after = None
    if adj:
        masculine, feminine, before_vowel = adj["forms"]
        form = feminine if gender == "f" else (before_vowel if vowel and adj["pre"] else masculine)
        before, after = (form, None) if adj["pre"] else (None, form)
    article = "la" if gender == "f" else "le"
    head = (
        f"l'{noun}" if vowel and before is None else " ".join(filter(None, [article, before, noun]))
    )
    return " ".join(filter(None, [head, after]))


def object_phrase(
    lang: str, key: str, colour: str | None, *, case: str = "acc", sep: str = ""
) -> str:
    """The object, e.g. "the red apple", "den roten Apfel" (accusative) / "der rote Apfel"."""
    lex = lexicon()
    entry = lex["objects"][key]
    col = lex["colours"][colour][lang] if colour else None
    if lang == "en":
        return " ".join(filter(None, ["the", col, entry["en"]]))
    if lang in ("zh", "ja"):
        return sep.join(filter(None, [col, entry[lang]]))
    noun, gender = entry[lang]
    if lang == "de":
        ending = "en" if case == "acc" and gender == "m" else "e"
        return " ".join(filter(None, [_DE_ARTICLE[case][gender], col and col + ending, noun]))
    form = col and col[1 if gender == "f" else 0]
    article = (
        ("la" if gender == "f" else "le") if lang == "fr" else ("la" if gender == "f" else "el")
    )
    return " ".join(filter(None, [article, noun, form]))


# --- one writer per language -------------------------------------------------------------------


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _romance_or_english(s: Scene, lang: str) -> str:
    """English, French and Spanish share the order [time,] subject verb object [place]."""
    lex = lexicon()
    words = [
        subject_phrase(lang, s.subject, s.adjective),
        lex["verbs"][s.verb][lang],
        object_phrase(lang, s.obj, s.colour),
    ]
    if s.place:
        words.append(lex["places"][s.place][lang])
    sentence = " ".join(words)
    if s.time:
        sentence = lex["times"][s.time][lang] + " " + sentence
    return _capitalize(sentence) + "."


def _de(s: Scene) -> str:
    lex = lexicon()
    subject = subject_phrase("de", s.subject, s.adjective)
    obj = object_phrase("de", s.obj, s.colour)
    verb = lex["verbs"][s.verb]["de"]
    place = [lex["places"][s.place]["de"]] if s.place else []
    if s.time:  # verb second: the fronted time pushes the subject after the verb
        words = [lex["times"][s.time]["de"], verb, subject, obj, *place]
    else:
        words = [subject, verb, obj, *place]
    return _capitalize(" ".join(words)) + "."


def _ja(s: Scene, sep: str = "") -> str:
    lex = lexicon()
    parts = [lex["times"][s.time]["ja"]] if s.time else []
    parts += [subject_phrase("ja", s.subject, s.adjective, sep), "は"]
    if s.place:
        parts.append(lex["places"][s.place]["ja"])
    parts += [object_phrase("ja", s.obj, s.colour, sep=sep), "を", lex["verbs"][s.verb]["ja"], "。"]
    return sep.join(parts)


def _zh(s: Scene, sep: str = "") -> str:
    lex = lexicon()
    parts = [lex["times"][s.time]["zh"]] if s.time else []
    parts.append(subject_phrase("zh", s.subject, s.adjective, sep))
    if s.place:
        parts.append(lex["places"][s.place]["zh"])
    parts += [lex["verbs"][s.verb]["zh"], object_phrase("zh", s.obj, s.colour, sep=sep), "。"]
    return sep.join(parts)


def realize(scene: Scene, lang: str, sep: str = "") -> str:
    """The scene as one sentence in ``lang``; ``sep`` marks the lexicon units of Chinese and
    Japanese (for training the tokenizer, see :func:`tokenizer_text`)."""
    if lang in ("en", "fr", "es"):
        return _romance_or_english(scene, lang)
    if lang == "de":
        return _de(scene)
    return (_ja if lang == "ja" else _zh)(scene, sep)


def record(scene: Scene, index: int = 0, corpus: int = 0) -> ParallelRecord:
    return ParallelRecord({lang: realize(scene, lang) for lang in LANGS}, corpus, index)


def scenes(n: int, *, seed: int, test: bool) -> Iterator[Scene]:
    """``n`` distinct scenes, all from the training side or all held out."""
    rng = random.Random(f"demo-corpus:{seed}:{'test' if test else 'train'}")
    seen: set[Scene] = set()
    attempts = 0
    while len(seen) < n:
        attempts += 1
        if attempts > 50 * n + 10_000:
            raise ValueError(
                f"the lexicon does not have {n} distinct {'test' if test else 'training'} scenes"
            )
        scene = random_scene(rng)
        if held_out(scene) == test and scene not in seen:
            seen.add(scene)
            yield scene


def corpus(
    n_train: int, n_test: int, *, seed: int = 0
) -> tuple[list[ParallelRecord], list[ParallelRecord]]:
    """Training records and held-out test records (disjoint subject-verb-object triples)."""
    train = [record(s, i) for i, s in enumerate(scenes(n_train, seed=seed, test=False))]
    test = [record(s, i, corpus=1) for i, s in enumerate(scenes(n_test, seed=seed, test=True))]
    return train, test


def new_sentences(n: int, *, n_train: int, seed: int = 0) -> list[ParallelRecord]:
    """``n`` sentences that are not in the training set but whose subject-verb-object triple is.

    The easier of the two test sets: every sentence is a combination of time, adjective,
    subject, verb, colour, object and place that training never showed, but its core triple
    occurs in training with other modifiers.
    """
    train = set(scenes(n_train, seed=seed, test=False))
    triples = {(s.subject, s.verb, s.obj) for s in train}
    rng = random.Random(f"demo-corpus:{seed}:new")
    found: dict[Scene, None] = {}
    for _ in range(50 * n + 10_000):
        scene = random_scene(rng)
        if (scene.subject, scene.verb, scene.obj) in triples and scene not in train:
            found[scene] = None
            if len(found) == n:
                break
    if len(found) < n:
        raise ValueError(f"the lexicon does not have {n} new sentences beside the training set")
    return [record(s, i, corpus=3) for i, s in enumerate(found)]


# --- phrases: the lexicon itself, as short translation pairs --------------------------------


def phrase_records(corpus: int = 2) -> list[ParallelRecord]:
    """Every noun phrase (with and without its modifier), verb, place and time, in every language of LANGS.

    Dictionary-like pairs teach the word mapping directly; they contain no subject-verb-object
    triple, so nothing of the held-out test set leaks through them.
    """
    lex = lexicon()
    rows: list[dict[str, str]] = []
    for key in lex["subjects"]:
        for adjective in [None, *lex["adjectives"]]:
            rows.append({lang: subject_phrase(lang, key, adjective) for lang in LANGS})
    for key in lex["objects"]:
        for colour in [None, *lex["colours"]]:
            rows.append({lang: object_phrase(lang, key, colour, case="nom") for lang in LANGS})
    for kind in ("verbs", "places"):
        rows += [{lang: entry[lang] for lang in LANGS} for entry in lex[kind].values()]
    for entry in lex["times"].values():
        rows.append({lang: entry[lang].rstrip(",，、") for lang in LANGS})
        for lang in set(LANGS) - {"zh", "ja"}:  # "Today," starts a sentence; "today" is the word
            rows[-1][lang] = rows[-1][lang][:1].lower() + rows[-1][lang][1:]
    return [ParallelRecord(row, corpus, i) for i, row in enumerate(rows)]


UNIT_SEPARATOR = "\t"


def tokenizer_text(extra: Sequence[str] = (), *, n: int = 6000, seed: int = 0) -> list[str]:
    """Text to train the demo's SentencePiece vocabulary on, lexicon units marked.

    Chinese and Japanese are written without spaces, so SentencePiece would otherwise learn
    pieces that straddle two words ("ボールを欲しがる"), and a new combination of words would
    need a piece the model never produced. With the units marked (``UNIT_SEPARATOR``, the
    trainer's pre-tokenization delimiter) every piece stays inside one word, which keeps the
    vocabulary compositional. Each sentence also appears after a separator, the way a reply
    starts after a newline (no leading space). Only training-side scenes are used.
    """
    rng = random.Random(f"demo-tokenizer:{seed}")
    lines: list[str] = list(extra)
    while len(lines) < n + len(extra):
        scene = random_scene(rng)
        if held_out(scene):
            continue
        for lang in LANGS:
            text = realize(scene, lang, UNIT_SEPARATOR)
            lines += [text, UNIT_SEPARATOR + text]
    for record in phrase_records():
        for lang in LANGS:
            lines += [record.texts[lang], UNIT_SEPARATOR + record.texts[lang]]
    return lines
