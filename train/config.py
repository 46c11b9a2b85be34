"""The typed configuration of a training run, loaded from YAML.

One YAML file describes a run (see ``train/recipes/``). Every field is typed and checked
before anything heavy happens; a mistake becomes one line naming the field, e.g.
``recipe.yaml: optim.lr: Input should be greater than 0``. Relative paths in the file are
relative to the working directory (as with other training tools), so the shipped recipes
work from wherever a run is started; ``--set key=value`` overrides any field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bayling_local.errors import UsageError
from bayling_local.prompts import FORMATS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScratchModel(_Strict):
    """A LLaMA-architecture model initialised at random (the demo and the CPU tests)."""

    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int | None = Field(default=None, gt=0)
    max_position_embeddings: int = Field(default=2048, gt=0)
    rope_theta: float = Field(default=10000.0, gt=0)
    rms_norm_eps: float = Field(default=1e-5, gt=0)
    tie_word_embeddings: bool = False
    initializer_range: float = Field(default=0.02, gt=0)

    @model_validator(mode="after")
    def _heads(self) -> ScratchModel:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        kv = self.num_key_value_heads or self.num_attention_heads
        if self.num_attention_heads % kv:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        return self


class TokenizerTraining(_Strict):
    """Train a SentencePiece tokenizer on the training data (models from scratch only)."""

    vocab_size: int = Field(ge=300, le=256_000)


class ModelConfig(_Strict):
    base: str | None = None  # HF directory or hub id to start from
    scratch: ScratchModel | None = None  # or: a new model of this shape
    tokenizer: str | None = None  # default: the base's own
    train_tokenizer: TokenizerTraining | None = None
    prompt_format: str = "bayling"
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _source(self) -> ModelConfig:
        if (self.base is None) == (self.scratch is None):
            raise ValueError(
                "give exactly one of model.base (a checkpoint) or model.scratch (a new model)"
            )
        if self.prompt_format not in FORMATS:
            raise ValueError(f"prompt_format must be one of {', '.join(FORMATS)}")
        if self.train_tokenizer is not None and self.scratch is None:
            raise ValueError(
                "train_tokenizer is only for models from scratch (a base has its own tokenizer)"
            )
        if self.scratch is not None and self.tokenizer is None and self.train_tokenizer is None:
            raise ValueError("a model from scratch needs model.tokenizer or model.train_tokenizer")
        return self


class DataConfig(_Strict):
    train: list[str] = Field(min_length=1)  # JSONL files (sharegpt, messages or alpaca)
    eval: list[str] = Field(default_factory=list)
    eval_fraction: float = Field(
        default=0.0, ge=0.0, lt=0.5
    )  # held out of train when no eval files
    seq_len: int = Field(default=2048, gt=8)
    packing: bool = True


class LoraConfig(_Strict):
    r: int = Field(default=16, gt=0)
    alpha: float = Field(default=32.0, gt=0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
    )


class OptimConfig(_Strict):
    lr: float = Field(default=2e-5, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(default=1e-8, gt=0)
    max_grad_norm: float = Field(default=1.0, ge=0)  # 0: no clipping
    warmup_steps: int = Field(default=0, ge=0)
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)  # used when warmup_steps is 0
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)  # the cosine ends at lr * this


class TrainConfig(_Strict):
    micro_batch_size: int = Field(default=1, gt=0)  # rows per forward pass, per process
    # Rows per optimizer step, all processes together: the same whatever the process count
    # (each process then accumulates batch_size / (micro_batch_size x processes) micro-batches).
    # Unset: micro_batch_size x grad_accum, i.e. the recipe as one process runs it.
    batch_size: int | None = Field(default=None, gt=0)
    grad_accum: int = Field(default=1, gt=0)  # only sets the default batch_size
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)  # overrides epochs
    seed: int = 0
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    log_every: int = Field(default=10, gt=0)
    eval_every: int | None = Field(default=None, gt=0)
    save_every: int | None = Field(default=None, gt=0)
    keep_checkpoints: int = Field(default=2, gt=0)
    threads: int | None = Field(default=None, gt=0)  # CPU threads for torch
    # 0 trains on assistant tokens only (BayLing's recipe). A model trained from scratch (the
    # demo) also learns the languages of its inputs from the prompt text, at this weight.
    prompt_loss_weight: float = Field(default=0.0, ge=0, le=1)
    # How long a process waits for the others (a collective, a checkpoint) before it gives up
    # with an error naming the cause: a dead or stuck node then stops the run instead of
    # hanging it. Covers the data preparation rank 0 does while the others wait.
    timeout_minutes: float = Field(default=30.0, gt=0)

    @property
    def global_batch(self) -> int:
        return self.batch_size or self.micro_batch_size * self.grad_accum


class RunConfig(_Strict):
    """A whole training run."""

    run_dir: str
    method: Literal["full", "lora", "qlora"] = "lora"
    model: ModelConfig
    data: DataConfig
    lora: LoraConfig = Field(default_factory=LoraConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _method(self) -> RunConfig:
        if self.method == "qlora" and self.model.scratch is not None:
            raise ValueError(
                "qlora quantizes a pretrained base; a model from scratch needs method full or lora"
            )
        return self

    def resolve_paths(self, root: Path) -> RunConfig:
        """Paths made absolute against ``root`` (the working directory)."""

        def fix(path: str | None, *, maybe_hub_id: bool = False) -> str | None:
            if path is None:
                return None
            candidate = Path(path).expanduser()
            if candidate.is_absolute():
                return str(candidate)
            resolved = root / candidate
            # "org/name" that is not a local path is a Hugging Face hub id: leave it as it is.
            if maybe_hub_id and not resolved.exists() and not path.startswith("."):
                return path
            return str(resolved)

        model = self.model.model_copy(
            update={
                "base": fix(self.model.base, maybe_hub_id=True),
                "tokenizer": fix(self.model.tokenizer, maybe_hub_id=True),
            }
        )
        data = self.data.model_copy(
            update={
                "train": [fix(p) for p in self.data.train],
                "eval": [fix(p) for p in self.data.eval],
            }
        )
        return self.model_copy(update={"run_dir": fix(self.run_dir), "model": model, "data": data})


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the file"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    more = len(error.errors()) - 1
    return f"{where}: {message}" + (
        f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    )


def parse_config(data: object, *, source: str = "config", root: Path | None = None) -> RunConfig:
    """Validate a mapping (as YAML gives it) into a :class:`RunConfig`."""
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping of settings, not {type(data).__name__}")
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{source}: {_describe(exc)}") from None
    return config.resolve_paths(root) if root is not None else config


def load_config(path: Path | str, overrides: dict[str, object] | None = None) -> RunConfig:
    """Read and validate a run's YAML file; ``overrides`` maps dotted keys to values."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}: not valid YAML{where}") from None
    for key, value in (overrides or {}).items():
        if not isinstance(data, dict):
            break
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"cannot override {key}: {part} is not a section")
        node[last] = value
    return parse_config(data, source=str(path), root=Path.cwd())


def dump_config(config: RunConfig) -> str:
    """The resolved configuration as YAML (saved in the run directory)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
