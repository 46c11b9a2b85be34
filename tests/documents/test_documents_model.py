"""Documents through real tiny models (llama.cpp): structure kept, terms guaranteed, memory.

``scripted_spm`` answers every instruction with "Hallo Welt!" (so the text visibly changes and
every placeholder has to be forced back in); ``tiny_spm_gguf`` is a random model whose output
is noise, the hardest case for a glossary.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from bayling_local.documents import (
    DocumentOptions,
    TranslationMemory,
    load_glossary,
    translate_bytes,
    translate_document,
)
from bayling_local.documents.formats import format_for
from bayling_local.engine import Engine, EngineConfig
from bayling_local.languages import resolve
from bayling_local.translate import TRANSLATION_SAMPLING, Translator
from tests.support.documents import (
    MARKDOWN,
    SRT,
    XLIFF12,
    XLIFF20,
    html_shape,
    inline_tags,
    markdown_shape,
    sample_documents,
)


def _translator(path: Path, max_tokens: int, context: int | None = None) -> Translator:
    engine = Engine(EngineConfig(model_path=path, threads=1, context=context))
    return Translator(engine, replace(TRANSLATION_SAMPLING, max_tokens=max_tokens))


@pytest.fixture(scope="module")
def scripted(scripted_spm):
    translator = _translator(scripted_spm.gguf, 32)
    yield translator
    translator.close()
    translator.engine.close()


@pytest.fixture(scope="module")
def noisy_bpe(tiny_bpe_gguf):
    """A random Llama-3-style model (byte-level BPE, BayLing-3 prompt format)."""
    translator = _translator(tiny_bpe_gguf, 12)
    yield translator
    translator.close()
    translator.engine.close()


@pytest.fixture(scope="module")
def noisy(tiny_spm_gguf):
    translator = _translator(tiny_spm_gguf, 12)
    yield translator
    translator.close()
    translator.engine.close()


def _run(name: str, data: bytes, translator, **options):
    target = options.pop("target", resolve("de"))
    return translate_bytes(
        data,
        format_for(name),
        translator,
        DocumentOptions(target=target, source=resolve("en"), **options),
        name=name,
    )


# --- structure identical, only text changed ------------------------------------------------------


def test_every_format_keeps_its_structure_with_a_real_model(scripted) -> None:
    documents = sample_documents()
    outputs = {}
    for name, data in documents.items():
        output, summary = _run(name, data, scripted)
        outputs[name] = output
        assert summary.translated + summary.kept == summary.segments > 0, name
        assert summary.placeholders_required == 0 or summary.second_pass, name
    check_structure(documents, outputs, "Hallo Welt!")


def test_every_format_survives_a_model_that_writes_noise(noisy) -> None:
    """A random model's output holds quotes, brackets, stars, pipes: the structure still holds."""
    documents = sample_documents()
    outputs = {name: _run(name, data, noisy)[0] for name, data in documents.items()}
    check_structure(documents, outputs, None)


