"""A fast, validating reader of GGUF headers.

llama.cpp reports a bad file with a C-level log and a generic exception; users deserve to be
told "this is not a GGUF" or "this GGUF is truncated" before anything is loaded. This reader
walks the header (key/values and tensor descriptions) without reading tensor data, then checks
that the file is long enough to hold every tensor. It reads the vocabulary only to note the
facts the prompt format depends on, so it stays quick even for a 128k-token vocabulary.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import ModelError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF value types -> struct format for scalars.
SCALAR_FORMATS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_KEEP_ARRAY = 64  # small arrays are kept in metadata; long ones (vocabularies) are summarised


class _Truncated(Exception):
    pass


@dataclass
class GGUFInfo:
    """What a GGUF says about itself, read from its header."""

    path: Path
    version: int
    size_bytes: int
    tensor_count: int
    metadata: dict[str, Any] = field(default_factory=dict)
    token_count: int = 0
    has_eot: bool = False
    tokens_of_interest: dict[int, str] = field(default_factory=dict)
    tokens_offset: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
            return None  # missing or nonsense: the engine falls back to a safe default
        return int(value)

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def quantization(self) -> str:
        """llama.cpp's name for the file type, e.g. ``Q4_K_M`` or ``F16``."""
        file_type = self.metadata.get("general.file_type")
        if file_type is None:
            return "unknown"
        from gguf.constants import LlamaFileType  # gguf imports numpy: only when needed

        try:
            label = LlamaFileType(int(file_type)).name
        except ValueError:
            return f"type-{file_type}"
        return label.removeprefix("MOSTLY_").removeprefix("ALL_")

    def token_text(self, key: str) -> str:
        """The text of a special token named by a metadata key such as ``tokenizer.ggml.bos_token_id``."""
        token_id = self.metadata.get(key)
        if not isinstance(token_id, int) or isinstance(token_id, bool):
            return ""
        return self.tokens_of_interest.get(token_id, "")

    def format_metadata(self) -> dict[str, Any]:
        """Metadata plus the special-token texts a chat template may refer to."""
        data = dict(self.metadata)
        data["_bos_token_text"] = self.token_text("tokenizer.ggml.bos_token_id")
        data["_eos_token_text"] = self.token_text("tokenizer.ggml.eos_token_id")
        data["_file_name"] = self.path.name  # names the model in template errors
        return data


class _Reader:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def take(self, size: int) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise _Truncated
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > 1 << 30:
            raise ValueError("implausible string length")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, value_type: int) -> Any:
        if value_type in SCALAR_FORMATS:
            return self.unpack(SCALAR_FORMATS[value_type])
        if value_type == _STRING:
            return self.string()
        raise ValueError(f"unexpected GGUF value type {value_type}")


def _read_array(reader: _Reader, key: str, info: GGUFInfo, wanted_ids: set[int]) -> Any:
    elem_type = reader.unpack("<I")
    count = reader.unpack("<Q")
    if key == "tokenizer.ggml.tokens":
        info.token_count = count
        info.tokens_offset = reader.handle.tell()
        for index in range(count):
            length = reader.unpack("<Q")
            if index in wanted_ids or length == 10:  # len("<|eot_id|>") == 10
                text = reader.take(length).decode("utf-8", errors="replace")
                if text == "<|eot_id|>":
                    info.has_eot = True
                if index in wanted_ids:
                    info.tokens_of_interest[index] = text
            else:
                reader.handle.seek(length, 1)
        return None
    if elem_type == _STRING:
        if count <= _MAX_KEEP_ARRAY:
            return [reader.string() for _ in range(count)]
        _skip_strings(reader, count)
        return None
    if elem_type in SCALAR_FORMATS:
        size = struct.calcsize(SCALAR_FORMATS[elem_type])
        if count <= _MAX_KEEP_ARRAY:
            return [reader.unpack(SCALAR_FORMATS[elem_type]) for _ in range(count)]
        reader.handle.seek(size * count, 1)
        return None
    if elem_type == _ARRAY:
        raise ValueError("nested arrays are not supported")
    raise ValueError(f"unexpected GGUF array type {elem_type}")


def _tensor_nbytes(dims: list[int], type_id: int) -> int:
    elements = 1
    for dim in dims:
        elements *= dim
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    return elements // block * type_size


