"""COMET computed here, with torch and transformers, from a checkpoint as Unbabel publishes it.

unbabel-comet itself cannot be installed beside bayling-local (it pins ``huggingface-hub<1``
and ``numpy<2``), so this module reads its checkpoints and runs the same computation as its
``RegressionMetric`` (the class of ``Unbabel/wmt22-comet-da``), at inference, float32:

1. each of source, translation and reference goes through the XLM-R encoder on its own
   (XLM-R's tokenizer, truncated to the encoder's positions minus four, ``<s>``/``</s>`` kept);
2. the hidden states of every layer (embeddings included) are mixed by the learnt layer
   weights (softmax, or sparsemax where the checkpoint asks for it; ``sparsemax_patch`` in
   ``hparams.yaml`` means softmax, as unbabel-comet >= 2.2.4 reads it), each layer first
   normalised over the sentence's real tokens when ``layer_norm`` is set, then scaled by gamma;
   or one layer taken as it is when ``layer`` is a number;
3. the tokens are pooled into a sentence embedding: the mean over the non-padding tokens
   (``<s>`` and ``</s>`` count), the maximum, or the first token;
4. the estimator (linear layers with their activation between them; dropout is off at
   inference) reads ``[mt, ref, mt*ref, |mt-ref|, mt*src, |mt-src|]`` and gives the segment
   score; the system score is the segments' mean.

A checkpoint is a folder holding ``checkpoints/model.ckpt`` and ``hparams.yaml`` (the Hugging
Face snapshot of ``Unbabel/wmt22-comet-da``), the ``model.ckpt`` file itself, or a hub name
whose snapshot is already in the local Hugging Face cache. Its weights include the encoder's;
the encoder's configuration and tokenizer come from the ``pretrained_model`` it names
(``xlm-roberta-large``), found as a local folder or in the Hugging Face cache, never
downloaded. tests/evaluation/test_comet.py checks the scores against unbabel-comet's own on
tiny checkpoints it made (tests/data/comet-tiny/).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError, UsageError
from .textio import EVAL_EXTRA, require

if TYPE_CHECKING:
    import torch

COMET_HUB_NAME = "Unbabel/wmt22-comet-da"
_ENCODERS = {"XLM-RoBERTa"}
_TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model")
_STATE_PREFIX = "encoder.model."


@dataclass(frozen=True)
class CometConfig:
    """The hyper-parameters inference depends on (the rest only matter for training)."""

    pretrained_model: str = "xlm-roberta-large"
    encoder_model: str = "XLM-RoBERTa"
    layer: str | int = "mix"
    layer_transformation: str = "softmax"
    layer_norm: bool = True
    pool: str = "avg"
    activations: str = "Tanh"
    final_activation: str | None = None
    class_identifier: str = "regression_metric"


@dataclass
class CometScores:
    """Segment scores in input order, and their mean."""

    segments: list[float]
    system: float
    model: str
    device: str = "cpu"
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)


# --- finding the files ------------------------------------------------------------------------


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment each time (tests change it)."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def cached_snapshot(repo_id: str, filename: str) -> Path | None:
    """The snapshot folder of ``repo_id`` in the local hub cache that holds ``filename``."""
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", repo_id):
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=str(hub_cache_dir()))
    except ValueError:  # a name the hub would refuse
        return None
    return Path(found).parent if isinstance(found, str) else None


def resolve_checkpoint(path: Path | str) -> Path:
    """The ``model.ckpt`` of a COMET model folder, file or cached hub name; one line if none."""
    given = str(path)
    path = Path(given).expanduser()
    if path.is_dir():
        candidate = path / "checkpoints" / "model.ckpt"
        if candidate.is_file():
            return candidate
        raise UsageError(
            f"{path} holds no COMET checkpoint: expected checkpoints/model.ckpt inside it "
            f"(the layout of the Hugging Face snapshot of {COMET_HUB_NAME})"
        )
    if path.is_file():
        return path
    if not path.is_absolute() and not given.startswith("."):
        snapshot = cached_snapshot(given, "checkpoints/model.ckpt")
        if snapshot is not None:
            return snapshot / "model.ckpt"
    raise UsageError(
        f"COMET checkpoint not found: {given} (give the model's folder, e.g. a download of "
        f"{COMET_HUB_NAME} with checkpoints/model.ckpt, or a hub name already in the "
        f"Hugging Face cache {hub_cache_dir()})"
    )


def resolve_encoder(name: str, override: Path | str | None = None) -> Path:
    """A local folder with the encoder's config.json and tokenizer; never downloads."""
    candidates: list[Path] = []
    if override is not None:
        folder = Path(override).expanduser()
        if not _is_encoder_folder(folder):
            raise UsageError(
                f"COMET encoder folder {folder} needs config.json and tokenizer.json "
                "(or sentencepiece.bpe.model)"
            )
        return folder
    local = Path(name).expanduser()
    if local.is_dir():
        candidates.append(local)
    names = [name]
    if "/" not in name:  # the hub moved xlm-roberta-large to FacebookAI/xlm-roberta-large
        names.append(f"FacebookAI/{name}")
    for repo in names:
        snapshot = cached_snapshot(repo, "config.json")
        if snapshot is not None:
            candidates.append(snapshot)
    for folder in candidates:
        if _is_encoder_folder(folder):
            return folder
    hub_name = names[-1]
    raise UsageError(
        f"COMET's encoder {name} (config and tokenizer) is not on this machine: not a folder, "
        f"not in the Hugging Face cache {hub_cache_dir()}; fetch it once where there is network "
        f"(hf download {hub_name} config.json tokenizer.json) or give its folder with "
        "--comet-encoder DIR"
    )


