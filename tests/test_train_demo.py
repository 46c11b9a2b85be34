"""The demo corpus and the demo model shipped in bayling_local/demo/."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bayling_local.languages import resolve
from bayling_local.translate import build_instruction
from train import demo_corpus
from train.demo import DemoDataOptions, build_demo_data, conversations, eval_items
from train.demo_corpus import Scene, realize

DEMO_GGUF = Path(__file__).resolve().parent.parent / "bayling_local" / "demo" / "bayling-demo.gguf"


@pytest.mark.parametrize(
    ("scene", "expected"),
    [
        (
            Scene("man", "sees", "apple", "old", "white", "school", "morning"),
            {
                "en": "In the morning, the old man sees the white apple at school.",
                "zh": "早上，年老的男人在学校看见白色的苹果。",
                "de": "Am Morgen sieht der alte Mann den weißen Apfel in der Schule.",
                "fr": "Le matin, le vieil homme voit la pomme blanche à l'école.",
                "es": "Por la mañana, el hombre viejo ve la manzana blanca en la escuela.",
                "ja": "朝、年老いた男性は学校で白いりんごを見る。",
            },
        ),
        (
            Scene("girl", "finds", "bag", "tired", "yellow", "library"),
            {
                "en": "The tired girl finds the yellow bag in the library.",
                "zh": "疲惫的女孩在图书馆里找到黄色的包。",
                "de": "Das müde Mädchen findet die gelbe Tasche in der Bibliothek.",
                "fr": "La fille fatiguée trouve le sac jaune à la bibliothèque.",
                "es": "La niña cansada encuentra la bolsa amarilla en la biblioteca.",
                "ja": "疲れた女の子は図書館で黄色いかばんを見つける。",
            },
        ),
        (
            Scene("child", "sells", "car"),
            {
                "en": "The child sells the car.",
                "zh": "孩子卖汽车。",
                "de": "Das Kind verkauft das Auto.",
                "fr": "L'enfant vend la voiture.",
                "es": "El niño vende el coche.",
                "ja": "子供は車を売る。",
            },
        ),
    ],
)
def test_scenes_follow_each_languages_grammar(scene, expected):
    assert {lang: realize(scene, lang) for lang in demo_corpus.LANGS} == expected


def test_held_out_triples_never_reach_training():
    train, test = demo_corpus.corpus(3000, 150, seed=0)
    triple = {(r.texts["en"].split(" the ")[0], r.index) for r in train}  # a cheap sanity on sizes
    assert len(triple) == 3000 and len(test) == 150
    scenes = list(demo_corpus.scenes(3000, seed=0, test=False))
    held = list(demo_corpus.scenes(150, seed=0, test=True))
    train_triples = {(s.subject, s.verb, s.obj) for s in scenes}
    assert not train_triples & {(s.subject, s.verb, s.obj) for s in held}
    assert all(demo_corpus.held_out(s) for s in held) and not any(demo_corpus.held_out(s) for s in scenes)
    items = eval_items(test)
    assert len(Counter((i.source_lang, i.target_lang) for i in items)) == 30


def test_demo_conversations_use_bayling_instruction_exactly():
    train, _ = demo_corpus.corpus(300, 1, seed=2)
    sentences = {t for r in train for t in r.texts.values()}
    phrases = {t for r in demo_corpus.phrase_records() for t in r.texts.values()}
    texts = sentences | phrases
    examples = conversations(train, DemoDataOptions(seed=2))
    replies = [m.content for e in examples for m in e.messages if m.role == "assistant"]
    assert sum(reply in sentences for reply in replies) == 300  # every scene once
    assert 0.1 < sum(reply in phrases for reply in replies) / len(replies) < 0.3
    for example in examples:
        for user, reply in zip(example.messages[::2], example.messages[1::2]):
            assert reply.content in texts
            for lang in demo_corpus.LANGS:
                for ilang in ("en", "zh"):
                    prefix = build_instruction("", resolve(lang), instruction_lang=ilang)
                    if user.content.startswith(prefix) and user.content[len(prefix) :] in texts:
                        break
                else:
                    continue
                break
            else:
                pytest.fail(f"not BayLing's instruction: {user.content!r}")


def test_build_demo_data_writes_train_and_test(tmp_path):
    summary = build_demo_data(tmp_path / "train.jsonl", tmp_path / "test.jsonl", DemoDataOptions(records=200, test_records=30))
    assert summary.total == len((tmp_path / "train.jsonl").read_text().splitlines())
    assert len((tmp_path / "test.jsonl").read_text().splitlines()) == 30
    item = json.loads((tmp_path / "test.jsonl").read_text().splitlines()[0])
    assert set(item) == {"source_lang", "target_lang", "source", "reference", "instruction_lang"}


# --- the shipped model ----------------------------------------------------------------------

# Phrases the shipped model translates exactly (bayling_local/demo/README.md).
PHRASES = [
    ("the old cat", "zh", "年老的猫"),
    ("the old cat", "de", "die alte Katze"),
    ("the old cat", "ja", "年老いた猫"),
    ("in the morning", "de", "am Morgen"),
]

# Held-out sentences (subject-verb-object triples never seen in training). The shipped model
# gets their frame right but not their verb and object yet: the goal, not yet reached.
HELD_OUT = [
    ("The cat sees the ball.", "de", "Die Katze sieht den Ball."),
]


@pytest.fixture(scope="module")
def demo_engine():
    from bayling_local.engine import EngineConfig, load_engine

    if not DEMO_GGUF.exists():
        pytest.fail(f"{DEMO_GGUF} is missing: rebuild it with `bayling-train demo`")
    with load_engine(EngineConfig(model_path=DEMO_GGUF, threads=1)) as engine:
        yield engine


def test_demo_model_is_small_and_says_what_it_is(demo_engine):
    assert DEMO_GGUF.stat().st_size <= 15 * 1024 * 1024
    assert demo_engine.prompt_format.name == "bayling"
    assert "demo" in demo_engine.model_name.lower()


def _translate(engine, source: str, target: str) -> str:
    from bayling_local.engine import SamplingConfig
    from bayling_local.translate import translation_messages

    messages = translation_messages(source, resolve(target))
    return engine.chat(messages, SamplingConfig(max_tokens=64, temperature=0.0)).result().strip()


@pytest.mark.parametrize(("source", "target", "expected"), PHRASES)
def test_demo_model_translates_its_phrases(demo_engine, source, target, expected):
    assert _translate(demo_engine, source, target) == expected


@pytest.mark.xfail(reason="the demo model has not learned its verbs and objects yet (issue 4)", strict=False)
@pytest.mark.parametrize(("source", "target", "expected"), HELD_OUT)
def test_demo_model_translates_held_out_sentences(demo_engine, source, target, expected):
    assert _translate(demo_engine, source, target) == expected
