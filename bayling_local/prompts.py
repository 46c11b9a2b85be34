"""BayLing's prompt formats, in Python and as Jinja chat templates.

This module is the single source of truth for how a conversation becomes model input. The
engine renders prompts with it, ``convert/`` embeds its Jinja templates in the GGUFs it writes,
and ``train/`` renders training examples with it. Both renderings are byte-exact with BayLing's
own ``bayling/conversation.py`` (see the field guide, section 2), and the test suite checks that
the Jinja template and the Python renderer agree on every BayLing-80 conversation.

The format for a model is picked from the model itself (:func:`select_format`): the GGUF's own
``tokenizer.chat_template`` first, then what the model registry knows of the model, then the
tokenizer. Never from a substring of a file name alone: BayLing's own code gets
``bayling-2-llama-3-8b`` wrong that way.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import ModelError, PromptError

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    """One turn of a conversation."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def to_messages(items: Iterable[Mapping[str, Any] | Message]) -> list[Message]:
    """Validate a list of ``{"role", "content"}`` objects (as JSON gives them) into messages."""
    messages: list[Message] = []
    for index, item in enumerate(items):
        if isinstance(item, Message):
            messages.append(item)
            continue
        if not isinstance(item, Mapping):
            raise PromptError(f"message {index} is not an object with 'role' and 'content'")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise PromptError(
                f"message {index} has role {role!r}; expected one of {', '.join(ROLES)}"
            )
        if not isinstance(content, str):
            raise PromptError(f"message {index} has no text 'content'")
        messages.append(Message(role, content))
    for index, message in enumerate(messages):
        if message.role == "system" and index != 0:
            raise PromptError(f"message {index}: a system message may only come first")
    return messages


def split_system(messages: Sequence[Message]) -> tuple[str | None, list[Message]]:
    """The leading system text (if any) and the remaining turns."""
    if messages and messages[0].role == "system":
        return messages[0].content, list(messages[1:])
    return None, list(messages)


@dataclass(frozen=True)
class PromptFormat:
    """How a conversation is written as text for one family of models."""

    name: str
    default_system: str
    stop_strings: tuple[str, ...]
    jinja_template: str
    description: str = ""

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        raise NotImplementedError

    def render_parts(self, messages: Sequence[Message]) -> list[tuple[str, bool]]:
        """The prompt as ``(text, is_assistant_reply)`` pieces, for masking training loss.

        Concatenating the texts gives ``render(messages, add_generation_prompt=False)``.
        An assistant piece holds exactly what the model must learn to produce, including the
        end-of-turn marker that tells it to stop.
        """
        raise NotImplementedError


# --- BayLing (LLaMA / Llama-2 based models) -------------------------------------------------

BAYLING_SYSTEM = (
    "I am an intelligent language assistant developed by the NLP Group of ICT/CAS.\n"
    "Below is a dialog consisting of instructions and responses. "
    "Write a response that completes the request.\n"
)

_BAYLING_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set system_message = " + json.dumps(BAYLING_SYSTEM) + " -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{{- system_message + '\\n' -}}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- '### Instruction:\\n' + message['content'] + '\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '### Response:\\n' + message['content'] + '</s>\\n' -}}"
    "{%- else -%}"
    "{{- raise_exception('a system message may only come first') -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '### Response:\\n' -}}{%- endif -%}"
)


class _BayLingFormat(PromptFormat):
    def render_parts(self, messages: Sequence[Message]) -> list[tuple[str, bool]]:
        system, turns = split_system(messages)
        parts: list[tuple[str, bool]] = [
            ((self.default_system if system is None else system) + "\n", False)
        ]
        for message in turns:
            if message.role == "user":
                parts.append(("### Instruction:\n" + message.content + "\n", False))
            elif message.role == "assistant":
                parts.append(("### Response:\n", False))
                parts.append((message.content + "</s>", True))
                parts.append(("\n", False))
            else:
                raise PromptError("a system message may only come first")
        return parts

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        text = "".join(piece for piece, _ in self.render_parts(messages))
        return text + "### Response:\n" if add_generation_prompt else text


BAYLING = _BayLingFormat(
    name="bayling",
    default_system=BAYLING_SYSTEM,
    stop_strings=("</s>", "\n### Instruction:"),
    jinja_template=_BAYLING_TEMPLATE,
    description="BayLing 1 and the Llama-2 based BayLing 2 models (### Instruction / ### Response)",
)


# --- BayLing-3 (BayLing-2-Llama-3-8B) --------------------------------------------------------

BAYLING3_SYSTEM = "I am BayLing developed by the NLP Group of ICT/CAS."
EOT = "<|eot_id|>"


def _header(role: str) -> str:
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n"


