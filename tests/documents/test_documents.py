"""Document formats: every format round-trips, keeps its structure, and fills what it should.

The documents are written by the tests (a Markdown README with code and tables, a two-cue SRT
with a two-line cue, WebVTT, an HTML page with scripts and attributes, a DOCX with a table, a
header and mixed-style runs, a small EPUB, a PO catalogue with plurals and placeholders, XLIFF
1.2 and 2.0). These tests use stand-in translators (identity, upper case) and run in well under
a second each; tests/documents/test_documents_model.py runs the same documents through real tiny models.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from bayling_local.documents import DocumentOptions, translate_bytes, translate_document
from bayling_local.documents.formats import FORMATS, format_for, load
from bayling_local.documents.model import tokens_in
from bayling_local.engine import GenerationStats
from bayling_local.errors import InputError, OutputError, UsageError
from bayling_local.languages import resolve
from bayling_local.translate import SegmentResult
from tests.support.documents import (
    HTML,
    MARKDOWN,
    PO_HEADER,
    SRT,
    VTT,
    XLIFF12,
    XLIFF20,
    html_shape,
    inline_tags,
    make_docx,
    make_epub,
    make_po,
    markdown_shape,
    sample_documents,
)

# --- the documents ------------------------------------------------------------------------------


# --- stand-in translators -----------------------------------------------------------------------


class EchoTranslator:
    """Translates by applying ``transform`` to each segment (identity by default)."""

    def __init__(self, transform: Callable[[str], str] = lambda text: text) -> None:
        self.transform = transform
        self.calls: list[str] = []

    def translate_segments(self, segments: Sequence[str], target, **kw) -> list[SegmentResult]:
        results = []
        for index, text in enumerate(segments):
            self.calls.append(text)
            out = self.transform(text)
            result = SegmentResult(text, out, [(out, 0.0)], "stop", GenerationStats())
            results.append(result)
            if kw.get("on_done"):
                kw["on_done"](index, result)
        return results


def upper(text: str) -> str:
    """Upper-cases the words but keeps placeholders (as a good translation does)."""
    return "".join(p if tokens_in(p) == [p] else p.upper() for p in _split(text))


def _split(text: str) -> list[str]:
    from bayling_local.documents.model import split_tokens

    return split_tokens(text)


def translate(name: str, data: bytes, translator, **options) -> bytes:
    fmt = format_for(name)
    target = options.pop("target", resolve("en"))
    output, _ = translate_bytes(
        data, fmt, translator, DocumentOptions(target=target, source=resolve("en"), **options)
    )
    return output


# --- identity: the output is the input ----------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in sample_documents() if not n.endswith((".po", "f"))])
def test_identity_translation_gives_the_input_back(name: str) -> None:
    data = sample_documents()[name]
    translator = EchoTranslator()
    assert translate(name, data, translator) == data
    assert translator.calls, "nothing was sent for translation"


def test_identity_po_fills_targets_with_sources_exactly() -> None:
    import polib

    data = sample_documents()["messages.po"]
    source = polib.pofile(data.decode())
    out = polib.pofile(translate("messages.po", data, EchoTranslator()).decode())
    assert [e.msgid for e in out] == [e.msgid for e in source]
    assert [e.occurrences for e in out] == [e.occurrences for e in source]
    first, plural, done, menu = out
    assert first.msgstr == first.msgid and "fuzzy" in first.flags
    assert plural.msgstr_plural == {0: plural.msgid, 1: plural.msgid_plural}
    assert done.msgstr == "Speichern" and "fuzzy" not in done.flags  # translated: untouched
    assert menu.msgstr == menu.msgid and menu.msgctxt == "menu"
    assert out.metadata == source.metadata


def test_po_with_nothing_to_translate_is_unchanged() -> None:
    import polib

    catalogue = polib.POFile(wrapwidth=78)
    catalogue.metadata = dict(PO_HEADER)
    catalogue.append(polib.POEntry(msgid="Save", msgstr="Speichern"))
    data = (str(catalogue) + "\n").encode()
    translator = EchoTranslator()
    assert translate("done.po", data, translator) == data
    assert translator.calls == []


@pytest.mark.parametrize("name", ["app.xlf", "app20.xliff"])
def test_identity_xliff_targets_equal_sources(name: str) -> None:
    from lxml import etree

    data = sample_documents()[name]
    out = etree.fromstring(translate(name, data, EchoTranslator()))
    ns = {"x": out.nsmap[None]}
    units = out.findall(".//x:trans-unit", ns) or out.findall(".//x:segment", ns)
    for unit in units:
        source, target = unit.find("x:source", ns), unit.find("x:target", ns)
        if unit.get("translate") == "no":
            assert target is None
            continue
        assert target is not None
        if "".join(target.itertext()) in ("Gespeichert.", "Annuler"):  # translated before
            continue
        assert inline_tags(source) == inline_tags(target)
        assert "".join(source.itertext()) == "".join(target.itertext())


# --- upper case: only text changes ---------------------------------------------------------------


def test_markdown_keeps_code_urls_tables_and_front_matter() -> None:
    out = translate("README.md", MARKDOWN.encode(), EchoTranslator(upper)).decode()
    assert "title: PROJECT GUIDE\nversion: 2\n" in out
    assert "# THE PROJECT" in out and "## USAGE" in out
    assert "```bash\nbayling-local translate -i README.md -o LIESMICH.md\n```" in out
    assert "`pip install bayling-local`" in out
    assert '[THE GUIDE](https://example.com/guide "Guide")' in out
    assert "https://example.com/faq" in out
    assert "| Option | Meaning |".upper() in out and "|--------|---------|" in out
    assert "| `-t` | TARGET LANGUAGE |" in out
    assert '<div align="center">A raw HTML block stays.</div>' in out
    assert "- SECOND **IMPORTANT** ITEM." in out and "> A QUOTED REMARK." in out
    assert markdown_shape(out) == markdown_shape(MARKDOWN)


def test_subtitles_keep_numbers_and_timings_and_translate_a_cue_whole() -> None:
    import srt

    translator = EchoTranslator(upper)
    out = translate("film.srt", SRT.encode(), translator).decode()
    assert translator.calls[0] == "The weather is nice today, so we go for a walk."
    before, after = list(srt.parse(SRT)), list(srt.parse(out))
    assert [(s.index, s.start, s.end) for s in before] == [(s.index, s.start, s.end) for s in after]
    assert after[0].content == "THE WEATHER IS NICE TODAY,\nSO WE GO FOR A WALK."
    assert after[1].content == "<i>SEE YOU TOMORROW.</i>"


def test_webvtt_keeps_header_notes_ids_settings_and_voice_tags() -> None:
    out = translate("film.vtt", VTT.encode(), EchoTranslator(upper)).decode()
    assert out.startswith("WEBVTT\n\nNOTE a comment that stays\n\nintro\n")
    assert "00:00:01.000 --> 00:00:03.500 align:start\n<v Anna>THE WEATHER IS NICE TODAY,\n" in out
    assert out.endswith("00:00:04.000 --> 00:00:05.250\nSEE YOU TOMORROW.\n")


def test_html_translates_text_and_alt_title_only() -> None:
    out = translate("page.html", HTML.encode(), EchoTranslator(upper)).decode()
    assert html_shape(out) == html_shape(HTML)
    assert "<title>OFFLINE TRANSLATION</title>" in out
    assert '<h1 title="MAIN HEADING">WELCOME &amp; HELLO</h1>' in out
    assert 'alt="A SLEEPING CAT"' in out and 'src="cat.png"' in out
    assert 'var greeting = "<b>do not translate</b>"; if (a < b) { run(); }' in out
    assert (
        "<pre>keep   this   layout</pre>" in out and "<code>bayling-local translate</code>" in out
    )
    assert '<p translate="no">BayLing</p>' in out


def test_html_escapes_markup_in_translations() -> None:
    out = translate("page.html", HTML.encode(), EchoTranslator(lambda t: t + ' <b>&"')).decode()
    assert html_shape(out) == html_shape(HTML)
    assert "WELCOME" not in out and "Welcome &amp; hello &lt;b&gt;&amp;" in out


def test_docx_keeps_paragraphs_tables_headers_and_run_styles() -> None:
    import docx

    data = make_docx()
    out = translate("report.docx", data, EchoTranslator(upper))
    before, after = docx.Document(io.BytesIO(data)), docx.Document(io.BytesIO(out))
    assert [p.style.name for p in after.paragraphs] == [p.style.name for p in before.paragraphs]
    assert [len(p.runs) for p in after.paragraphs] == [len(p.runs) for p in before.paragraphs]
    assert [(r.bold, r.italic, r.font.size) for p in after.paragraphs for r in p.runs] == [
        (r.bold, r.italic, r.font.size) for p in before.paragraphs for r in p.runs
    ]
    mixed = after.paragraphs[1]
    assert mixed.text == "SALES GREW VERY STRONGLY IN THE NORTHERN REGION."
    assert mixed.runs[0].text == mixed.text  # the sentence goes to the first run
    assert [[c.text for c in row.cells] for row in after.tables[0].rows] == [
        ["REGION", "GROWTH"],
        ["NORTH", "TWELVE PERCENT"],
    ]
    assert after.sections[0].header.paragraphs[0].text == "QUARTERLY REPORT"
    assert after.sections[0].footer.paragraphs[0].text == "CONFIDENTIAL"
    with zipfile.ZipFile(io.BytesIO(data)) as a, zipfile.ZipFile(io.BytesIO(out)) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())


def test_epub_translates_chapters_and_copies_everything_else() -> None:
    data = make_epub()
    out = translate("book.epub", data, EchoTranslator(upper))
    with zipfile.ZipFile(io.BytesIO(data)) as a, zipfile.ZipFile(io.BytesIO(out)) as b:
        assert a.namelist() == b.namelist()
        first = b.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        for name in a.namelist():
            if name.endswith(".xhtml"):
                before, after = a.read(name).decode(), b.read(name).decode()
                assert html_shape(after) == html_shape(before)
                assert before != after
            else:
                assert a.read(name) == b.read(name), name
        chapter = b.read("OEBPS/chapter1.xhtml").decode()
        assert "<p>THE CLOCKS WERE STRIKING <em>THIRTEEN</em>.</p>" in chapter
        assert 'alt="THE COVER"' in chapter


def test_po_placeholders_come_back_exactly_even_if_the_model_moves_them() -> None:
    import polib

    def reorder(text: str) -> str:  # a translation that puts placeholders elsewhere
        tokens = tokens_in(text)
        words = text
        for token in tokens:
            words = words.replace(token, "")
        return " ".join(reversed(tokens)) + " " + words.upper()

    out = polib.pofile(
        translate("messages.po", make_po().encode(), EchoTranslator(reorder)).decode()
    )
    first = out[0]
    assert first.msgstr.startswith("{count} %s")
    assert sorted(["%s", "{count}"]) == sorted(p for p in ("%s", "{count}") if p in first.msgstr)
    menu = out[3]
    assert "<b>" in menu.msgstr and "%(name)s" in menu.msgstr and "</b>" in menu.msgstr


def test_xliff_inline_codes_are_kept() -> None:
    from lxml import etree

    out = translate("app.xlf", XLIFF12.encode(), EchoTranslator(upper))
    root = etree.fromstring(out)
    ns = {"x": "urn:oasis:names:tc:xliff:document:1.2"}
    target = root.find(".//x:trans-unit[@id='greeting']/x:target", ns)
    assert target.get("state") == "needs-review-translation"
    assert (
        etree.tostring(target, with_tail=False)
        .decode()
        .endswith('HELLO <g id="1">DEAR</g> USER<x id="2"/>, WELCOME BACK.</target>')
    )
    assert root.find(".//x:trans-unit[@id='done']/x:target", ns).text == "Gespeichert."
    assert root.find(".//x:trans-unit[@id='brand']/x:target", ns) is None
    out20 = etree.fromstring(translate("app20.xliff", XLIFF20.encode(), EchoTranslator(upper)))
    ns20 = {"x": "urn:oasis:names:tc:xliff:document:2.0"}
    segment = out20.find(".//x:unit[@id='u1']/x:segment", ns20)
    assert segment.get("state") == "translated"
    target = segment.find("x:target", ns20)
    assert [(c.tag.split("}")[1], c.get("id")) for c in target] == [("pc", "1"), ("ph", "2")]
    assert "".join(target.itertext()) == "PRESS SAVE TO KEEP YOUR CHANGES."


def test_text_keeps_blank_lines_and_indentation_and_splits_sentences() -> None:
    translator = EchoTranslator(upper)
    data = sample_documents()["notes.txt"]
    out = translate("notes.txt", data, translator).decode()
    assert out == "FIRST LINE OF NOTES.\n\n   INDENTED SECOND LINE. IT HAS TWO SENTENCES.\n"
    assert translator.calls == [
        "First line of notes.",
        "Indented second line.",
        "It has two sentences.",
    ]


def test_sentences_are_split_with_abbreviations_kept() -> None:
    translator = EchoTranslator()
    translate("a.txt", b"Dr. Smith arrived, e.g. at noon. He left.\n", translator)
    assert translator.calls == ["Dr. Smith arrived, e.g. at noon.", "He left."]
    translator = EchoTranslator()
    data = b"Das ist z. B. ein Test. Noch einer.\n"
    output, _ = translate_bytes(
        data,
        FORMATS["txt"],
        translator,
        DocumentOptions(target=resolve("en"), source=resolve("de")),
    )
    assert translator.calls == ["Das ist z. B. ein Test.", "Noch einer."]


def test_chinese_target_joins_sentences_without_spaces() -> None:
    out = translate(
        "a.txt", b"One. Two.\n", EchoTranslator(lambda t: "\u4e00\u3002"), target=resolve("zh")
    )
    assert out.decode() == "\u4e00\u3002\u4e00\u3002\n"


# --- bilingual -----------------------------------------------------------------------------------


def test_bilingual_markdown_puts_each_paragraph_after_its_source() -> None:
    out = translate("README.md", MARKDOWN.encode(), EchoTranslator(upper), bilingual=True).decode()
    assert "# The project\n\n# THE PROJECT\n" in out
    assert "| `-t` | Target language / TARGET LANGUAGE |" in out
    assert (
        markdown_shape(out).count(
            ("fence", "bayling-local translate -i README.md -o LIESMICH.md\n")
        )
        == 1
    )


def test_bilingual_subtitles_have_source_and_translation_lines() -> None:
    import srt

    out = translate("film.srt", SRT.encode(), EchoTranslator(upper), bilingual=True).decode()
    first = list(srt.parse(out))[0]
    assert first.content.split("\n") == [
        "The weather is nice today,",
        "so we go for a walk.",
        "THE WEATHER IS NICE TODAY,",
        "SO WE GO FOR A WALK.",
    ]


def test_bilingual_html_copies_block_elements() -> None:
    out = translate("page.html", HTML.encode(), EchoTranslator(upper), bilingual=True).decode()
    assert "<li>Fast</li><li>FAST</li>" in out
    assert (
        '<h1 title="Main heading">Welcome &amp; hello</h1>'
        '<h1 title="MAIN HEADING">WELCOME &amp; HELLO</h1>'
    ) in out


def test_bilingual_docx_adds_a_paragraph_after_each() -> None:
    import docx

    out = translate("report.docx", make_docx(), EchoTranslator(upper), bilingual=True)
    texts = [p.text for p in docx.Document(io.BytesIO(out)).paragraphs]
    assert texts[:2] == ["Results of the year", "RESULTS OF THE YEAR"]


# --- bad input ------------------------------------------------------------------------------------


def test_unsupported_format_lists_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        format_for(tmp_path / "slides.pptx")
    assert "'.pptx'" in caught.value.message and ".md" in caught.value.message
    assert ".xliff" in caught.value.message
    with pytest.raises(UsageError, match="unknown document format"):
        format_for("a.txt", "pdf")
    assert format_for("a.txt", "markdown").name == "md"


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("bad.xlf", b'<?xml version="1.0"?>\n<xliff version="1.2">\n<file>\n</xliff>\n', "line 4"),
        ("bad.srt", b"Subtitles\n\n1\n00:00:01,000 --> 00:00:02,000\nHi\n", "line 1"),
        ("bad.vtt", b"1\n00:00.000 --> 00:01.000\nHi\n", "line 1"),
        ("bad.po", b'msgid "a"\nmsgstr "b"\nmsgid\n', "line"),
        ("bad.docx", b"PK\x03\x04 not really a zip", "Word"),
        ("bad.epub", b"not a zip at all", "EPUB"),
        ("bad.md", b"\xff\xfe bad bytes", "line 1"),
        ("bad.html", b"<p>\x00\x01</p>", "binary"),
        ("notxliff.xlf", b"<root/>", "<root>"),
    ],
)
def test_parse_failures_name_the_place(name: str, data: bytes, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        load(data, format_for(name), name)
    assert fragment in caught.value.message, caught.value.message
    assert "\n" not in caught.value.message


def test_output_that_is_the_input_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "a.md"
    source.write_text("# Hi\n")
    link = tmp_path / "link.md"
    link.symlink_to(source)
    options = DocumentOptions(target=resolve("de"), source=resolve("en"))
    for output in (source, link, tmp_path / "." / "a.md"):
        with pytest.raises(OutputError, match="is the input"):
            translate_document(source, output, EchoTranslator(), options)
    assert source.read_text() == "# Hi\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output_is_refused_before_any_work(tmp_path: Path) -> None:
    source = tmp_path / "a.md"
    source.write_text("# Hi\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    translator = EchoTranslator()
    try:
        with pytest.raises(OutputError):
            translate_document(
                source, locked / "b.md", translator, DocumentOptions(target=resolve("de"))
            )
    finally:
        locked.chmod(0o700)
    assert translator.calls == []


def test_output_in_a_missing_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    source = tmp_path / "a.md"
    source.write_text("# Hi\n")
    translator = EchoTranslator()
    with pytest.raises(OutputError, match="does not exist"):
        translate_document(
            source, tmp_path / "nowhere" / "b.md", translator, DocumentOptions(target=resolve("de"))
        )
    assert translator.calls == []


# --- context, progress, cancellation -------------------------------------------------------------


class SpyTranslator(EchoTranslator):
    def __init__(self, transform: Callable[[str], str] = upper) -> None:
        super().__init__(transform)
        self.histories: list[list[tuple[str, str]]] = []
        self.constraints: list[object] = []

    def translate_segments(self, segments, target, **kw):
        self.histories.extend(list(h or []) for h in (kw.get("history") or [[]] * len(segments)))
        self.constraints.extend(kw.get("constraints") or [None] * len(segments))
        return super().translate_segments(segments, target, **kw)


def test_context_passes_the_previous_segments_and_their_translations() -> None:
    spy = SpyTranslator()
    translate("a.txt", b"One.\nTwo.\nThree.\nFour.\n", spy, context=2)
    assert spy.histories == [
        [],
        [("One.", "ONE.")],
        [("One.", "ONE."), ("Two.", "TWO.")],
        [("Two.", "TWO."), ("Three.", "THREE.")],
    ]


def test_glossary_terms_go_into_the_instruction(tmp_path: Path) -> None:
    from bayling_local.documents import load_glossary

    (tmp_path / "g.tsv").write_text("weather\tWetter\n", encoding="utf-8")
    spy = SpyTranslator(lambda text: text)  # never says "Wetter": the second pass appends it
    out, summary = translate_bytes(
        b"The weather is nice.\nNo term.\n",
        FORMATS["txt"],
        spy,
        DocumentOptions(
            target=resolve("de"), source=resolve("en"), glossary=load_glossary(tmp_path / "g.tsv")
        ),
    )
    assert spy.constraints == [["Wetter"], None]
    assert summary.terms_required == 1 and summary.terms_hit_first == 0
    assert summary.terms_hit_final == 1 and summary.second_pass[0].method == "appended"
    assert out.decode().split("\n")[0].endswith("Wetter")


def test_progress_counts_cached_segments_apart(tmp_path: Path) -> None:
    from bayling_local.documents import TranslationMemory

    memory = TranslationMemory(tmp_path / "tm.sqlite3")
    options = DocumentOptions(target=resolve("de"), source=resolve("en"), memory=memory)
    seen = []

    def progress(state) -> None:
        seen.append((state.done, state.cached, state.translated, state.total))

    data = sample_documents()["notes.txt"]
    translate_bytes(data, FORMATS["txt"], EchoTranslator(upper), options, progress=progress)
    assert seen[0] == (0, 0, 0, 3) and seen[-1] == (3, 0, 3, 3)
    seen.clear()
    _, summary = translate_bytes(
        data, FORMATS["txt"], EchoTranslator(upper), options, progress=progress
    )
    assert seen[-1] == (3, 3, 0, 3) and summary.cached == 3
    memory.close()


class CancellingTranslator(EchoTranslator):
    """Finishes two segments, then the user cancels."""

    def translate_segments(self, segments, target, **kw):
        cancel = kw["cancel"]
        results = []
        for index, text in enumerate(segments):
            reason = "cancelled" if index >= 2 else "stop"
            if index == 2:
                cancel.set()
            result = SegmentResult(text, text.upper(), [], reason, GenerationStats())
            results.append(result)
            if reason == "stop":
                kw["on_done"](index, result)
        return results


def test_cancel_keeps_the_finished_segments_and_writes_nothing(tmp_path: Path) -> None:
    import threading

    from bayling_local.documents import TranslationMemory
    from bayling_local.errors import Cancelled

    memory = TranslationMemory(tmp_path / "tm.sqlite3")
    source = tmp_path / "a.txt"
    source.write_text("One.\nTwo.\nThree.\nFour.\n", encoding="utf-8")
    options = DocumentOptions(target=resolve("de"), source=resolve("en"), memory=memory)
    with pytest.raises(Cancelled) as caught:
        translate_document(
            source, tmp_path / "b.txt", CancellingTranslator(), options, cancel=threading.Event()
        )
    assert caught.value.exit_code == 130
    assert "2 of 4 segments finished" in caught.value.message
    assert not (tmp_path / "b.txt").exists() and memory.stats().units == 2
    resumed = SpyTranslator()
    summary, _ = translate_document(source, tmp_path / "b.txt", resumed, options)
    assert resumed.calls == ["Three.", "Four."] and summary.cached == 2
    memory.close()


def test_an_empty_document_is_refused() -> None:
    with pytest.raises(InputError, match="empty"):
        translate("empty.md", b"  \n", EchoTranslator())


def test_html_sentences_run_across_inline_elements() -> None:
    translator = EchoTranslator(upper)
    out = translate("page.html", HTML.encode(), translator).decode()
    assert "Translate ⟦1⟧whole documents⟦/1⟧ on your own machine." in translator.calls
    assert "Run ⟦1⟧ to start." in translator.calls  # <code> kept whole, as one placeholder
    assert "<p>RUN <code>bayling-local translate</code> TO START.</p>" in out
    moved = translate(
        "page.html", HTML.encode(), EchoTranslator(lambda t: t.replace("⟦/1⟧", "").upper())
    ).decode()
    assert html_shape(moved) == html_shape(HTML)  # a dropped closing tag comes back
