"""Interactive translation without a model: versions, branches, restore, conversations, diffs."""

from __future__ import annotations

import pytest

from bayling_local.errors import UsageError
from bayling_local.history import History
from bayling_local.interactive import InteractiveSession, diff_tokens, diff_words, status_of
from bayling_local.languages import resolve
from bayling_local.prompts import Message

SOURCE = "梅西获得了金球奖。"


def make_session() -> InteractiveSession:
    return InteractiveSession(source_text=SOURCE, target=resolve("en"), source=resolve("zh"))


def test_diff_tokens_split_words_and_cjk_characters_and_round_trip():
    assert diff_tokens("Messi won the Ballon d'Or.") == [
        "Messi",
        " ",
        "won",
        " ",
        "the",
        " ",
        "Ballon",
        " ",
        "d",
        "'",
        "Or",
        ".",
    ]
    assert diff_tokens("梅西获得了") == ["梅", "西", "获", "得", "了"]
    assert diff_tokens("BayLing 百聆 2") == ["BayLing", " ", "百", "聆", " ", "2"]
    text = "Größe  naïve\tÜber 東京タワー 서울!"
    assert "".join(diff_tokens(text)) == text


def test_diff_words_marks_replaced_words_only():
    spans = diff_words("Messi won the award.", "Messi won the Ballon d'Or.")
    assert spans == [
        ("equal", "Messi won the "),
        ("delete", "award"),
        ("insert", "Ballon d'Or"),
        ("equal", "."),
    ]
    assert "".join(t for op, t in spans if op != "insert") == "Messi won the award."
    assert "".join(t for op, t in spans if op != "delete") == "Messi won the Ballon d'Or."


def test_diff_words_cjk_is_per_character():
    assert diff_words("梅西获得了金球奖。", "梅西荣获金球奖。") == [
        ("equal", "梅西"),
        ("insert", "荣"),
        ("equal", "获"),
        ("delete", "得了"),
        ("equal", "金球奖。"),
    ]


def test_diff_of_identical_and_empty_texts():
    assert diff_words("same", "same") == [("equal", "same")]
    assert diff_words("", "new") == [("insert", "new")]
    assert diff_words("old", "") == [("delete", "old")]
    assert diff_words("", "") == []


def test_versions_conversation_and_branching_restore():
    session = make_session()
    assert session.instruction == "Provide the English translation for this sentence: " + SOURCE
    with pytest.raises(UsageError, match="translate the text first"):
        session.refinement_messages("more formal")
    v1 = session.add_version("Messi won the Golden Ball.", session.instruction, refines=False)
    messages = session.refinement_messages("use 'Ballon d'Or' for 金球奖")
    assert messages == [
        Message("user", session.instruction),
        Message("assistant", "Messi won the Golden Ball."),
        Message("user", "use 'Ballon d'Or' for 金球奖"),
    ]
    v2 = session.add_version(
        "Messi won the Ballon d'Or.", "use 'Ballon d'Or' for 金球奖", refines=True
    )
    v3 = session.add_version("Messi was awarded the Ballon d'Or.", "more formal", refines=True)
    assert session.lineage(v3) == [v1, v2, v3]
    assert len(session.conversation()) == 6

    restored = session.restore(v1)  # go back, then branch from the first version
    assert restored.text == "Messi won the Golden Ball." and session.current == v1
    v4 = session.add_version(
        "Messi hat den Goldenen Ball gewonnen.", "now into German", refines=True
    )
    assert session.versions[v4].parent == v1 and session.lineage(v4) == [v1, v4]
    assert [m.content for m in session.conversation(v4)][-2:] == [
        "now into German",
        "Messi hat den Goldenen Ball gewonnen.",
    ]
    assert len(session.versions) == 4  # nothing was thrown away
    assert session.label(v4) == "v4 ← v1 · now into German"
    assert session.label(v1) == "v1 · translation"
    assert session.diff(v1, v2) == [
        ("equal", "Messi won the "),
        ("delete", "Golden Ball"),
        ("insert", "Ballon d'Or"),
        ("equal", "."),
    ]
    with pytest.raises(UsageError, match="no version 9"):
        session.restore(8)
    with pytest.raises(UsageError, match="type how"):
        session.refinement_messages("   ")


def test_chinese_instruction_and_constraints():
    session = InteractiveSession(
        source_text="The weather is nice.",
        target=resolve("zh"),
        instruction_lang="zh",
        constraints=("天气",),
    )
    assert session.instruction == "提供这句话的中文翻译：The weather is nice.\n确保包含这些词：天气"


def test_status_of_finish_reasons():
    assert status_of("stop") == "done"
    assert status_of("cancelled") == "stopped"
    assert status_of("length") == "cut" and status_of("context") == "cut"


def test_session_round_trips_through_the_history(tmp_path):
    store = History(tmp_path / "h.sqlite3")
    session = make_session()
    sid = store.new_session(
        "translate", SOURCE, source_lang="zh", target_lang="en", source_text=SOURCE
    )
    store.add_message(sid, "user", session.instruction)
    v1 = session.add_version("Messi won.", session.instruction, refines=False)
    session.versions[v1].record_id = store.add_message(sid, "assistant", "Messi won.")
    store.add_message(sid, "user", "longer", parent_id=session.versions[v1].record_id)
    v2 = session.add_version("Messi won the prize.", "longer", refines=True, status="stopped")
    session.versions[v2].record_id = store.add_message(
        sid,
        "assistant",
        "Messi won the prize.",
        parent_id=session.versions[v1].record_id,
        status="stopped",
    )
    session.restore(v1)
    store.update_session(sid, current_version=session.versions[v1].record_id)

    loaded = InteractiveSession.from_history(
        store.session(sid), store.messages(sid), target=resolve("en"), source=resolve("zh")
    )
    assert [v.text for v in loaded.versions] == ["Messi won.", "Messi won the prize."]
    assert [v.parent for v in loaded.versions] == [None, 0]
    assert loaded.versions[1].status == "stopped" and loaded.versions[1].request == "longer"
    assert loaded.current == 0 and loaded.record_id == sid
    assert loaded.instruction == session.instruction
    store.close()
