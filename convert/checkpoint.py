"""Reading a Hugging Face LLaMA-family checkpoint without loading it.

A checkpoint is a directory with ``config.json``, weights (safetensors or PyTorch ``.bin``,
one file or shards listed in ``*.index.json``) and tokenizer files. :func:`open_checkpoint`
reads only headers: each tensor becomes a :class:`TensorRef` that loads its data on demand, so
a converter holds one tensor in memory at a time. Safetensors are read with plain file reads
(their format is a JSON header and raw little-endian data), which needs neither torch nor the
page cache of a whole shard; ``.bin`` files need torch and are memory-mapped through it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayling_local.errors import InputError

#: Architectures convert/ knows how to map; LLaMA-1 era configs spell it ``LLaMA``.
LLAMA_ARCHITECTURES = frozenset({"LlamaForCausalLM", "LLaMAForCausalLM"})

_SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "BF16": np.dtype("<u2"),  # raw bits; widened to float32 on load
}


@dataclass(frozen=True)
class RopeScaling:
    """Rotary-embedding scaling from ``config.json`` (``linear`` or Llama-3.1's ``llama3``)."""

    kind: str
    factor: float
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_context: int = 8192


@dataclass(frozen=True)
class LlamaSpec:
    """The hyperparameters of a LLaMA-family model, as llama.cpp needs them."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    context_length: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool = False
    rope_scaling: RopeScaling | None = None
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    name_or_path: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: Path) -> LlamaSpec:
        model_type = config.get("model_type")
        architectures = set(config.get("architectures") or ())
        if model_type != "llama" and not (architectures & LLAMA_ARCHITECTURES):
            found = model_type or ", ".join(sorted(architectures)) or "unknown"
            raise InputError(f"{where} is not a LLaMA-family checkpoint (model type {found})")
        try:
            hidden = int(config["hidden_size"])
            heads = int(config["num_attention_heads"])
            spec = cls(
                vocab_size=int(config["vocab_size"]),
                hidden_size=hidden,
                intermediate_size=int(config["intermediate_size"]),
                num_layers=int(config["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(config.get("num_key_value_heads") or heads),
                head_dim=int(config.get("head_dim") or hidden // heads),
                context_length=int(
                    config.get("max_position_embeddings")
                    or config.get("max_sequence_length")
                    or 2048
                ),
                rope_theta=float(_rope_theta(config)),
                rms_norm_eps=float(config.get("rms_norm_eps") or 1e-6),
                tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
                rope_scaling=_rope_scaling(config, where),
                bos_token_id=_optional_id(config.get("bos_token_id")),
                eos_token_ids=_ids(config.get("eos_token_id")),
                pad_token_id=_optional_id(config.get("pad_token_id")),
                name_or_path=config.get("_name_or_path") or None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{where}: config.json lacks a usable {exc} for a LLaMA model"
            ) from None
        if spec.num_heads % spec.num_kv_heads or spec.head_dim % 2:
            raise InputError(f"{where}: config.json has inconsistent attention head counts")
        return spec


def _rope_theta(config: Mapping[str, Any]) -> float:
    # transformers 5 moves rope_theta into rope_parameters; older configs have it at top level.
    params = config.get("rope_parameters")
    if isinstance(params, Mapping) and params.get("rope_theta") is not None:
        return float(params["rope_theta"])
    return float(config.get("rope_theta") or 10000.0)


def _rope_scaling(config: Mapping[str, Any], where: Path) -> RopeScaling | None:
    scaling = config.get("rope_scaling") or config.get("rope_parameters")
    if not isinstance(scaling, Mapping):
        return None
    kind = scaling.get("rope_type") or scaling.get("type") or "default"
    if kind == "default":
        return None
    if kind == "linear":
        return RopeScaling("linear", float(scaling["factor"]))
    if kind == "llama3":
        return RopeScaling(
            "llama3",
            float(scaling["factor"]),
            float(scaling.get("low_freq_factor", 1.0)),
            float(scaling.get("high_freq_factor", 4.0)),
            int(scaling.get("original_max_position_embeddings", 8192)),
        )
    raise InputError(f"{where}: rope scaling {kind!r} is not supported")


def _optional_id(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) and value >= 0 else None


def _ids(value: Any) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    return tuple(int(v) for v in values if isinstance(v, int) and v >= 0)


RowReader = Callable[[int, int], np.ndarray]


@dataclass(frozen=True)
class TensorRef:
    """One tensor of a checkpoint: its name, shape and a reader for its rows."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # "F16", "BF16", "F32", "F64"
    nbytes: int
    _read_rows: RowReader = field(repr=False, compare=False)

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    def load(self) -> np.ndarray:
        """The whole tensor as float16 (if stored so) or float32; BF16 is widened exactly."""
        return self._read_rows(0, self.rows)

    def load_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the tensor (along its first axis), as :meth:`load` gives them."""
        return self._read_rows(start, min(stop, self.rows))


def array_ref(name: str, data: np.ndarray) -> TensorRef:
    """A tensor computed by the converter itself (e.g. rope frequency factors)."""
    return TensorRef(name, data.shape, "F32", data.nbytes, lambda start, stop: data[start:stop])


def _read_safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(8)
            if len(raw) != 8:
                raise InputError(f"{path} is not a safetensors file (too short)")
            (length,) = struct.unpack("<Q", raw)
            if length > 100_000_000:
                raise InputError(f"{path} is not a safetensors file (bad header)")
            header = json.loads(handle.read(length))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(header, dict):
        raise InputError(f"{path} is not a safetensors file (bad header)")
    return header, 8 + length


def _safetensors_loader(path: Path, offset: int, dtype: str, shape: tuple[int, ...]) -> RowReader:
    np_dtype = _SAFETENSORS_DTYPES[dtype]
    row_shape = shape[1:]
    row_values = int(np.prod(row_shape, dtype=np.int64))

    def load(start: int, stop: int) -> np.ndarray:
        data = np.empty((stop - start) * row_values, dtype=np_dtype)
        try:
            with open(path, "rb") as handle:
                handle.seek(offset + start * row_values * np_dtype.itemsize)
                got = handle.readinto(data.data.cast("B"))
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if got != data.nbytes:
            raise InputError(f"{path} is truncated")
        if dtype == "BF16":
            data = (data.astype(np.uint32) << 16).view(np.float32)
        elif dtype == "F64":
            data = data.astype(np.float32)
        return data.reshape((stop - start, *row_shape)) if shape else data.reshape(shape)

    return load


def _safetensors_refs(path: Path) -> dict[str, TensorRef]:
    header, data_start = _read_safetensors_header(path)
    size = path.stat().st_size
    refs: dict[str, TensorRef] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = str(info["dtype"])
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path} is not a safetensors file (bad entry {name!r})") from None
        if dtype not in _SAFETENSORS_DTYPES:
            raise InputError(f"{path}: tensor {name} has unsupported type {dtype}")
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * _SAFETENSORS_DTYPES[dtype].itemsize or data_start + end > size:
            raise InputError(f"{path} is truncated or corrupt (tensor {name})")
        loader = _safetensors_loader(path, data_start + begin, dtype, shape)
        refs[name] = TensorRef(name, shape, dtype, end - begin, loader)
    return refs


_TORCH_DTYPES = {"torch.float16": "F16", "torch.bfloat16": "BF16", "torch.float32": "F32"}


def _torch_refs(path: Path) -> dict[str, TensorRef]:
    try:
        import torch
    except ImportError:
        raise InputError(
            f"{path} is a PyTorch checkpoint: converting .bin files needs torch "
            "(pip install torch), or convert the checkpoint to safetensors first"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except RuntimeError:
        # Legacy (pre-zip) pickles cannot be memory-mapped; they load whole.
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"cannot read {path}: {exc}") from None
    except Exception as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    refs: dict[str, TensorRef] = {}
    for name, tensor in state.items():
        dtype = _TORCH_DTYPES.get(str(tensor.dtype))
        if dtype is None:
            raise InputError(f"{path}: tensor {name} has unsupported type {tensor.dtype}")

        def load(start: int, stop: int, tensor=tensor) -> np.ndarray:
            part = tensor[start:stop] if tensor.dim() else tensor
            if part.dtype == torch.float16:
                return part.numpy().copy()
            return part.to(torch.float32).numpy().copy()

        nbytes = tensor.numel() * tensor.element_size()
        refs[name] = TensorRef(name, tuple(tensor.shape), dtype, nbytes, load)
    return refs


def weight_files(directory: Path) -> list[Path]:
    """The checkpoint's weight files, preferring safetensors, following an index if sharded."""
    for index_name, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        index = directory / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                names = sorted(set(weight_map.values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                raise InputError(f"{index} is not a valid checkpoint index") from None
            missing = [n for n in names if not (directory / n).is_file()]
            if missing:
                raise InputError(
                    f"{directory}: shard {missing[0]} listed in {index_name} is missing"
                )
            return [directory / n for n in names]
        if (directory / single).is_file():
            return [directory / single]
    found = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    if not found:
        raise InputError(f"{directory} has no model weights (*.safetensors or pytorch_model*.bin)")
    return found


@dataclass(frozen=True)
class Checkpoint:
    """An opened Hugging Face checkpoint directory (headers only)."""

    directory: Path
    config: Mapping[str, Any]
    spec: LlamaSpec
    tensors: Mapping[str, TensorRef]

    @property
    def nbytes(self) -> int:
        return sum(ref.nbytes for ref in self.tensors.values())


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; an unreadable or malformed file is an input error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} does not hold a JSON object")
    return data


def open_checkpoint(directory: Path | str) -> Checkpoint:
    """Open a checkpoint directory: its config and its tensors' headers, no data."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise InputError(f"{directory} is not a Hugging Face checkpoint (no config.json)")
    config = read_json(config_path)
    spec = LlamaSpec.from_config(config, directory)
    tensors: dict[str, TensorRef] = {}
    for path in weight_files(directory):
        refs = _safetensors_refs(path) if path.suffix == ".safetensors" else _torch_refs(path)
        for name, ref in refs.items():
            if name in tensors:
                raise InputError(f"{directory}: tensor {name} appears in two weight files")
            tensors[name] = ref
    return Checkpoint(directory, config, spec, tensors)
