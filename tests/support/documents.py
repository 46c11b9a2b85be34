"""Sample documents of every format, written by code, and helpers that compare their structure.

Used by the document tests (tests/documents/): a Markdown README with code and tables, a two-cue
SRT with a two-line cue, WebVTT, an HTML page with scripts and attributes, a DOCX with a table, a
header and mixed-style runs, a small EPUB, a PO catalogue with plurals and placeholders, XLIFF
1.2 and 2.0.
"""

from __future__ import annotations

import html.parser
import io
import zipfile

MARKDOWN = """\
---
title: Project guide
version: 2
---
# The project

This tool translates *documents* offline. Install it with `pip install bayling-local`, then
read [the guide](https://example.com/guide "Guide") or https://example.com/faq.

## Usage

```bash
bayling-local translate -i README.md -o LIESMICH.md
```

| Option | Meaning |
|--------|---------|
| `-t` | Target language |
| `-o` | Output file |

<div align="center">A raw HTML block stays.</div>

- First item of the list.
- Second **important** item.

> A quoted remark.
"""


SRT = """\
1
00:00:01,000 --> 00:00:03,500
The weather is nice today,
so we go for a walk.

2
00:00:04,000 --> 00:00:05,250
<i>See you tomorrow.</i>

"""


VTT = """\
WEBVTT

NOTE a comment that stays

intro
00:00:01.000 --> 00:00:03.500 align:start
<v Anna>The weather is nice today,
so we go for a walk.

00:00:04.000 --> 00:00:05.250
See you tomorrow.
"""


HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Offline translation</title>
<script>var greeting = "<b>do not translate</b>"; if (a < b) { run(); }</script>
<style>p { color: #333; }</style>
</head>
<body>
<!-- a comment -->
<h1 title="Main heading">Welcome &amp; hello</h1>
<p class="intro">Translate <b>whole documents</b> on your own machine.<br/>Nothing leaves it.</p>
<img src="cat.png" alt="A sleeping cat">
<pre>keep   this   layout</pre>
<p>Run <code>bayling-local translate</code> to start.</p>
<p translate="no">BayLing</p>
<ul><li>Fast</li><li>Private</li></ul>
</body>
</html>
"""


PO_HEADER = {
    "Project-Id-Version": "demo 1.0",
    "Content-Type": "text/plain; charset=UTF-8",
    "Language": "de",
    "Plural-Forms": "nplurals=2; plural=(n != 1);",
}


XLIFF12 = """\
<?xml version="1.0" encoding="UTF-8"?>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
  <file source-language="en" target-language="de" datatype="plaintext" original="app.strings">
    <body>
      <trans-unit id="greeting">
        <source>Hello <g id="1">dear</g> user<x id="2"/>, welcome back.</source>
      </trans-unit>
      <trans-unit id="done">
        <source>Saved.</source>
        <target>Gespeichert.</target>
      </trans-unit>
      <trans-unit id="brand" translate="no">
        <source>BayLing</source>
      </trans-unit>
    </body>
  </file>
</xliff>
"""


XLIFF20 = """\
<?xml version="1.0" encoding="UTF-8"?>
<xliff xmlns="urn:oasis:names:tc:xliff:document:2.0" version="2.0" srcLang="en" trgLang="fr">
  <file id="f1">
    <unit id="u1">
      <segment>
        <source>Press <pc id="1">Save</pc> to keep your changes<ph id="2"/>.</source>
      </segment>
    </unit>
    <unit id="u2">
      <segment state="final">
        <source>Cancel</source>
        <target>Annuler</target>
      </segment>
    </unit>
  </file>
</xliff>
"""


def make_po() -> str:
    import polib

    catalogue = polib.POFile(wrapwidth=78)
    catalogue.metadata = dict(PO_HEADER)
    catalogue.append(
        polib.POEntry(
            msgid="Hello %s, you have {count} new messages.",
            occurrences=[("app.py", "12")],
            comment="Greeting on the start page",
            flags=["python-brace-format"],
        )
    )
    catalogue.append(
        polib.POEntry(
            msgid="%d file was deleted.",
            msgid_plural="%d files were deleted.",
            msgstr_plural={0: "", 1: ""},
            flags=["c-format"],
        )
    )
    catalogue.append(polib.POEntry(msgid="Save", msgstr="Speichern"))
    catalogue.append(polib.POEntry(msgid="Open the <b>%(name)s</b> folder", msgctxt="menu"))
    return str(catalogue) + "\n"


def make_docx() -> bytes:
    import docx
    from docx.shared import Pt

    document = docx.Document()
    header = document.sections[0].header
    header.paragraphs[0].text = "Quarterly report"
    document.add_heading("Results of the year", level=1)
    paragraph = document.add_paragraph("Sales grew ")
    bold = paragraph.add_run("very strongly")
    bold.bold = True
    paragraph.add_run(" in the ")
    italic = paragraph.add_run("northern region")
    italic.italic = True
    italic.font.size = Pt(14)
    paragraph.add_run(".")
    table = document.add_table(rows=2, cols=2)
    for (row, column), text in {
        (0, 0): "Region",
        (0, 1): "Growth",
        (1, 0): "North",
        (1, 1): "Twelve percent",
    }.items():
        table.cell(row, column).text = text
    footer = document.sections[0].footer
    footer.paragraphs[0].text = "Confidential"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


CHAPTER = """\
<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>Chapter one</title><link rel="stylesheet" href="style.css"/></head>
<body>
<h1>Chapter one</h1>
<p>It was a bright cold day in April.</p>
<p>The clocks were striking <em>thirteen</em>.</p>
<img src="cover.png" alt="The cover"/>
</body>
</html>
"""


NAV = """\
<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>Contents</title></head>
<body><nav epub:type="toc"><ol><li><a href="chapter1.xhtml">Chapter one</a></li></ol></nav></body>
</html>
"""


OPF = """\
<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="id">urn:uuid:12345</dc:identifier>
    <dc:title>A small book</dc:title>
    <dc:language>en</dc:language>
  </metadata>
  <manifest>
    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
    <item id="c1" href="chapter1.xhtml" media-type="application/xhtml+xml"/>
    <item id="css" href="style.css" media-type="text/css"/>
    <item id="cover" href="cover.png" media-type="image/png"/>
  </manifest>
  <spine><itemref idref="c1"/></spine>
</package>
"""


CONTAINER = """\
<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""


def make_epub() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        for name, text in (
            ("META-INF/container.xml", CONTAINER),
            ("OEBPS/content.opf", OPF),
            ("OEBPS/nav.xhtml", NAV),
            ("OEBPS/chapter1.xhtml", CHAPTER),
            ("OEBPS/style.css", "p { margin: 0 }\n"),
        ):
            archive.writestr(name, text, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/cover.png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    return out.getvalue()


def sample_documents() -> dict[str, bytes]:
    """File name -> bytes, one per format."""
    return {
        "README.md": MARKDOWN.encode(),
        "film.srt": SRT.encode(),
        "film.vtt": VTT.encode(),
        "page.html": HTML.encode(),
        "report.docx": make_docx(),
        "book.epub": make_epub(),
        "messages.po": make_po().encode(),
        "app.xlf": XLIFF12.encode(),
        "app20.xliff": XLIFF20.encode(),
        "notes.txt": b"First line of notes.\n\n   Indented second line. It has two sentences.\n",
    }


def inline_tags(element) -> list[tuple[str, dict]]:
    return [(child.tag, dict(child.attrib)) for child in element.iter() if child is not element]


def markdown_shape(text: str) -> list[tuple[str, str]]:
    """Block token types, with the content of code and HTML (which must not change)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    shape = []
    for token in tokens:
        kept = token.content if token.type in ("fence", "code_block", "html_block") else ""
        shape.append((token.type, kept))
        for child in token.children or []:
            if child.type in ("code_inline", "html_inline", "image"):
                shape.append((child.type, child.content))
            if child.type == "link_open":
                shape.append(("href", str(child.attrs.get("href"))))
    return shape


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []
        self.raw: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        self.events.append(("start", tag, [(k, v) for k, v in attrs if k not in ("alt", "title")]))

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        self.events.append(("end", tag))

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("script", "style", "pre", "code"):
            self.raw.append(data)


def html_shape(text: str) -> tuple[list, list]:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return parser.events, parser.raw