def inspect_gguf(path: Path | str) -> GGUFInfo:
    """Read and validate a GGUF's header; raise :class:`ModelError` with one clear line if bad."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelError(f"{path} is a directory, not a GGUF model file")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise ModelError(f"{path} is not a regular file, so not a GGUF model file")
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            return _inspect(handle, path, size)
    except _Truncated:
        raise ModelError(f"{path} is truncated (an interrupted download or copy?)") from None
    except (ValueError, KeyError, struct.error, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not a valid GGUF file ({exc})") from None
    except (OverflowError, ZeroDivisionError, TypeError, MemoryError, RecursionError):
        # offsets, counts or alignments no real file has
        raise ModelError(
            f"{path} is not a valid GGUF file (implausible sizes in its header)"
        ) from None
    except PermissionError:
        raise ModelError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None


def _inspect(handle: IO[bytes], path: Path, size: int) -> GGUFInfo:
    magic = handle.read(4)
    if magic != GGUF_MAGIC:
        if len(magic) < 4 and size < 4:
            raise ModelError(f"{path} is not a GGUF model file (it is {size} bytes long)")
        raise ModelError(f"{path} is not a GGUF model file")
    reader = _Reader(handle)
    version = reader.unpack("<I")
    if version not in (2, 3):
        raise ModelError(f"{path} is GGUF version {version}, which this llama.cpp cannot read")
    tensor_count = reader.unpack("<Q")
    kv_count = reader.unpack("<Q")
    info = GGUFInfo(path=path, version=version, size_bytes=size, tensor_count=tensor_count)
    wanted_ids: set[int] = set()
    for _ in range(kv_count):
        key = reader.string()
        value_type = reader.unpack("<I")
        value = (
            _read_array(reader, key, info, wanted_ids)
            if value_type == _ARRAY
            else reader.value(value_type)
        )
        if value is not None:
            info.metadata[key] = value
        if (
            key.startswith("tokenizer.ggml.")
            and key.endswith("_token_id")
            and isinstance(value, int)
        ):
            wanted_ids.add(value)
    missing = wanted_ids - info.tokens_of_interest.keys()
    if missing and info.token_count:
        # Special-token ids usually come after the token list; fetch their text in a second pass.
        _read_token_texts(path, missing, info)
    data_end = 0
    for _ in range(tensor_count):
        reader.string()
        n_dims = reader.unpack("<I")
        if n_dims > 8:
            raise ValueError("implausible tensor rank")
        dims = [reader.unpack("<Q") for _ in range(n_dims)]
        type_id = reader.unpack("<I")
        offset = reader.unpack("<Q")
        data_end = max(data_end, offset + _tensor_nbytes(dims, type_id))
    alignment = info.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if (
        isinstance(alignment, bool)
        or not isinstance(alignment, int)
        or not 1 <= alignment <= 1 << 20
    ):
        raise ValueError(f"implausible alignment {alignment!r}")
    header_end = handle.tell()
    data_start = (header_end + alignment - 1) // alignment * alignment
    if tensor_count and data_start + data_end > size:
        raise _Truncated
    return info


def _skip_strings(reader: _Reader, count: int) -> None:
    """Skip ``count`` length-prefixed strings (e.g. 280k BPE merges) without decoding them."""
    handle = reader.handle
    chunk = b""
    pos = 0
    remaining = count
    while remaining:
        if len(chunk) - pos < 8:
            chunk = chunk[pos:] + handle.read(1 << 20)
            pos = 0
            if len(chunk) < 8:
                raise _Truncated
        (length,) = struct.unpack_from("<Q", chunk, pos)
        if pos + 8 + length > len(chunk):
            # The string runs past this chunk: rewind the file to its end and go on unbuffered.
            handle.seek(pos + 8 + length - len(chunk), 1)
            chunk, pos = b"", 0
        else:
            pos += 8 + length
        remaining -= 1
    handle.seek(pos - len(chunk), 1)


def _read_token_texts(path: Path, ids: set[int], info: GGUFInfo) -> None:
    """Read the texts of a few token ids, seeking straight to the vocabulary."""
    with open(path, "rb") as handle:
        handle.seek(info.tokens_offset)
        reader = _Reader(handle)
        scratch = GGUFInfo(path=path, version=0, size_bytes=0, tensor_count=0)
        reader.handle.seek(-12, 1)  # back over the array's element type and count
        _read_array(reader, "tokenizer.ggml.tokens", scratch, ids)
        info.tokens_of_interest.update(scratch.tokens_of_interest)
