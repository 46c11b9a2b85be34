"""Building the model and tokenizer a run trains: from a checkpoint or from scratch, full or LoRA.

A run from scratch writes its starting point to ``RUN_DIR/base`` (tokenizer and initial
weights), so resuming and exporting never depend on re-creating it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from bayling_local.errors import ModelError, UsageError
from bayling_local.prompts import get_format

from .config import RunConfig
from .conversations import read_jsonl
from .spm import save_tokenizer, train_sentencepiece

BASE_DIR = "base"


def cuda_available() -> bool:
    return torch.cuda.is_available()


def pick_precision(config: RunConfig) -> str:
    """accelerate's mixed_precision: bf16 where the GPU has it, fp32 on CPU."""
    wanted = config.train.precision
    if wanted == "auto":
        return "bf16" if cuda_available() and torch.cuda.is_bf16_supported() else "no"
    if wanted in ("bf16", "fp16") and not cuda_available():
        raise UsageError(f"train.precision {wanted} needs a GPU; use auto or fp32 on CPU")
    return "no" if wanted == "fp32" else wanted


def pick_attention(config: RunConfig) -> str:
    wanted = config.model.attn_implementation
    if wanted == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise UsageError("attn_implementation flash_attention_2 needs the flash-attn package")
    if wanted != "auto":
        return wanted
    if cuda_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load a tokenizer from {path}: {str(exc).splitlines()[0]}"
        ) from None
    return tokenizer


def prepare_base(config: RunConfig, run_dir: Path) -> tuple[str, object]:
    """The directory or hub id to load the starting model from, and its tokenizer."""
    if config.model.base is not None:
        tokenizer = load_tokenizer(config.model.tokenizer or config.model.base)
        return config.model.base, tokenizer
    base_dir = run_dir / BASE_DIR
    if (base_dir / "config.json").exists():
        return str(base_dir), load_tokenizer(str(base_dir))
    if config.model.tokenizer is not None:
        tokenizer = load_tokenizer(config.model.tokenizer)
    else:
        assert config.model.train_tokenizer is not None
        tokenizer = train_sentencepiece(
            _tokenizer_text(config),
            base_dir,
            vocab_size=config.model.train_tokenizer.vocab_size,
            seed=config.train.seed,
        )
    _init_scratch(
        config, tokenizer, base_dir, tokenizer_source=config.model.tokenizer or str(base_dir)
    )
    return str(base_dir), load_tokenizer(str(base_dir))


def _tokenizer_text(config: RunConfig) -> list[str]:
    """The training conversations as rendered text, without the literal end-of-turn marker."""
    fmt = get_format(config.model.prompt_format)
    texts = []
    for path in config.data.train:
        for example in read_jsonl(path):
            texts.append(
                fmt.render(example.messages, add_generation_prompt=False).replace("</s>", "\n")
            )
    return texts


def _init_scratch(config: RunConfig, tokenizer, base_dir: Path, *, tokenizer_source: str) -> None:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    shape = config.model.scratch
    assert shape is not None
    torch.manual_seed(config.train.seed)
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads or shape.num_attention_heads,
        max_position_embeddings=shape.max_position_embeddings,
        rope_theta=shape.rope_theta,
        rms_norm_eps=shape.rms_norm_eps,
        tie_word_embeddings=shape.tie_word_embeddings,
        initializer_range=shape.initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
    )
    model = LlamaForCausalLM(llama_config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, do_sample=False
    )
    base_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(base_dir))
    save_tokenizer(tokenizer, base_dir, tokenizer_source)


def load_model(config: RunConfig, base: str, *, attention: str, precision: str):
    """The model to train: the base in the right dtype, with LoRA adapters where asked."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, object] = {
        "attn_implementation": attention,
        "trust_remote_code": config.model.trust_remote_code,
    }
    half = torch.bfloat16 if precision == "bf16" else torch.float16
    if config.method == "qlora":
        if not cuda_available() or importlib.util.find_spec("bitsandbytes") is None:
            raise UsageError(
                "method qlora needs a CUDA GPU and the bitsandbytes package (use lora otherwise)"
            )
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=half,
        )
        kwargs["dtype"] = half
    elif config.method == "lora" and precision != "no":
        kwargs["dtype"] = half  # frozen base in half precision; adapters stay fp32
    else:
        kwargs["dtype"] = torch.float32  # full fine-tuning keeps fp32 master weights
    try:
        model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the model {base}: {str(exc).splitlines()[0]}") from None
    if config.model.gradient_checkpointing:
        enable_checkpointing(model)
    if config.method in ("lora", "qlora"):
        from peft import get_peft_model, prepare_model_for_kbit_training

        if config.method == "qlora":
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=config.model.gradient_checkpointing
            )
        try:
            model = get_peft_model(model, lora_config(config))
        except ValueError as exc:
            raise UsageError(f"lora: {str(exc).splitlines()[0]}") from None
    return model


def lora_config(config: RunConfig):
    """peft's LoraConfig for the run (training and export build the same adapters)."""
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.target_modules),
    )


def base_source(config: RunConfig, run_dir: Path) -> str:
    """Where the run's starting weights are: the base, or the run's own ``base/`` (scratch)."""
    return config.model.base if config.model.base is not None else str(run_dir / BASE_DIR)


def enable_checkpointing(model) -> None:
    """Recompute activations in the backward pass (non-reentrant: works with LoRA and FSDP)."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