def check_structure(documents: dict, outputs: dict, said: str | None) -> None:
    import docx
    import polib
    import srt
    from lxml import etree

    def has(text: str) -> bool:
        return said is None or said in text

    md = outputs["README.md"].decode()
    assert markdown_shape(md) == markdown_shape(MARKDOWN) and has(md)

    before, after = list(srt.parse(SRT)), list(srt.parse(outputs["film.srt"].decode()))
    assert [(s.index, s.start, s.end) for s in after] == [(s.index, s.start, s.end) for s in before]
    assert after[0].content.count("\n") == 1  # two lines, as the cue had
    tagged = after[1].content
    assert tagged.count("<i>") == tagged.count("</i>") == 1 and tagged.index("<i>") < tagged.index(
        "</i>"
    )

    vtt = outputs["film.vtt"].decode().split("\n")
    source_vtt = documents["film.vtt"].decode().split("\n")
    assert [line for line in vtt if "-->" in line] == [s for s in source_vtt if "-->" in s]
    assert vtt[:6] == source_vtt[:6] and vtt[6].startswith("<v Anna>")

    page = outputs["page.html"].decode()
    assert html_shape(page) == html_shape(documents["page.html"].decode())
    assert has(page)

    original, translated = (
        docx.Document(io.BytesIO(d)) for d in (documents["report.docx"], outputs["report.docx"])
    )
    assert [len(p.runs) for p in translated.paragraphs] == [
        len(p.runs) for p in original.paragraphs
    ]
    assert has(translated.sections[0].header.paragraphs[0].text)
    assert [len(r.cells) for r in translated.tables[0].rows] == [2, 2]
    assert all(has(c.text) for r in translated.tables[0].rows for c in r.cells)

    with (
        zipfile.ZipFile(io.BytesIO(documents["book.epub"])) as a,
        zipfile.ZipFile(io.BytesIO(outputs["book.epub"])) as b,
    ):
        assert a.namelist() == b.namelist()
        chapter = b.read("OEBPS/chapter1.xhtml").decode()
        assert html_shape(chapter) == html_shape(a.read("OEBPS/chapter1.xhtml").decode())
        assert has(chapter)

    catalogue = polib.pofile(outputs["messages.po"].decode())
    first, plural, done, menu = catalogue
    for placeholder in ("%s", "{count}"):
        assert first.msgstr.count(placeholder) == 1
    assert all(form.count("%d") == 1 for form in plural.msgstr_plural.values())
    assert (
        menu.msgstr.count("<b>") == menu.msgstr.count("</b>") == menu.msgstr.count("%(name)s") == 1
    )
    assert done.msgstr == "Speichern" and all("fuzzy" in e.flags for e in (first, plural, menu))

    for name, xliff in (("app.xlf", XLIFF12), ("app20.xliff", XLIFF20)):
        root = etree.fromstring(outputs[name])
        source_root = etree.fromstring(xliff.encode())
        ns = {"x": root.nsmap[None]}
        source = source_root.findall(".//x:source", ns)[0]
        target = root.findall(".//x:target", ns)[0]
        assert inline_tags(target) == inline_tags(source), name
        assert has("".join(target.itertext()))


# --- glossary: guaranteed whatever the model -----------------------------------------------------


GLOSSARY = "source\ttarget\nmachine translation\tMaschinenübersetzung\nglossary\tGlossar\nterm base\tTermbank\n"