_BAYLING3_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set system_message = " + json.dumps(BAYLING3_SYSTEM) + " -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system_message + '<|eot_id|>' -}}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' or message['role'] == 'assistant' -%}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + (message['content'] | trim) + '<|eot_id|>' -}}"
    "{%- else -%}"
    "{{- raise_exception('a system message may only come first') -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{%- endif -%}"
)


class _BayLing3Format(PromptFormat):
    def render_parts(self, messages: Sequence[Message]) -> list[tuple[str, bool]]:
        system, turns = split_system(messages)
        system_text = self.default_system if system is None else system
        parts: list[tuple[str, bool]] = [(_header("system") + system_text + EOT, False)]
        for message in turns:
            if message.role == "system":
                raise PromptError("a system message may only come first")
            parts.append((_header(message.role), False))
            parts.append((message.content.strip() + EOT, message.role == "assistant"))
        return parts

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        text = "".join(piece for piece, _ in self.render_parts(messages))
        return text + _header("assistant") if add_generation_prompt else text


BAYLING3 = _BayLing3Format(
    name="bayling-3",
    default_system=BAYLING3_SYSTEM,
    stop_strings=(EOT, "<|end_of_text|>"),
    jinja_template=_BAYLING3_TEMPLATE,
    description="BayLing-2-Llama-3-8B (Llama-3 headers, <|eot_id|>)",
)

FORMATS: dict[str, PromptFormat] = {fmt.name: fmt for fmt in (BAYLING, BAYLING3)}


def get_format(name: str) -> PromptFormat:
    """Look a format up by name (``bayling`` or ``bayling-3``)."""
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise PromptError(f"unknown prompt format {name!r}; known: {', '.join(FORMATS)}") from None


# --- Jinja rendering (for templates embedded in GGUFs) ---------------------------------------
#
# A GGUF's chat template is code from the model's author: it runs sandboxed (no attribute
# access outside the sandbox's rules), within a time budget, an output budget and a cap on the
# size of strings and lists it builds. Any failure -- a syntax error, an error while rendering,
# too long, too much output -- is one :class:`ChatTemplateError` (exit code 3) that names the
# model and offers the project's own format for it.

TEMPLATE_TIME_LIMIT_S = 2.0
TEMPLATE_MIN_OUTPUT = 1 << 20  # characters; a prompt may be longer when its messages are
TEMPLATE_MAX_VALUE = 1 << 22  # characters or items one operation may build


class ChatTemplateError(ModelError):
    """A model's own chat template that cannot be used (exit code 3)."""


class _TemplateBudget(Exception):
    """Raised inside a render that ran too long or built too much."""


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, refusing operations that build huge values (``'x' * 10**9``)."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise _TemplateBudget("raises a number to a huge power")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list, tuple))
                    and isinstance(count, int)
                    and len(seq) * max(count, 0) > TEMPLATE_MAX_VALUE
                ):
                    raise _TemplateBudget("builds a huge string or list")
        result = super().call_binop(context, operator, left, right)
        if operator == "+" and isinstance(result, (str, list)) and len(result) > TEMPLATE_MAX_VALUE:
            raise _TemplateBudget("builds a huge string or list")
        return result


@cache
def _jinja_env() -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise_exception
    return env


@contextlib.contextmanager
def _time_budget(seconds: float) -> Iterator[None]:
    """Stop Python code running in this thread after ``seconds`` (a tracer checks the clock)."""
    deadline = time.monotonic() + seconds
    previous = sys.gettrace()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise _TemplateBudget(f"ran for more than {seconds:g} s")
        return tracer

    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(previous)


