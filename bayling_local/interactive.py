"""Interactive translation, BayLing's signature workflow, without any UI.

A session holds one source text and its target language. The first turn of its conversation
is BayLing's translation instruction; every later user turn is a refinement ("more formal",
"use 'Ballon d'Or' for 金球奖", "now into German"). Every assistant reply is a *version*.

Versions form a tree: a refinement continues the conversation of the version that is current
when it is asked, so restoring an older version and refining it starts a branch instead of
throwing the later versions away. :meth:`InteractiveSession.conversation` rebuilds the exact
message list the model saw for any version.

:func:`diff_words` compares two versions word by word (character by character in Chinese,
Japanese and Korean, which have no spaces between words) for the UI to highlight.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

from .errors import Cancelled, UsageError
from .languages import Language
from .prompts import Message

if TYPE_CHECKING:  # the engine (numpy, gguf, llama.cpp) is imported only when a model runs
    from .engine import Engine, GenerationStats, SamplingConfig
    from .history import MessageRecord, SessionRecord
    from .translate import InstructionLang

DiffOp = Literal["equal", "insert", "delete"]
VersionStatus = Literal["done", "stopped", "cut"]
OnText = Callable[[str], None]


# --- diff ----------------------------------------------------------------------------------

# One CJK character (Han, kana, Hangul, CJK punctuation) per token; otherwise runs of word
# characters, runs of spaces, or single other characters.
_CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
)
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|\s+|[^\w\s]", re.UNICODE)


def diff_tokens(text: str) -> list[str]:
    """Split text into the units a diff compares; ``"".join`` gives the text back."""
    return _TOKEN.findall(text)


def diff_words(old: str, new: str) -> list[tuple[DiffOp, str]]:
    """Spans that turn ``old`` into ``new``: a replacement is a delete then an insert.

    A run of spaces between two changes joins them ("Golden Ball" -> "Ballon d'Or" is one
    replacement, not two around an unchanged space), and adjacent spans of the same kind are
    merged, so the UI draws few, long runs.
    """
    a, b = diff_tokens(old), diff_tokens(new)
    # Regions: [old_text, new_text, changed]
    regions: list[list] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        old_text, new_text = "".join(a[i1:i2]), "".join(b[j1:j2])
        changed = tag != "equal"
        if regions and regions[-1][2] == changed and changed:
            regions[-1][0] += old_text
            regions[-1][1] += new_text
        else:
            regions.append([old_text, new_text, changed])
    merged: list[list] = []
    for index, region in enumerate(regions):
        between_changes = (
            not region[2]
            and region[0].isspace()
            and 0 < index < len(regions) - 1
            and regions[index - 1][2]
            and regions[index + 1][2]
        )
        if between_changes or (region[2] and merged and merged[-1][2]):
            merged[-1][0] += region[0]
            merged[-1][1] += region[1]
            merged[-1][2] = True
        else:
            merged.append(list(region))
    spans: list[tuple[DiffOp, str]] = []
    for old_text, new_text, changed in merged:
        if not changed:
            spans.append(("equal", old_text))
            continue
        if old_text:
            spans.append(("delete", old_text))
        if new_text:
            spans.append(("insert", new_text))
    return spans


# --- the session ---------------------------------------------------------------------------


@dataclass
class Version:
    """One assistant reply of an interactive translation."""

    text: str
    request: str  # the user turn that produced it: the instruction, or a refinement
    parent: int | None  # index of the version it refines; None for the first translation
    status: VersionStatus = "done"
    stats: GenerationStats | None = None
    record_id: int | None = None  # its message id in the history, once saved

    @property
    def is_refinement(self) -> bool:
        return self.parent is not None


@dataclass
class InteractiveSession:
    """A source text, its languages, and every version of its translation."""

    source_text: str
    target: Language
    source: Language | None = None
    instruction_lang: InstructionLang = "en"
    constraints: tuple[str, ...] = ()
    versions: list[Version] = field(default_factory=list)
    current: int | None = None  # index of the version in use (refinements continue it)
    record_id: int | None = None  # its session id in the history, once saved

    @property
    def instruction(self) -> str:
        """BayLing's translation instruction for the source text: the conversation's first turn."""
        if self.versions:
            return self.versions[0].request
        from .translate import build_instruction

        return build_instruction(
            self.source_text,
            self.target,
            instruction_lang=self.instruction_lang,
            constraints=self.constraints,
        )

    @property
    def current_version(self) -> Version | None:
        return None if self.current is None else self.versions[self.current]

    def lineage(self, index: int) -> list[int]:
        """Indices of the versions from the first translation down to ``index``."""
        self._check(index)
        chain: list[int] = []
        at: int | None = index
        while at is not None:
            chain.append(at)
            at = self.versions[at].parent
        return chain[::-1]

    def conversation(self, index: int | None = None, *, system: str | None = None) -> list[Message]:
        """The messages up to and including version ``index`` (default: the current one)."""
        index = self.current if index is None else index
        messages = [Message("system", system)] if system else []
        if index is None:
            return messages
        for at in self.lineage(index):
            version = self.versions[at]
            messages += [Message("user", version.request), Message("assistant", version.text)]
        return messages

    def refinement_messages(self, refinement: str, *, system: str | None = None) -> list[Message]:
        """The current version's conversation plus a new refinement turn."""
        if self.current is None:
            raise UsageError("translate the text first, then refine the translation")
        refinement = refinement.strip()
        if not refinement:
            raise UsageError("type how the translation should change, e.g. 'more formal'")
        return [*self.conversation(system=system), Message("user", refinement)]

    def add_version(
        self,
        text: str,
        request: str,
        *,
        refines: bool,
        status: VersionStatus = "done",
        stats: GenerationStats | None = None,
    ) -> int:
        """Record a reply; it becomes the current version. Returns its index."""
        parent = self.current if refines else None
        if refines and parent is None:
            raise UsageError("a refinement needs a version to refine")
        self.versions.append(Version(text, request, parent, status, stats))
        self.current = len(self.versions) - 1
        return self.current

    def restore(self, index: int) -> Version:
        """Make version ``index`` current: copying and refining continue from it."""
        self._check(index)
        self.current = index
        return self.versions[index]

    def diff(self, old: int, new: int) -> list[tuple[DiffOp, str]]:
        """Word-level differences from version ``old`` to version ``new``."""
        self._check(old)
        self._check(new)
        return diff_words(self.versions[old].text, self.versions[new].text)

    def label(self, index: int) -> str:
        """A short line naming a version: its number and what asked for it."""
        version = self.versions[index]
        what = version.request if version.is_refinement else "translation"
        what = " ".join(what.split())
        if len(what) > 40:
            what = what[:39] + "…"
        mark = {"done": "", "stopped": " (stopped)", "cut": " (cut off)"}[version.status]
        base = (
            f" ← v{version.parent + 1}"
            if version.parent is not None and version.parent != index - 1
            else ""
        )
        return f"v{index + 1}{base} · {what}{mark}"

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self.versions):
            raise UsageError(
                f"there is no version {index + 1} (the session has {len(self.versions)})"
            )

    @classmethod
    def from_history(
        cls,
        record: SessionRecord,
        messages: Sequence[MessageRecord],
        *,
        target: Language,
        source: Language | None = None,
    ) -> InteractiveSession:
        """Rebuild a saved session: each assistant message is a version, its user turn the request."""
        session = cls(source_text=record.source_text or "", target=target, source=source)
        session.record_id = record.id
        index_of: dict[int, int] = {}
        request = ""
        for message in messages:
            if message.role == "user":
                request = message.content
            elif message.role == "assistant":
                parent = index_of.get(message.parent_id) if message.parent_id is not None else None
                status = cast(
                    VersionStatus,
                    message.status if message.status in ("done", "stopped", "cut") else "done",
                )
                session.versions.append(
                    Version(message.content, request, parent, status, None, message.id)
                )
                index_of[message.id] = len(session.versions) - 1
        if session.versions:
            session.current = index_of.get(record.current_version or -1, len(session.versions) - 1)
        return session


