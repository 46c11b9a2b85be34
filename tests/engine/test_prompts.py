"""Prompt formats: byte-exact with BayLing's renderer, Jinja == Python, format selection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bayling_local.errors import PromptError
from bayling_local.prompts import (
    BAYLING,
    BAYLING3,
    BAYLING3_SYSTEM,
    BAYLING_SYSTEM,
    FORMATS,
    Message,
    TemplateFormat,
    render_jinja,
    select_format,
    to_messages,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "bayling-80"


def bayling80_conversations() -> list[list[Message]]:
    """Every BayLing-80 multi-turn conversation, with assistant replies filled in between turns."""
    conversations = []
    for path in sorted(DATA.glob("BayLing-80.multiturn.*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            turns = json.loads(line)["text"]
            messages: list[Message] = []
            for index, turn in enumerate(turns):
                messages.append(Message("user", turn))
                if index < len(turns) - 1:
                    messages.append(Message("assistant", f"  Reply {index} to: {turn[:20]}\n"))
            conversations.append(messages)
    return conversations


CONVERSATIONS = bayling80_conversations()


def test_bayling80_copied() -> None:
    assert len(CONVERSATIONS) == 160


def test_bayling_exact_text() -> None:
    messages = [
        Message("user", "你好"),
        Message("assistant", "Hello!"),
        Message("user", "Translate: 猫"),
    ]
    expected = (
        "I am an intelligent language assistant developed by the NLP Group of ICT/CAS.\n"
        "Below is a dialog consisting of instructions and responses. Write a response that completes the request.\n"
        "\n"
        "### Instruction:\n你好\n"
        "### Response:\nHello!</s>\n"
        "### Instruction:\nTranslate: 猫\n"
        "### Response:\n"
    )
    assert BAYLING.render(messages) == expected


def test_bayling_system_replaces_default() -> None:
    text = BAYLING.render([Message("system", "Be terse."), Message("user", "hi")])
    assert text == "Be terse.\n### Instruction:\nhi\n### Response:\n"
    assert BAYLING_SYSTEM not in text


def test_bayling3_exact_text() -> None:
    messages = [
        Message("user", "  hi \n"),
        Message("assistant", " Hello! "),
        Message("user", "more"),
    ]
    expected = (
        "<|start_header_id|>system<|end_header_id|>\n\n" + BAYLING3_SYSTEM + "<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nmore<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert BAYLING3.render(messages) == expected
    assert "<|begin_of_text|>" not in expected  # the tokenizer adds BOS, once


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
@pytest.mark.parametrize("system", [None, "You translate legal texts.\n"])
@pytest.mark.parametrize("open_turn", [True, False])
def test_jinja_equals_python_on_bayling80(fmt, system, open_turn) -> None:
    for conversation in CONVERSATIONS:
        messages = ([Message("system", system)] if system else []) + conversation
        python = fmt.render(messages, add_generation_prompt=open_turn)
        jinja = render_jinja(fmt.jinja_template, messages, add_generation_prompt=open_turn)
        assert jinja == python


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=list(FORMATS))
def test_llama_cpp_python_renders_embedded_template_identically(fmt) -> None:
    """llama-cpp-python's own Jinja chat formatter (what a GGUF front end uses) agrees."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template=fmt.jinja_template, eos_token="</s>", bos_token="<s>")
    for conversation in CONVERSATIONS[:40]:
        rendered = formatter(messages=[m.as_dict() for m in conversation]).prompt
        assert rendered == fmt.render(conversation)


def test_render_parts_concatenate_to_render() -> None:
    for fmt in FORMATS.values():
        for conversation in CONVERSATIONS[:20]:
            complete = conversation + [Message("assistant", "final")]
            parts = fmt.render_parts(complete)
            assert "".join(text for text, _ in parts) == fmt.render(
                complete, add_generation_prompt=False
            )
            replies = [text for text, is_reply in parts if is_reply]
            assert len(replies) == sum(1 for m in complete if m.role == "assistant")


def test_bad_messages() -> None:
    with pytest.raises(PromptError):
        to_messages([{"role": "robot", "content": "x"}])
    with pytest.raises(PromptError):
        to_messages([{"role": "user"}])
    with pytest.raises(PromptError):
        to_messages([{"role": "user", "content": "a"}, {"role": "system", "content": "late"}])
    with pytest.raises(PromptError):
        render_jinja(BAYLING.jinja_template, [Message("user", "a"), Message("system", "b")])


def test_select_format_rules() -> None:
    # 1. the embedded template wins, even against the tokenizer's evidence
    choice = select_format(
        {"tokenizer.chat_template": BAYLING3.jinja_template, "tokenizer.ggml.model": "llama"}
    )
    assert choice.format is BAYLING3
    # a foreign template is used as it is
    choice = select_format(
        {"tokenizer.chat_template": "{{ messages[0]['content'] }}!", "_bos_token_text": "<s>"}
    )
    assert isinstance(choice.format, TemplateFormat)
    assert choice.format.render([Message("user", "x")]) == "x!"
    # 2. a known model, by its hub id: BayLing's own code gets this one wrong by substring match
    choice = select_format({"general.source.huggingface.repository": "ICTNLP/bayling-2-llama-3-8b"})
    assert choice.format is BAYLING3
    assert select_format({"general.name": "bayling-13b-v1.1"}).format is BAYLING
    # 3. the tokenizer
    assert select_format({"tokenizer.ggml.model": "gpt2"}, ["<|eot_id|>"]).format is BAYLING3
    assert select_format({"tokenizer.ggml.model": "llama"}).format is BAYLING
    # never from a substring of a file name
    assert (
        select_format(
            {"general.name": "my-bayling-llama-3-finetune", "tokenizer.ggml.model": "llama"}
        ).format
        is BAYLING
    )


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bayling_local", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_prompt_command_is_byte_exact(fmt: str) -> None:
    conversation = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "你好 "},
        {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "again"},
    ]
    result = run_cli("prompt", "--format", fmt, stdin=json.dumps(conversation, ensure_ascii=False))
    assert result.returncode == 0, result.stderr
    assert result.stdout == FORMATS[fmt].render(to_messages(conversation))
    assert result.stderr == ""


def test_prompt_command_bad_input() -> None:
    result = run_cli("prompt", "--format", "bayling", stdin="not json")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    result = run_cli("prompt", "--format", "bayling", stdin='[{"role": "x", "content": "y"}]')
    assert result.returncode == 2 and "role" in result.stderr