def _is_encoder_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        (folder / name).is_file() for name in _TOKENIZER_FILES
    )


def check_comet(checkpoint: Path | str, encoder: Path | str | None = None) -> Path:
    """Everything COMET needs is here (packages, checkpoint, encoder), checked before long work.

    Reads only ``hparams.yaml`` (the 2 GB checkpoint is loaded when scoring)."""
    import yaml

    require("torch", "COMET", EVAL_EXTRA)
    require("transformers", "COMET", EVAL_EXTRA)
    found = resolve_checkpoint(checkpoint)
    yaml_file = found.parent.parent / "hparams.yaml"
    name = CometConfig.pretrained_model
    try:
        hparams = yaml.safe_load(yaml_file.read_text(encoding="utf-8"))
        if isinstance(hparams, dict) and isinstance(hparams.get("pretrained_model"), str):
            name = hparams["pretrained_model"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        if encoder is None:
            return found  # the checkpoint's own hyper-parameters will name the encoder
    resolve_encoder(name, encoder)
    return found


# --- the checkpoint ---------------------------------------------------------------------------


def read_config(checkpoint: Path, saved: dict[str, Any]) -> CometConfig:
    """Hyper-parameters as unbabel-comet uses them: the checkpoint's, hparams.yaml's patch."""
    import yaml

    hparams = dict(saved)
    yaml_file = checkpoint.parent.parent / "hparams.yaml"
    if yaml_file.is_file():
        try:
            from_yaml = yaml.safe_load(yaml_file.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot read {yaml_file}: {first}") from None
        if not isinstance(from_yaml, dict):
            raise ModelError(f"{yaml_file} is not a mapping of hyper-parameters")
        if "class_identifier" in from_yaml:
            hparams["class_identifier"] = from_yaml["class_identifier"]
        if from_yaml.get("layer_transformation") == "sparsemax_patch":
            hparams["layer_transformation"] = "softmax"  # Unbabel's fix of their issue #244
        for key, value in from_yaml.items():
            hparams.setdefault(key, value)
    known = CometConfig.__dataclass_fields__
    config = CometConfig(**{k: v for k, v in hparams.items() if k in known})
    if config.class_identifier != "regression_metric":
        raise ModelError(
            f"{checkpoint} is a COMET {config.class_identifier}; bayling-local computes the "
            f"reference-based regression metrics (regression_metric, e.g. {COMET_HUB_NAME}) only"
        )
    if config.encoder_model not in _ENCODERS:
        raise ModelError(
            f"{checkpoint} uses the {config.encoder_model} encoder; bayling-local runs COMET "
            "models built on XLM-RoBERTa only"
        )
    if config.pool not in ("avg", "max", "cls", "default"):
        raise ModelError(f"{checkpoint}: unknown pooling {config.pool!r}")
    return config


def _load_checkpoint(path: Path) -> dict[str, Any]:
    import pickle
    import zipfile

    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a readable COMET checkpoint: {first}") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise ModelError(f"{path} is not a COMET checkpoint (no state_dict inside)")
    return data


def sparsemax(weights: torch.Tensor) -> torch.Tensor:
    """The Euclidean projection of a vector onto the simplex (Martins & Astudillo, 2016)."""
    import torch

    ordered = torch.sort(weights, descending=True).values
    running = ordered.cumsum(0)
    ranks = torch.arange(1, len(weights) + 1, dtype=weights.dtype, device=weights.device)
    support = int((1 + ranks * ordered > running).sum())
    threshold = (running[support - 1] - 1) / support
    return torch.clamp(weights - threshold, min=0)


class CometModel:
    """A loaded COMET regression metric: encoder, layer mix, pooling and estimator."""

    def __init__(
        self,
        checkpoint: Path | str,
        *,
        encoder: Path | str | None = None,
        device: str | None = None,
    ) -> None:
        require("torch", "COMET", EVAL_EXTRA)
        require("transformers", "COMET", EVAL_EXTRA)
        import torch
        import transformers
        from transformers import XLMRobertaConfig, XLMRobertaModel

        # the Rust-backed tokenizer: XLMRobertaTokenizerFast up to transformers 4,
        # XLMRobertaTokenizer from 5 on (the old name stays as an alias there)
        tokenizer_class = getattr(transformers, "XLMRobertaTokenizerFast", None)
        if tokenizer_class is None:
            tokenizer_class = transformers.XLMRobertaTokenizer

        self.checkpoint = resolve_checkpoint(checkpoint)
        saved = _load_checkpoint(self.checkpoint)
        self.config = read_config(self.checkpoint, saved.get("hyper_parameters") or {})
        folder = resolve_encoder(self.config.pretrained_model, encoder)
        self.encoder_folder = folder
        try:
            self.tokenizer = tokenizer_class.from_pretrained(str(folder), local_files_only=True)
            encoder_config = XLMRobertaConfig.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load COMET's encoder from {folder}: {first}") from None
        state = saved["state_dict"]
        self.encoder = XLMRobertaModel(encoder_config, add_pooling_layer=False)
        encoder_state = {
            key[len(_STATE_PREFIX) :]: value
            for key, value in state.items()
            if key.startswith(_STATE_PREFIX)
        }
        try:
            result = self.encoder.load_state_dict(encoder_state, strict=False)
        except RuntimeError as exc:  # shapes of another configuration
            raise ModelError(
                f"{self.checkpoint} does not fit the encoder configuration in {folder}: "
                f"{str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc}"
            ) from None
        parameters = {name for name, _ in self.encoder.named_parameters()}
        missing = sorted(set(result.missing_keys) & parameters)
        if missing:
            raise ModelError(
                f"{self.checkpoint} lacks {len(missing)} encoder weights (e.g. {missing[0]})"
            )
        self.num_layers = encoder_config.num_hidden_layers + 1
        self.max_length = encoder_config.max_position_embeddings - 4
        self.layer_weights: torch.Tensor | None = None
        self.gamma: torch.Tensor | None = None
        if self.config.layer == "mix":
            weights = [
                state.get(f"layerwise_attention.scalar_parameters.{i}")
                for i in range(self.num_layers)
            ]
            if any(w is None for w in weights) or "layerwise_attention.gamma" not in state:
                raise ModelError(f"{self.checkpoint} lacks the layer-mixing weights")
            self.layer_weights = torch.cat([w.reshape(1).float() for w in weights if w is not None])
            self.gamma = state["layerwise_attention.gamma"].reshape(1).float()
        elif not (isinstance(self.config.layer, int) and 0 <= self.config.layer < self.num_layers):
            raise ModelError(f"{self.checkpoint}: invalid encoder layer {self.config.layer!r}")
        self.estimator = self._estimator(state)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.encoder.to(self.device).float().eval()  # type: ignore[arg-type]
            self.estimator.to(self.device).float().eval()
        except (RuntimeError, AssertionError) as exc:
            raise UsageError(f"cannot use device {self.device} for COMET: {exc}") from None
        if self.layer_weights is not None and self.gamma is not None:
            self.layer_weights = self.layer_weights.to(self.device)
            self.gamma = self.gamma.to(self.device)

    def _estimator(self, state: dict[str, Any]) -> torch.nn.Sequential:
        """The feed-forward regressor, its shape read from the weights themselves."""
        from torch import nn

        indices = sorted(
            int(m[1])
            for key in state
            if (m := re.fullmatch(r"estimator\.ff\.(\d+)\.weight", key)) is not None
        )
        if not indices:
            raise ModelError(f"{self.checkpoint} lacks the estimator's weights")
        layers: list[nn.Module] = []
        for position, index in enumerate(indices):
            weight = state[f"estimator.ff.{index}.weight"]
            bias = state.get(f"estimator.ff.{index}.bias")
            linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
            linear.weight.data.copy_(weight)
            if bias is not None:
                linear.bias.data.copy_(bias)
            layers.append(linear)
            last = position == len(indices) - 1
            if not last:
                layers.append(self._activation(self.config.activations))
            elif self.config.final_activation:
                layers.append(self._activation(self.config.final_activation))
        width = state[f"estimator.ff.{indices[0]}.weight"].shape[1]
        hidden = self.encoder.config.hidden_size
        if width != 6 * hidden:
            raise ModelError(
                f"{self.checkpoint}: the estimator reads {width} features, not 6 x {hidden}"
            )
        return nn.Sequential(*layers)

    def _activation(self, name: str) -> torch.nn.Module:
        from torch import nn

        module = getattr(nn, name.title(), None)
        if not isinstance(module, type) or not issubclass(module, nn.Module):
            raise ModelError(f"{self.checkpoint}: unknown activation {name!r}")
        return module()

    # --- computing ---------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """One sentence embedding per text (one batch)."""
        import torch

        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        ids = batch["input_ids"].to(self.device)
        mask = batch["attention_mask"].to(self.device)
        out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        layers = out.hidden_states
        if self.layer_weights is not None and self.gamma is not None:
            if self.config.layer_transformation == "sparsemax":
                shares = sparsemax(self.layer_weights)
            else:
                shares = torch.softmax(self.layer_weights, dim=0)
            mixed = None
            for share, hidden in zip(shares, layers):
                if self.config.layer_norm:
                    hidden = _masked_normalise(hidden, mask)
                part = share * hidden
                mixed = part if mixed is None else mixed + part
            assert mixed is not None
            tokens = self.gamma * mixed
        else:
            assert isinstance(self.config.layer, int)
            tokens = layers[self.config.layer]
        pad = ids.eq(self.tokenizer.pad_token_id).unsqueeze(-1)
        if self.config.pool == "avg":
            summed = tokens.masked_fill(pad, 0.0).sum(1)
            return summed / mask.sum(1, keepdim=True).to(summed.dtype)
        if self.config.pool == "max":
            return tokens.masked_fill(pad, float("-inf")).max(dim=1).values
        if self.config.pool == "cls":
            return tokens[:, 0, :]
        return layers[-1][:, 0, :]  # "default": the first token of the last layer

    def score(
        self,
        sources: Sequence[str],
        hypotheses: Sequence[str],
        references: Sequence[str],
        *,
        batch_size: int = 16,
        on_progress: Callable[[int], None] | None = None,
    ) -> CometScores:
        """Segment and system scores; segments are batched by length, returned in input order."""
        import time

        import torch

        if not (len(sources) == len(hypotheses) == len(references)):
            raise UsageError(
                f"COMET needs one source and one reference per hypothesis: {len(sources)} "
                f"sources, {len(hypotheses)} hypotheses, {len(references)} references"
            )
        if not hypotheses:
            raise UsageError("nothing to score: no segments")
        if batch_size < 1:
            raise UsageError(f"COMET batch size {batch_size}: give 1 or more")
        start = time.perf_counter()
        order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
        scores = [0.0] * len(sources)
        with torch.inference_mode():
            for first in range(0, len(order), batch_size):
                chunk = order[first : first + batch_size]
                src = self.embed([sources[i] for i in chunk])
                mt = self.embed([hypotheses[i] for i in chunk])
                ref = self.embed([references[i] for i in chunk])
                features = torch.cat(
                    (mt, ref, mt * ref, (mt - ref).abs(), mt * src, (mt - src).abs()), dim=1
                )
                values = self.estimator(features).view(-1).double().cpu().tolist()
                for i, value in zip(chunk, values):
                    scores[i] = value
                if on_progress is not None:
                    on_progress(len(chunk))
        system = math.fsum(scores) / len(scores)
        return CometScores(
            segments=scores,
            system=system,
            model=model_name(self.checkpoint),
            device=self.device,
            seconds=time.perf_counter() - start,
            config={
                "pretrained_model": self.config.pretrained_model,
                "layer": self.config.layer,
                "layer_transformation": self.config.layer_transformation,
                "layer_norm": self.config.layer_norm,
                "pool": self.config.pool,
            },
        )


def _masked_normalise(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One mean and variance per sentence over its real tokens and all features."""
    import torch

    weights = mask.to(hidden.dtype).unsqueeze(-1)
    count = mask.sum(1).to(hidden.dtype) * hidden.shape[-1]
    masked = hidden * weights
    mean = masked.flatten(1).sum(1) / count
    centred = (masked - mean.view(-1, 1, 1)) * weights
    variance = centred.pow(2).flatten(1).sum(1) / count
    return (hidden - mean.view(-1, 1, 1)) / torch.sqrt(variance + 1e-12).view(-1, 1, 1)


def model_name(checkpoint: Path) -> str:
    """``Unbabel/wmt22-comet-da`` for a hub-cache snapshot, else the model folder's name."""
    folder = checkpoint.parent.parent
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.parent.parent.name.removeprefix("models--").replace("--", "/")
    return folder.name


def signature(scores: CometScores) -> str:
    """What defines a COMET score, in the style of sacreBLEU's signatures."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("bayling-local")
    except PackageNotFoundError:  # run from a source tree
        ours = "source"
    config = scores.config
    layers = config["layer"]
    if layers == "mix":
        layers = f"mix-{config['layer_transformation']}" + ("-norm" if config["layer_norm"] else "")
    return (
        f"COMET|model:{scores.model}|encoder:{config['pretrained_model']}|layers:{layers}"
        f"|pool:{config['pool']}|float32|bayling-local:{ours}"
    )


def comet_score(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    checkpoint: Path | str,
    *,
    encoder: Path | str | None = None,
    batch_size: int = 16,
    device: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> CometScores:
    """Load ``checkpoint`` and score: segments are stripped of surrounding spaces first."""
    model = CometModel(checkpoint, encoder=encoder, device=device)
    return model.score(
        [s.strip() for s in sources],
        [h.strip() for h in hypotheses],
        [r.strip() for r in references],
        batch_size=batch_size,
        on_progress=on_progress,
    )
