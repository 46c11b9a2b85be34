"""convert/: BayLing's Hugging Face checkpoints to verified GGUF, in every llama.cpp quantization.

- :func:`convert_checkpoint`: HF directory (safetensors or .bin, sharded or not, optionally a
  v1.0 weight delta over a base) -> GGUF, streamed a tensor at a time.
- :func:`quantize_gguf`: GGUF -> any llama.cpp quant type that needs no importance matrix.
- :func:`verify_gguf`: the GGUF against the HF model: logits, greedy tokens, tokenizer ids.
"""

from .core import convert_checkpoint, plan_conversion
from .quantize import QUANT_TYPES, QuantType, quantize_gguf, resolve_quant_type
from .verify import VerifyReport, verify_gguf

__all__ = [
    "QUANT_TYPES",
    "QuantType",
    "VerifyReport",
    "convert_checkpoint",
    "plan_conversion",
    "quantize_gguf",
    "resolve_quant_type",
    "verify_gguf",
]
