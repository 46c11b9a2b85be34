"""Conversations to token ids with an assistant-only loss mask, and packing.

A conversation is rendered by :mod:`bayling_local.prompts` (the same code the app prompts
with) and tokenized *as one text*, exactly as llama.cpp tokenizes a prompt, so the model
trains on the token sequences it later sees. The mask comes from the character spans that
``render_parts`` marks as assistant replies: a token is trained on when it starts inside one.
That covers every assistant turn and its end-of-turn marker (``</s>``, ``<|eot_id|>``), and
nothing of the system text, the instructions or the role headers.

Packing concatenates examples into rows of at most ``seq_len`` tokens. Positions restart at 0
for every example, and attention never crosses from one example to another: transformers
turns restarting ``position_ids`` into a block-diagonal causal mask (sdpa, eager) or variable
length attention (flash-attention); :func:`block_causal_mask` builds that mask explicitly for
versions or kernels that do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from bayling_local.errors import UsageError
from bayling_local.prompts import Message, PromptFormat

IGNORE = -100


@dataclass
class Encoded:
    """One tokenized conversation."""

    input_ids: list[int]
    labels: list[int]  # the token id where trained on, IGNORE elsewhere

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_trained(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def assistant_spans(parts: Sequence[tuple[str, bool]]) -> list[tuple[int, int]]:
    """Character ranges of the assistant pieces in the concatenated text."""
    spans, position = [], 0
    for text, is_assistant in parts:
        if is_assistant:
            spans.append((position, position + len(text)))
        position += len(text)
    return spans


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer starts a text with BOS (as llama.cpp does for these models)."""
    cached = getattr(tokenizer, "_bayling_adds_bos", None)
    if cached is None:
        ids = tokenizer("a", add_special_tokens=True)["input_ids"]
        cached = (
            bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id
        )
        tokenizer._bayling_adds_bos = cached
    return cached


def encode(messages: Sequence[Message], fmt: PromptFormat, tokenizer) -> Encoded:
    """Tokenize a conversation and mark the assistant tokens (with one BOS, as llama.cpp adds)."""
    parts = fmt.render_parts(messages)
    text = "".join(piece for piece, _ in parts)
    spans = assistant_spans(parts)
    try:
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:
        raise UsageError(
            "the tokenizer gives no character offsets; a fast (tokenizers) tokenizer is needed"
        ) from None
    ids = list(encoding["input_ids"])
    labels = []
    span_index = 0
    for token, (start, _end) in zip(ids, encoding["offset_mapping"]):
        while span_index < len(spans) and start >= spans[span_index][1]:
            span_index += 1
        inside = span_index < len(spans) and spans[span_index][0] <= start < spans[span_index][1]
        labels.append(token if inside else IGNORE)
    if adds_bos(tokenizer):
        ids, labels = [tokenizer.bos_token_id, *ids], [IGNORE, *labels]
    return Encoded(ids, labels)


def prompt_ids(messages: Sequence[Message], fmt: PromptFormat, tokenizer) -> list[int]:
    """The ids of a generation prompt, tokenized the same way as :func:`encode`."""
    text = fmt.render(messages, add_generation_prompt=True)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return [tokenizer.bos_token_id, *ids] if adds_bos(tokenizer) else ids


# --- packing ---------------------------------------------------------------------------------


@dataclass
class Row:
    """Examples packed into one training row."""

    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)

    def add(self, example: Encoded) -> None:
        self.input_ids += example.input_ids
        self.labels += example.labels
        self.position_ids += range(len(example))

    def __len__(self) -> int:
        return len(self.input_ids)


def pack(examples: Sequence[Encoded], seq_len: int, *, packing: bool = True) -> list[Row]:
    """Rows of at most ``seq_len`` tokens, examples kept whole and in order.

    Without packing every example gets its own row. Examples longer than ``seq_len`` must be
    filtered out before (see :func:`split_by_length`).
    """
    rows: list[Row] = []
    current = Row()
    for example in examples:
        if len(example) > seq_len:
            raise ValueError(f"example of {len(example)} tokens exceeds seq_len {seq_len}")
        if len(current) and (not packing or len(current) + len(example) > seq_len):
            rows.append(current)
            current = Row()
        current.add(example)
    if len(current):
        rows.append(current)
    return rows


def split_by_length(examples: Sequence[Encoded], seq_len: int) -> tuple[list[Encoded], int]:
    """Keep examples that fit in ``seq_len`` and train on at least one token; count the rest."""
    kept = [e for e in examples if len(e) <= seq_len and e.n_trained > 0]
    return kept, len(examples) - len(kept)


def collate(
    rows: Sequence[Row], pad_id: int, *, explicit_mask: bool = False
) -> dict[str, torch.Tensor]:
    """Pad rows to the longest and stack them as model inputs.

    Padding forms its own segment (positions from 0, labels ignored), so it attends to nothing
    real and nothing real attends to it. With ``explicit_mask`` the block-diagonal causal mask
    is passed as a 4D additive mask instead of being left to transformers.
    """
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row)
        input_ids[i, :n] = torch.tensor(row.input_ids)
        labels[i, :n] = torch.tensor(row.labels)
        position_ids[i, :n] = torch.tensor(row.position_ids)
        position_ids[i, n:] = torch.arange(width - n)
    # The prompt's own tokens (not padding, not an example's first token), for an optional
    # language-modelling loss on the input text.
    real = torch.arange(width)[None, :] < torch.tensor([len(row) for row in rows])[:, None]
    prompt_labels = torch.where(real & (labels == IGNORE) & (position_ids > 0), input_ids, IGNORE)
    batch = {
        "input_ids": input_ids,
        "labels": labels,
        "position_ids": position_ids,
        "prompt_labels": prompt_labels,
    }
    if explicit_mask:
        batch["attention_mask"] = block_causal_mask(position_ids)
    return batch


def segments(position_ids: torch.Tensor) -> torch.Tensor:
    """Which example each token belongs to: a new one starts wherever the position drops to 0."""
    return torch.cumsum((position_ids == 0).long(), dim=-1)


def block_causal_mask(
    position_ids: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Additive 4D mask ``(batch, 1, q, k)``: 0 where a token may attend, a large negative
    number elsewhere -- causal inside each example, nothing across examples."""
    seg = segments(position_ids)
    width = position_ids.shape[-1]
    causal = torch.ones(width, width, dtype=torch.bool, device=position_ids.device).tril()
    allowed = causal[None] & (seg[:, :, None] == seg[:, None, :])
    mask = torch.zeros(allowed.shape, dtype=dtype, device=position_ids.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]
