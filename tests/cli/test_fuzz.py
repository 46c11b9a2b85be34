"""Property-based fuzzing of the parsers that read what users and files hand in.

Each property says what must hold for *any* input: a clear :class:`BaylingError` or a correct
result, never another exception, never a hang. Bounded (``max_examples``, no deadline, a
fixed database-free profile) so the whole file runs in well under a minute in CI; raise
``FUZZ_EXAMPLES`` locally for a longer hunt (``FUZZ_EXAMPLES=2000 pytest tests/cli/test_fuzz.py``).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayling_local.errors import BaylingError, ModelError, PromptError, UsageError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- the language resolver -------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=80))
def test_language_resolver_never_crashes(name: str) -> None:
    from bayling_local.languages import resolve

    try:
        lang = resolve(name)
    except UsageError as exc:
        assert "\n" not in exc.message and len(exc.message) < 400
    else:
        assert resolve(lang.code) == lang  # what it resolved to resolves to itself


@FUZZ
@given(st.sampled_from(["zh", "de", "ja", "ar", "pt", "zh-Hant"]), st.sampled_from(["", " ", "_"]))
def test_language_codes_survive_case_and_spacing(code: str, pad: str) -> None:
    from bayling_local.languages import resolve

    assert resolve(pad + code.upper() + pad) == resolve(code)


# --- the prompt renderer ---------------------------------------------------------------------

_messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["system", "user", "assistant", "tool", "", 3]),
            "content": st.one_of(st.text(max_size=60), st.none(), st.integers()),
        }
    ),
    max_size=6,
)


@FUZZ
@given(_messages, st.sampled_from(["bayling", "bayling-3"]))
def test_prompt_renderer_python_and_jinja_agree(items: list, name: str) -> None:
    from bayling_local.prompts import get_format, render_jinja, to_messages

    try:
        messages = to_messages(items)
        fmt = get_format(name)
        text = fmt.render(messages)
    except PromptError:
        return
    for message in messages:
        assert message.content.strip() in text
    assert render_jinja(fmt.jinja_template, messages) == text


@FUZZ
@given(st.text(max_size=200))
def test_any_gguf_template_is_a_result_or_one_line(template: str) -> None:
    from bayling_local.prompts import Message, TemplateFormat

    fmt = TemplateFormat(
        name="gguf-template",
        default_system="",
        stop_strings=(),
        jinja_template=template,
        model="fuzz.gguf",
        fallback="bayling",
    )
    try:
        fmt.render([Message("user", "hi")])
    except (PromptError, ModelError) as exc:
        assert "\n" not in exc.message


@pytest.mark.parametrize(
    "template, fragment",
    [
        ("{{ 'x' * 1000000000 }}", "huge"),
        ("{% for i in range(10**9) %}x{% endfor %}", "range"),
        ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "ran"),
        ("{% for i in range(99999) %}{{ 'y' * 99 }}{% endfor %}", "writes more than"),
        ("{{ 2 ** 100000 }}", "power"),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "deep"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    ],
)
def test_hostile_templates_stop_with_one_line(template: str, fragment: str) -> None:
    import time

    from bayling_local.prompts import ChatTemplateError, Message, TemplateFormat

    fmt = TemplateFormat("gguf-template", "", (), template, model="evil.gguf", fallback="bayling")
    started = time.monotonic()
    with pytest.raises(ChatTemplateError) as info:
        fmt.render([Message("user", "hi")])
    assert time.monotonic() - started < 10
    message = info.value.message
    assert (
        info.value.exit_code == 3
        and "evil.gguf" in message
        and "--prompt-format bayling" in message
    )
    assert fragment in message


# --- settings --------------------------------------------------------------------------------

_SETTING_NAMES = [
    "threads",
    "gpu_layers",
    "context",
    "temperature",
    "top_p",
    "top_k",
    "repeat_penalty",
    "max_tokens",
    "instruction_lang",
    "theme",
    "parallel",
    "beam",
    "target",
]
_raw_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e309", "64", "0.5", "auto", " 3 "]),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@FUZZ
@given(st.sampled_from(_SETTING_NAMES), _raw_values)
def test_settings_from_the_environment(name: str, raw: str) -> None:
    import math

    from bayling_local.settings import load_settings

    if "\x00" in raw:
        return  # an environment variable cannot hold NUL
    variable = f"BAYLING_LOCAL_{name.upper()}"
    try:
        value = getattr(
            load_settings(Path("/nonexistent/settings.toml"), environ={variable: raw}), name
        )
    except UsageError as exc:
        assert exc.message.startswith(f"{variable}={raw}: "), exc.message
        assert exc.exit_code == 2
        return
    if isinstance(value, float):
        assert math.isfinite(value)
    if name == "temperature":
        assert 0 <= value <= 5
    if name == "top_p":
        assert 0 < value <= 1
    if name in ("max_tokens", "beam") or (name in ("threads", "parallel") and value is not None):
        assert value >= 1
    if name == "context" and value is not None:
        assert value >= 64


_toml_values = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@FUZZ
@given(st.dictionaries(st.sampled_from([*_SETTING_NAMES, "colour"]), _toml_values, max_size=4))
def test_settings_file_is_valid_or_one_line(tmp_path_factory, data: dict) -> None:
    import tomli_w

    from bayling_local.settings import Settings, load_settings

    path = tmp_path_factory.mktemp("settings") / "settings.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    try:
        loaded = load_settings(path, environ={})
    except UsageError as exc:
        assert str(path) in exc.message and "\n" not in exc.message
        return
    assert isinstance(loaded, Settings)


# --- the GGUF header reader ------------------------------------------------------------------


def _tiny_header() -> bytes:
    """A well-formed GGUF header (a few key/values, one tensor) to mutate."""

    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    kv = [
        string("general.architecture") + struct.pack("<I", 8) + string("llama"),
        string("llama.context_length") + struct.pack("<I", 4) + struct.pack("<I", 2048),
        string("tokenizer.ggml.tokens")
        + struct.pack("<I", 9)
        + struct.pack("<I", 8)
        + struct.pack("<Q", 2)
        + string("<s>")
        + string("<|eot_id|>"),
        string("tokenizer.ggml.bos_token_id") + struct.pack("<I", 4) + struct.pack("<I", 0),
    ]
    tensor = string("w") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<I", 0)
    tensor += struct.pack("<Q", 0)
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv)) + b"".join(kv) + tensor
    header += b"\x00" * (-len(header) % 32)
    return header + b"\x00" * 16


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf-fuzz")


def _check_header(path: Path, data: bytes) -> None:
    from bayling_local.gguf_file import inspect_gguf

    path.write_bytes(data)
    try:
        info = inspect_gguf(path)
    except ModelError as exc:
        assert "\n" not in exc.message
        return
    # whatever parsed must be usable by the code that reads it next
    info.format_metadata()
    _ = (info.architecture, info.context_length, info.quantization, info.name)


def test_the_seed_header_is_valid(gguf_dir: Path) -> None:
    from bayling_local.gguf_file import inspect_gguf

    path = gguf_dir / "seed.gguf"
    path.write_bytes(_tiny_header())
    info = inspect_gguf(path)
    assert info.architecture == "llama" and info.has_eot and info.tensor_count == 1


@FUZZ
@given(st.binary(max_size=512))
def test_gguf_reader_on_random_bytes(gguf_dir: Path, data: bytes) -> None:
    _check_header(gguf_dir / "random.gguf", data)


@FUZZ
@given(st.binary(max_size=400))
def test_gguf_reader_on_random_bytes_after_the_magic(gguf_dir: Path, tail: bytes) -> None:
    _check_header(gguf_dir / "magic.gguf", b"GGUF" + struct.pack("<I", 3) + tail)


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=255)),
        min_size=1,
        max_size=8,
    ),
    st.integers(min_value=0, max_value=600),
)
def test_gguf_reader_on_mutated_headers(
    gguf_dir: Path, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_tiny_header())
    for position, value in flips:
        if position < len(data):
            data[position] = value
    _check_header(
        gguf_dir / "mutated.gguf", bytes(data[: max(cut, 4)] if cut < len(data) else data)
    )


@pytest.mark.parametrize("field", ["kv_count", "tensor_count"])
def test_gguf_reader_on_huge_counts(gguf_dir: Path, field: str) -> None:
    data = bytearray(_tiny_header())
    offset = 8 if field == "tensor_count" else 16
    data[offset : offset + 8] = struct.pack("<Q", 2**63 - 1)
    _check_header(gguf_dir / "huge.gguf", bytes(data))


# --- segmentation ----------------------------------------------------------------------------

_prose = st.text(
    alphabet=st.sampled_from(list("ab cd.,!?;:。！？，、 \t\n\u3000日本語Ωé'\"”»)")),
    max_size=300,
)


@FUZZ
@given(_prose, st.integers(min_value=1, max_value=40))
def test_split_to_fit_loses_nothing(text: str, width: int) -> None:
    from bayling_local.segment import split_sentences, split_to_fit

    pieces = split_to_fit(text, lambda piece: len(piece) <= width)
    assert "".join(pieces) == text
    assert all(pieces) or pieces == [""] == [text]
    assert all(len(p) <= width for p in pieces if len(p) > 1)
    assert "".join(split_sentences(text)) == text


@FUZZ
@given(st.text(max_size=200))
def test_lines_round_trip(text: str) -> None:
    from bayling_local.segment import join_lines, split_lines

    lines = split_lines(text)
    assert join_lines(lines, [line.body for line in lines]) == text


# --- the model manifest ----------------------------------------------------------------------

_entry = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["m", "bayling-2-7b", "x:Q4_K_M"]), st.text(max_size=8)),
        "file": st.one_of(
            st.sampled_from(["m.gguf", "../x", "/etc/passwd", ".hidden", "a/b.gguf", "..", ""]),
            st.text(max_size=8),
        ),
        "size": st.one_of(st.integers(min_value=-5, max_value=10**9), st.text(max_size=3)),
        "sha256": st.text(max_size=4),
        "source": st.just("import:/x"),
        "quantization": st.sampled_from(["F32", 1]),
        "prompt_format": st.just("bayling"),
        "architecture": st.just("llama"),
        "added": st.just("2026-01-01T00:00:00+00:00"),
        "linked": st.one_of(st.booleans(), st.just("yes")),
    }
)
_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(
    st.one_of(
        st.builds(lambda models: {"format": 1, "models": models}, st.lists(_entry, max_size=3)),
        st.builds(lambda models: {"format": 1, "models": models}, _json_values),
        _json_values,
    )
)
def test_manifest_is_entries_or_one_line(document: object) -> None:
    from bayling_local.manifest import ManifestError, is_store_file_name, parse_manifest

    path = Path("/store/manifest.json")
    try:
        entries = parse_manifest(json.dumps(document).encode(), path)
    except ManifestError as exc:
        assert str(path) in exc.message and "\n" not in exc.message and exc.exit_code == 3
        return
    for entry in entries:
        assert entry.linked and os.path.isabs(entry.file) or is_store_file_name(entry.file)
        assert isinstance(entry.size, int) and entry.size >= 0


@FUZZ
@given(st.binary(max_size=300))
def test_manifest_bytes_are_entries_or_one_line(data: bytes) -> None:
    from bayling_local.manifest import ManifestError, parse_manifest

    try:
        parse_manifest(data, Path("/store/manifest.json"))
    except ManifestError as exc:
        assert "\n" not in exc.message


# --- input decoding --------------------------------------------------------------------------


@FUZZ
@given(
    st.text(min_size=1, max_size=100), st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"])
)
def test_text_in_any_unicode_encoding_comes_back(text: str, encoding: str) -> None:
    from bayling_local.inputs import decode_input

    if not text.strip() or "\x00" in text or text.startswith("\ufeff"):
        return
    try:
        decoded = decode_input(text.encode(encoding))
    except BaylingError as exc:  # control characters can make text look binary; never a crash
        assert "binary" in exc.message
        return
    assert decoded == text.replace("\r\n", "\n")


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_are_text_or_one_line(data: bytes) -> None:
    from bayling_local.inputs import decode_input

    try:
        decode_input(data)
    except UsageError as exc:
        assert "\n" not in exc.message


# --- the document parsers (their formats are the documents helper's; this only fuzzes) -------

_DOC_FORMATS = ["txt", "md", "srt", "vtt", "html", "po", "xliff", "docx", "epub"]
_doc_text = st.lists(
    st.sampled_from(
        list("ab <>/=\"'&;#:-.,\n\t[]()*_`!0123456789")
        + [
            "-->",
            "msgid ",
            "msgstr ",
            "<p>",
            "<tr",
            "1\n00:00:01,000 --> 00:00:02,000\n",
            "WEBVTT\n",
        ]
    ),
    max_size=60,
).map("".join)


@FUZZ
@given(st.sampled_from(_DOC_FORMATS), st.one_of(st.binary(max_size=200), _doc_text.map(str.encode)))
def test_document_parsers_load_or_say_why(name: str, data: bytes) -> None:
    from bayling_local.documents.formats import FORMATS, load

    try:
        document = load(data, FORMATS[name], "fuzz." + name)
    except BaylingError as exc:
        assert "\n" not in exc.message
        return
    blocks = document.blocks()
    rendered = document.render({})  # nothing translated: a document still comes out
    assert isinstance(rendered, bytes) and isinstance(blocks, list)
