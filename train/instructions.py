"""Instruction wordings for the data builders, in English and Chinese.

The first wording of each list is BayLing's own evaluation instruction, built by
:func:`bayling_local.translate.build_instruction` so that training and the app agree byte for
byte; the others vary the phrasing the way a person would. Follow-up wordings belong to the
interactive-translation turns: each asks for something whose correct answer the parallel data
holds (a third language, the way back, the next sentence, required words).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from bayling_local.languages import Language
from bayling_local.translate import build_instruction

InstructionLang = Literal["en", "zh"]
Wording = Literal["canonical", "varied"]

# {source} is the text, {target} / {source_lang} language names in the instruction's language.
_TRANSLATE: dict[str, tuple[str, ...]] = {
    "en": (
        "Translate the following sentence into {target}: {source}",
        "Translate this into {target}:\n{source}",
        "What is the {target} translation of this sentence? {source}",
        "Please translate from {source_lang} to {target}: {source}",
        "{source}\n\nTranslate the text above into {target}.",
        "Render this {source_lang} text in {target}: {source}",
        "How do you say this in {target}? {source}",
    ),
    "zh": (
        "把下面这句话翻译成{target}：{source}",
        "请将以下{source_lang}句子翻译成{target}：{source}",
        "{source}\n\n请把上面的文字翻译成{target}。",
        "这句话用{target}怎么说？{source}",
        "请把这句话译为{target}：\n{source}",
    ),
}

# Follow-up turns of an interactive translation; "it" is the previous answer.
_THIRD_LANGUAGE: dict[str, tuple[str, ...]] = {
    "en": (
        "Now translate it into {target}.",
        "Can you also give me the {target} version?",
        "Translate your translation into {target}, please.",
    ),
    "zh": ("再把它翻译成{target}。", "能再给出{target}版本吗？", "请把你的译文翻译成{target}。"),
}
_BACK: dict[str, tuple[str, ...]] = {
    "en": (
        "Translate it back into {target}.",
        "Now translate your answer back into {target} so I can compare.",
    ),
    "zh": ("把它翻译回{target}。", "请把译文再译回{target}，我想对照一下。"),
}
_NEXT: dict[str, tuple[str, ...]] = {
    "en": (
        "Next sentence, also into {target}: {source}",
        "And this one: {source}",
        "Please continue with the next sentence: {source}",
    ),
    "zh": (
        "下一句，也翻译成{target}：{source}",
        "还有这句：{source}",
        "请接着翻译下一句：{source}",
    ),
}
_JOIN: dict[str, tuple[str, ...]] = {
    "en": (
        "Put the two translations together as one passage.",
        "Combine both translations into one text.",
    ),
    "zh": ("把这两句译文合在一起，组成一段话。", "请把两句译文连起来。"),
}
_CONSTRAINT_PREFIX = {"en": "\nMake sure to include these words: ", "zh": "\n确保包含这些词："}


def language_name(lang: Language, instruction_lang: InstructionLang) -> str:
    """The name of ``lang`` as an instruction in ``instruction_lang`` writes it."""
    return lang.chinese if instruction_lang == "zh" else lang.name


def constraint_suffix(words: Sequence[str], instruction_lang: InstructionLang) -> str:
    """BayLing's constrained-translation line, or nothing when there are no words."""
    return _CONSTRAINT_PREFIX[instruction_lang] + ", ".join(words) if words else ""


def translate_request(
    source: str,
    source_lang: Language,
    target: Language,
    *,
    instruction_lang: InstructionLang,
    rng: random.Random,
    wording: Wording = "varied",
    constraints: Sequence[str] = (),
    canonical_share: float = 0.5,
) -> str:
    """A first-turn translation request; BayLing's own wording with ``canonical_share``."""
    if wording == "canonical" or rng.random() < canonical_share:
        return build_instruction(
            source, target, instruction_lang=instruction_lang, constraints=constraints
        )
    template = rng.choice(_TRANSLATE[instruction_lang])
    text = template.format(
        source=source,
        target=language_name(target, instruction_lang),
        source_lang=language_name(source_lang, instruction_lang),
    )
    return text + constraint_suffix(constraints, instruction_lang)


def third_language_request(
    target: Language,
    *,
    instruction_lang: InstructionLang,
    rng: random.Random,
    constraints: Sequence[str] = (),
) -> str:
    text = rng.choice(_THIRD_LANGUAGE[instruction_lang]).format(
        target=language_name(target, instruction_lang)
    )
    return text + constraint_suffix(constraints, instruction_lang)


def back_request(target: Language, *, instruction_lang: InstructionLang, rng: random.Random) -> str:
    return rng.choice(_BACK[instruction_lang]).format(
        target=language_name(target, instruction_lang)
    )


def next_sentence_request(
    source: str, target: Language, *, instruction_lang: InstructionLang, rng: random.Random
) -> str:
    return rng.choice(_NEXT[instruction_lang]).format(
        source=source, target=language_name(target, instruction_lang)
    )


def join_request(*, instruction_lang: InstructionLang, rng: random.Random) -> str:
    return rng.choice(_JOIN[instruction_lang])
