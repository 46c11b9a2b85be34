"""A real LLaMA model whose output is known in advance, for testing streaming and stopping.

A random tiny model rarely emits its end-of-turn token, so stop handling cannot be tested on
it. This rewrites a tiny checkpoint's weights so that, whatever the prompt, greedy decoding
produces a fixed chain of tokens and then a chosen end token:

- attention and MLP outputs are zeroed, so the last hidden state is the current token's
  embedding alone;
- chain tokens get distinct basis-vector embeddings, every other token shares one more;
- ``lm_head`` maps each basis vector to the next token of the chain, the last to ``end``.

The result goes through ``convert/`` and llama.cpp like any other model.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def make_scripted_checkpoint(src_dir: Path, out_dir: Path, chain: list[int], end: int) -> Path:
    """Copy the checkpoint in ``src_dir`` to ``out_dir``, scripted to say ``chain`` then ``end``."""
    import torch
    from transformers import LlamaForCausalLM

    if len(set(chain)) != len(chain) or end in chain:
        raise ValueError("chain tokens must be distinct and differ from the end token")
    model = LlamaForCausalLM.from_pretrained(src_dir, dtype=torch.float32)
    hidden = model.config.hidden_size
    if len(chain) + 1 > hidden:
        raise ValueError("chain longer than the hidden size")
    scale = 4.0
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        embed = model.model.embed_tokens.weight
        embed.zero_()
        embed[:, 0] = scale  # every token not in the chain: basis vector 0
        for index, token in enumerate(chain):
            embed[token].zero_()
            embed[token, index + 1] = scale
        head = model.lm_head.weight
        head.zero_()
        targets = [*chain, end]  # basis 0 -> chain[0], basis k -> chain[k] (or end)
        for basis, token in enumerate(targets):
            head[token, basis] = 10.0
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    for name in TOKENIZER_FILES:
        if (src_dir / name).is_file():
            shutil.copy(src_dir / name, out_dir / name)
    return out_dir


@dataclass(frozen=True)
class Scripted:
    """A converted scripted model and what it says."""

    gguf: Path
    text: str
    tokens: int


def build_scripted(tmp_path_factory, checkpoint: Path, text: str, end_token: str) -> Scripted:
    """Script the tiny checkpoint to say ``text`` then ``end_token``, and convert it to GGUF."""
    from transformers import AutoTokenizer

    from bayling_convert import convert_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    chain = tokenizer.encode(text, add_special_tokens=False)
    end = tokenizer.convert_tokens_to_ids(end_token)
    root = tmp_path_factory.mktemp("scripted")
    hf_dir = make_scripted_checkpoint(checkpoint, root / "hf", chain, end)
    gguf = convert_checkpoint(hf_dir, root / "scripted.gguf", outtype="f32", show_progress=False)
    return Scripted(gguf, text, len(chain))