def _template_fault(exc: BaseException) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error on line {exc.lineno}: {exc.message}"
    if isinstance(exc, _TemplateBudget):
        return str(exc)
    if isinstance(exc, OverflowError):
        return "builds too large a range"
    if isinstance(exc, RecursionError):
        return "recurses too deeply"
    if isinstance(exc, MemoryError):
        return "needs too much memory"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def render_jinja(
    template: str,
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    time_limit: float = TEMPLATE_TIME_LIMIT_S,
) -> str:
    """Render a chat template the way llama.cpp front ends do, in a bounded sandbox.

    A template error (``raise_exception`` too) is a :class:`PromptError`; a template that does
    not parse, fails in another way, runs too long or builds too much raises
    :class:`_TemplateFault` for :class:`TemplateFormat` to name the model.
    """
    limit = TEMPLATE_MIN_OUTPUT + 4 * sum(len(m.content) for m in messages)
    try:
        compiled = _jinja_env().from_string(template)
    except TemplateSyntaxError as exc:
        raise _TemplateFault(_template_fault(exc)) from None
    except TemplateError as exc:
        raise _TemplateFault(_template_fault(exc)) from None
    pieces: list[str] = []
    size = 0
    try:
        with _time_budget(time_limit):
            for piece in compiled.generate(
                messages=[m.as_dict() for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=bos_token,
                eos_token=eos_token,
            ):
                size += len(piece)
                if size > limit:
                    raise _TemplateBudget(f"writes more than {limit} characters")
                pieces.append(piece)
    except TemplateError as exc:
        if "raise_exception" in template and not isinstance(exc, TemplateSyntaxError):
            # the template refused this conversation on purpose (e.g. roles out of order)
            raise PromptError(f"chat template failed: {exc}") from None
        raise _TemplateFault(_template_fault(exc)) from None
    except (_TemplateBudget, RecursionError, MemoryError) as exc:
        raise _TemplateFault(_template_fault(exc)) from None
    except Exception as exc:  # TypeError, OverflowError (sandbox ranges) ...: template code
        raise _TemplateFault(_template_fault(exc)) from None
    return "".join(pieces)


class _TemplateFault(Exception):
    """A template that cannot be used, with the reason; not shown to users as it is."""


SAMPLE_CONVERSATION = (
    Message("system", "You are a helpful assistant."),
    Message("user", "Translate into German: Good morning."),
    Message("assistant", "Guten Morgen."),
    Message("user", "And into French?"),
)


@dataclass(frozen=True)
class TemplateFormat(PromptFormat):
    """A model's own Jinja chat template, used as it is (bounded, see above)."""

    bos_token: str = ""
    eos_token: str = ""
    model: str = "the model"  # named in errors
    fallback: str | None = None  # the project's own format for this model, if it knows one

    def fault(self, reason: str) -> ChatTemplateError:
        if self.fallback:
            offer = f"use the project's own format with --prompt-format {self.fallback}"
        else:
            offer = "use --prompt-format bayling or --prompt-format bayling-3"
        return ChatTemplateError(
            f"the chat template of {self.model} cannot be used ({reason}); {offer}"
        )

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        try:
            text = render_jinja(
                self.jinja_template,
                messages,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except _TemplateFault as exc:
            raise self.fault(str(exc)) from None
        # The tokenizer adds BOS itself; a template that writes it too would double it.
        if self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token) :]
        return text

    def check(self) -> None:
        """Render a sample conversation once, so a broken template fails at load, not later."""
        try:
            self.render(list(SAMPLE_CONVERSATION))
        except PromptError:
            # a template may refuse system messages on purpose; that alone is fine
            with contextlib.suppress(PromptError):
                self.render(list(SAMPLE_CONVERSATION[1:]))


# --- choosing the format for a model ---------------------------------------------------------


@dataclass(frozen=True)
class FormatChoice:
    """The chosen format and the evidence it was chosen on (shown by ``--verbose``)."""

    format: PromptFormat
    reason: str


def select_format(metadata: Mapping[str, Any], tokens: Sequence[str] | None = None) -> FormatChoice:
    """Pick the prompt format from what a GGUF says about itself.

    ``metadata`` holds the GGUF key/value pairs (strings and numbers); ``tokens`` the
    vocabulary when it is at hand (needed only for the last rule).
    """
    from .registry import find_known_model  # registry imports prompts; avoid a cycle

    template = metadata.get("tokenizer.chat_template")
    if isinstance(template, str) and template.strip():
        for fmt in FORMATS.values():
            if template == fmt.jinja_template:
                return FormatChoice(fmt, "the model's embedded chat template")
        known = find_known_model(metadata)
        chosen = TemplateFormat(
            name="gguf-template",
            default_system="",
            stop_strings=(EOT,) if tokens and EOT in tokens else (),
            jinja_template=template,
            description="the chat template embedded in the GGUF",
            bos_token=str(metadata.get("_bos_token_text", "")),
            eos_token=str(metadata.get("_eos_token_text", "")),
            model=_model_label(metadata),
            fallback=known.prompt_format if known is not None else None,
        )
        chosen.check()  # a broken template fails now, with the model named, not mid-session
        return FormatChoice(chosen, "the model's embedded chat template (not a BayLing one)")
    return _format_without_template(metadata, tokens)


def _model_label(metadata: Mapping[str, Any]) -> str:
    for key in ("_file_name", "general.name"):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:120]
    return "the model"


def _format_without_template(
    metadata: Mapping[str, Any], tokens: Sequence[str] | None
) -> FormatChoice:
    from .registry import find_known_model

    known = find_known_model(metadata)
    if known is not None:
        return FormatChoice(get_format(known.prompt_format), f"known model {known.name}")
    tokenizer_model = metadata.get("tokenizer.ggml.model")
    if tokenizer_model == "gpt2" and tokens is not None and EOT in tokens:
        return FormatChoice(BAYLING3, "Llama-3 vocabulary with <|eot_id|>")
    if tokenizer_model == "llama":
        return FormatChoice(BAYLING, "LLaMA SentencePiece vocabulary")
    return FormatChoice(BAYLING, "no evidence; BayLing's default format")