# --- running it ----------------------------------------------------------------------------


@dataclass
class Reply:
    """What one model call produced, whether or not it ran to the end."""

    text: str
    status: VersionStatus
    stats: GenerationStats
    # Tokens in the model's context at the end of the call (prompt + reply); None when the
    # text was translated in several pieces, each with a context of its own.
    context_used: int | None = None


def status_of(finish_reason: str | None) -> VersionStatus:
    """``cut`` when the token or context limit ended the reply: the UI must say so."""
    if finish_reason == "cancelled":
        return "stopped"
    if finish_reason in ("length", "context"):
        return "cut"
    return "done"


class InteractiveTranslator:
    """Runs the model for a session: the first translation, then refinements.

    Blocking; the UI calls it from a worker thread. ``on_text`` receives the reply as it
    streams, ``cancel`` stops it between tokens (the partial text is kept, marked stopped).
    """

    def __init__(
        self,
        engine: Engine,
        sampling: SamplingConfig | None = None,
        *,
        system: str | None = None,
    ) -> None:
        from .translate import TRANSLATION_SAMPLING

        self.engine = engine
        self.sampling = sampling or TRANSLATION_SAMPLING
        self.system = system

    def translate(
        self,
        session: InteractiveSession,
        *,
        on_text: OnText | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """The first translation (line structure kept, long text split to fit the context)."""
        from .engine import GenerationStats
        from .translate import Translator

        translator = Translator(
            self.engine,
            self.sampling,
            instruction_lang=session.instruction_lang,
            system=self.system,
        )
        streamed: list[str] = []

        def collect(text: str) -> None:
            streamed.append(text)
            if on_text is not None:
                on_text(text)

        try:
            result = translator.translate(
                session.source_text,
                session.target,
                source=session.source,
                constraints=session.constraints,
                on_text=collect,
                cancel=cancel,
            )
        except Cancelled:
            return Reply(
                "".join(streamed).strip(), "stopped", GenerationStats(finish_reason="cancelled")
            )
        status: VersionStatus = "cut" if result.truncated_pieces else "done"
        stats = result.stats
        used = stats.prompt_tokens + stats.generated_tokens if result.pieces == 1 else None
        return Reply(result.text, status, stats, used)

    def refine(
        self,
        session: InteractiveSession,
        refinement: str,
        *,
        on_text: OnText | None = None,
        cancel: threading.Event | None = None,
    ) -> Reply:
        """A new version from the current one and a refinement turn."""
        messages = session.refinement_messages(refinement, system=self.system)
        return stream_reply(self.engine, messages, self.sampling, on_text=on_text, cancel=cancel)


def stream_reply(
    engine: Engine,
    messages: Sequence[Message],
    sampling: SamplingConfig,
    *,
    on_text: OnText | None = None,
    cancel: threading.Event | None = None,
) -> Reply:
    """Generate the next assistant turn, streaming it without its leading whitespace."""
    generation = engine.chat(messages, sampling, cancel=cancel)
    leading = True
    for piece in generation:
        if leading:  # the model's leading whitespace is not part of the reply
            piece = piece.lstrip()
            leading = not piece
        if piece and on_text is not None:
            on_text(piece)
    stats = generation.stats
    used = stats.prompt_tokens + stats.generated_tokens
    return Reply(generation.text.strip(), status_of(stats.finish_reason), stats, used)