@pytest.mark.parametrize("model", ["noisy", "noisy_bpe"])
def test_glossary_terms_appear_in_every_segment_that_requires_them(
    model: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    noisy = request.getfixturevalue(model)
    (tmp_path / "terms.tsv").write_text(GLOSSARY, encoding="utf-8")
    glossary = load_glossary(tmp_path / "terms.tsv")
    lines = [
        "Machine translation needs a glossary.",
        "A term base keeps names consistent.",
        "This line has no term at all.",
        "The glossary and the term base agree.",
        "Good machine translation respects the glossary.",
        "Nothing special here either.",
    ]
    source = tmp_path / "doc.md"
    source.write_text("# Machine translation\n\n" + "\n\n".join(lines) + "\n", encoding="utf-8")
    summary, output = translate_document(
        source,
        tmp_path / "out.md",
        noisy,
        DocumentOptions(target=resolve("de"), source=resolve("en"), glossary=glossary),
    )
    paragraphs = output.decode().split("\n\n")
    sources = ["# Machine translation", *lines]
    assert len(paragraphs) == len(sources)
    required = 0
    for text, translated in zip(sources, paragraphs):
        for term in glossary.required(text):
            required += 1
            assert term in translated, (text, translated)
    assert summary.terms_required == required == 8
    assert summary.terms_hit_final == required
    assert summary.terms_hit_first <= summary.terms_hit_final
    assert all(not p.missing or p.final for p in summary.second_pass)


# --- memory: nothing twice -----------------------------------------------------------------------


def test_second_run_translates_nothing_and_gives_the_same_bytes(noisy, tmp_path: Path) -> None:
    memory = TranslationMemory(tmp_path / "tm.sqlite3")
    options = DocumentOptions(target=resolve("de"), source=resolve("en"), memory=memory)
    source = tmp_path / "README.md"
    source.write_text(MARKDOWN, encoding="utf-8")
    first, out1 = translate_document(source, tmp_path / "a.md", noisy, options)
    assert first.translated + first.kept == first.segments and first.cached == 0
    second, out2 = translate_document(source, tmp_path / "b.md", noisy, options)
    assert second.translated == 0 and second.cached + second.kept == second.segments
    assert out1 == out2 == (tmp_path / "b.md").read_bytes()
    # A changed document translates only what changed.
    source.write_text(MARKDOWN.replace("A quoted remark.", "A new remark."), encoding="utf-8")
    third, _ = translate_document(source, tmp_path / "c.md", noisy, options)
    assert third.translated == 1 and third.cached + third.kept == third.segments - 1
    # Another target language is another key.
    fourth, _ = translate_document(
        source, tmp_path / "d.md", noisy, replace(options, target=resolve("fr"))
    )
    assert fourth.cached == 0
    memory.close()


def test_context_segments_are_part_of_the_key_and_resume(noisy, tmp_path: Path) -> None:
    memory = TranslationMemory(tmp_path / "tm.sqlite3")
    source = tmp_path / "story.txt"
    source.write_text("Anna met Tom.\nShe gave him a book.\nHe thanked her.\n", encoding="utf-8")
    options = DocumentOptions(target=resolve("de"), source=resolve("en"), memory=memory, context=2)
    first, out1 = translate_document(source, tmp_path / "a.txt", noisy, options)
    assert first.translated == 3
    again, out2 = translate_document(source, tmp_path / "b.txt", noisy, options)
    assert again.translated == 0 and out1 == out2
    plain, _ = translate_document(source, tmp_path / "c.txt", noisy, replace(options, context=0))
    assert plain.translated == 3  # without context the prompts differ: no reuse
    memory.close()


def test_a_segment_longer_than_the_context_is_split_further(tiny_spm_gguf, tmp_path: Path) -> None:
    translator = _translator(tiny_spm_gguf, 8, context=160)
    try:
        sentence = " ".join(f"word{i}" for i in range(400))  # one sentence, far over 160 tokens
        output, summary = _run("long.txt", (sentence + "\n").encode(), translator)
    finally:
        translator.close()
        translator.engine.close()
    assert summary.segments == 1 and summary.translated == 1
    assert output.decode().endswith("\n") and output.decode().strip()


def test_forced_continuation_writes_the_term_where_its_source_was(scripted) -> None:
    """The fallback behind constrained beams: cut, write the term, let the model go on."""
    from bayling_local.documents.constrained import cut_at, forced_continuation

    engine = scripted.engine
    prompt = engine.render(scripted.messages_for("The weather is nice.", resolve("de")))
    text = forced_continuation(
        engine,
        prompt,
        "Hallo Welt!",
        [("Wetter", 0.4), ("⟦1⟧", 1.0)],
        replace(scripted.sampling, max_tokens=16),
        stops=engine.prompt_format.stop_strings,
    )
    assert text.startswith("Hallo Wetter") and "⟦1⟧" in text
    assert cut_at("Hallo schöne Welt", 0.5, spaced=True) == "Hallo"
    assert cut_at("你好世界", 0.5, spaced=False) == "你好"


def test_segments_with_nothing_to_translate_never_reach_the_model(scripted) -> None:
    """A table cell of inline code or a lone number is kept as it is, not "translated"."""
    data = b"| Name | Value |\n|---|---|\n| `--threads` | 42 |\n| The cat sleeps. | `x` |\n"
    output, summary = _run("t.md", data, scripted)
    assert output.decode() == (
        "| Hallo Welt! | Hallo Welt! |\n|---|---|\n| `--threads` | 42 |\n| Hallo Welt! | `x` |\n"
    )
    assert (summary.translated, summary.kept, summary.segments) == (3, 3, 6)
