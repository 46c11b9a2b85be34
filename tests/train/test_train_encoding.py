"""Assistant-only loss masks against the prompt formats, and packing without cross-talk."""

from __future__ import annotations

import pytest
import torch

from bayling_local.prompts import BAYLING, BAYLING3, EOT, Message
from bayling_train.encoding import IGNORE, block_causal_mask, collate, encode, pack, prompt_ids
from bayling_train.sft import forward_logits

CONVERSATION = [
    Message(
        "user", "Provide the German translation for this sentence: 很抱歉，您点的餐可能会晚到一会。"
    ),
    Message("assistant", "Es tut mir leid, dass Ihre Bestellung später kommt."),
    Message("user", "Now translate it into English.\nMake sure to include these words: order"),
    Message("assistant", "I'm sorry that your order is running late."),
    Message("user", "把它翻译回中文。"),
    Message("assistant", "很抱歉，您点的餐可能会晚到一会。"),
]


@pytest.fixture(scope="module")
def spm_tokenizer(tiny_spm_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_spm_checkpoint))


@pytest.fixture(scope="module")
def bpe_tokenizer(tiny_bpe_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_bpe_checkpoint))


def _runs(labels: list[int]) -> list[tuple[int, int]]:
    """[start, end) of each stretch of trained tokens."""
    runs, start = [], None
    for i, label in enumerate([*labels, IGNORE]):
        if label != IGNORE and start is None:
            start = i
        elif label == IGNORE and start is not None:
            runs.append((start, i))
            start = None
    return runs


@pytest.mark.parametrize(
    ("fmt", "tokenizer_name", "end"),
    [(BAYLING, "spm_tokenizer", "</s>"), (BAYLING3, "bpe_tokenizer", EOT)],
)
def test_mask_matches_the_prompt_format_token_by_token(fmt, tokenizer_name, end, request):
    tokenizer = request.getfixturevalue(tokenizer_name)
    encoded = encode(CONVERSATION, fmt, tokenizer)
    assert len(encoded.input_ids) == len(encoded.labels)
    runs = _runs(encoded.labels)
    replies = [m for m in CONVERSATION if m.role == "assistant"]
    assert len(runs) == len(replies)  # every assistant turn, and nothing else
    for turn, ((start, stop), reply) in enumerate(zip(runs, replies)):
        ids = encoded.input_ids[start:stop]
        assert encoded.labels[start:stop] == ids  # labels are the tokens themselves
        # The trained tokens spell the reply and its end-of-turn marker, exactly.
        assert tokenizer.decode(ids) == reply.content + end
        assert ids[-1] == tokenizer.convert_tokens_to_ids(end)
        # Everything before is exactly the prompt the app sends for this turn.
        history = CONVERSATION[: 2 * turn + 1]
        assert encoded.input_ids[:start] == prompt_ids(history, fmt, tokenizer)
    assert encoded.input_ids[0] == tokenizer.bos_token_id and encoded.labels[0] == IGNORE


def test_system_text_and_instructions_are_never_trained(spm_tokenizer):
    messages = [Message("system", "Answer briefly."), *CONVERSATION[:2]]
    encoded = encode(messages, BAYLING, spm_tokenizer)
    start, _ = _runs(encoded.labels)[0]
    prompt = spm_tokenizer.decode(encoded.input_ids[1:start])
    assert (
        prompt
        == "Answer briefly.\n### Instruction:\n" + CONVERSATION[0].content + "\n### Response:\n"
    )


@pytest.fixture(scope="module")
def tiny_model(tiny_spm_checkpoint):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_spm_checkpoint), dtype=torch.float32)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("explicit_mask", [False, True])
def test_packed_examples_do_not_see_each_other(tiny_model, spm_tokenizer, attention, explicit_mask):
    """Each example's logits in a packed row equal its logits alone."""
    examples = [
        encode(CONVERSATION[:2], BAYLING, spm_tokenizer),
        encode(CONVERSATION[2:4], BAYLING, spm_tokenizer),
        encode(CONVERSATION[4:6], BAYLING, spm_tokenizer),
    ]
    rows = pack(examples, seq_len=sum(len(e) for e in examples) + 7)
    assert len(rows) == 1
    tiny_model.set_attn_implementation(attention)
    batch = collate(rows + [pack(examples[:1], 1000)[0]], pad_id=0, explicit_mask=explicit_mask)
    with torch.no_grad():
        packed = forward_logits(tiny_model, batch)
        offset = 0
        for example in examples:
            alone = tiny_model(input_ids=torch.tensor([example.input_ids])).logits[0]
            torch.testing.assert_close(
                packed[0, offset : offset + len(example)], alone, atol=1e-5, rtol=1e-4
            )
            offset += len(example)
        # The second (shorter, padded) row holds the first example again.
        alone = tiny_model(input_ids=torch.tensor([examples[0].input_ids])).logits[0]
        torch.testing.assert_close(packed[1, : len(examples[0])], alone, atol=1e-5, rtol=1e-4)
    assert (batch["labels"][0, offset:] == IGNORE).all()


def test_block_causal_mask_shape():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0]])
    allowed = block_causal_mask(positions)[0, 0] == 0
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 0, 1, 1, 0],
            [0, 0, 0, 0, 0, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(allowed, expected)


def test_pack_keeps_examples_whole_and_in_order(spm_tokenizer):
    examples = [encode(CONVERSATION[i : i + 2], BAYLING, spm_tokenizer) for i in (0, 2, 4, 0, 2)]
    limit = len(examples[0]) + len(examples[1])
    rows = pack(examples, seq_len=limit)
    assert [len(r) for r in rows] and all(len(r) <= limit for r in rows)
    assert sum((r.input_ids for r in rows), []) == sum((e.input_ids for e in examples), [])
    assert len(pack(examples, seq_len=limit, packing=False)) == len(examples)


def test_prompt_labels_cover_the_rest_of_each_example(spm_tokenizer):
    """Optional prompt loss: every real non-assistant token but an example's first (BOS)."""
    examples = [
        encode(CONVERSATION[:2], BAYLING, spm_tokenizer),
        encode(CONVERSATION[2:4], BAYLING, spm_tokenizer),
    ]
    rows = pack(examples, seq_len=1000)
    batch = collate(rows + [pack(examples[:1], 1000)[0]], pad_id=0)
    prompt, labels, ids = batch["prompt_labels"], batch["labels"], batch["input_ids"]
    assert not ((prompt != IGNORE) & (labels != IGNORE)).any()  # disjoint from the reply tokens
    first = len(examples[0])
    starts = [0, first]
    for position in range(len(rows[0])):
        trained = labels[0, position] != IGNORE
        expected = IGNORE if position in starts or trained else ids[0, position]
        assert prompt[0, position] == expected
    assert (prompt[1, first:] == IGNORE).all()  # padding is never a target
