"""Hugging Face transformers: image, text (and audio: ``transformers_audio``) classifiers with their own two ends.

The input end is the model's processor. An image processor becomes an
``ImageSpec`` only where the mapping is exact (the Pillow backend, a plain
resize to height x width, rescale, normalize: the same Pillow calls as
``ImagePlan``); otherwise - the default torchvision-based processors resize
tensors, centre crops round offsets differently - the processor itself runs on
each decoded image (``ProcessorSpec``), so inputs are bit-for-bit the
pipeline's. A tokenizer runs per batch in ``collate`` with the ``TextSpec``
settings, padding to the batch's longest text.

The output end follows ``config.problem_type`` exactly as the transformers
pipelines do: multi-label -> sigmoid, a single logit -> sigmoid, single-label
(or several logits) -> softmax; regression models are refused. Labels come
from ``config.id2label``. Unlike the pipeline, every Prediction keeps the logits.

Importing this module imports torch and transformers.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import contextmanager
from typing import Any, Mapping

import numpy as np
import torch
import transformers
from transformers import PreTrainedModel

from twoends.backends.base import ModelInfo
from twoends.backends.hub_access import offline_hint, offline_when_unreachable
from twoends.backends.text_batches import Tokenized, pad, run_sorted, sort_window, tokenize
from twoends.backends.torch import TorchBackend, info_from_module
from twoends.errors import ConfigError, ModelError
from twoends.options import RunOptions
from twoends.preprocess.image_plan import ImageInput
from twoends.preprocess.protocol import InputSpec, Limits
from twoends.preprocess.spec import INTERPOLATIONS, ImageSpec
from twoends.preprocess.text import TextInput, TextSpec

__all__ = [
    "ProcessorSpec",
    "HFTextBackend",
    "spec_from_image_processor",
    "activation_for",
    "wrap_model",
    "load",
]

# PIL resampling filters by their integer value (what HF processors store in `resample`)
_PIL_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


# --------------------------------------------------------------------------- the input end: images


class ProcessorSpec(InputSpec):
    """The preprocessing of a model is its HF image processor, run as is on each image."""

    kind = "image"

    def __init__(self, processor: Any, reason: str):
        self.processor = processor
        self.reason = reason

    def plan(self, limits: Limits | None = None) -> "_ProcessorPlan":
        return _ProcessorPlan(self.processor, limits)

    def to_dict(self) -> dict:
        return {"hf_image_processor": self.processor.to_dict(), "why_not_an_image_spec": self.reason}

    def replace(self, **changes: Any):
        raise ConfigError(
            f"this model's preprocessing is its Hugging Face image processor ({type(self.processor).__name__}), "
            f"which has no fields to override ({sorted(changes)} given); pass a complete twoends.ImageSpec "
            "to replace it, or configure the processor and wrap again"
        )

    def describe(self) -> str:
        return f"the model's {type(self.processor).__name__}, run on each image ({self.reason})"


class _ProcessorPlan(ImageInput):
    # The processor sees the image exactly as decoded (no draft), as in the pipeline.
    # Run once per batch, in the model's thread (Classifier: decoded images are deferred to
    # it), not per image in the decoding threads: the torchvision-based processors resize
    # with torch ops that already use every core and batch images of one size together,
    # and torch ops in two decoding threads each start an OpenMP team of their own whose
    # spinning slowed the forward pass (bench/RESULTS.md: 118 vs 102 images/s, and 78 with
    # two threads per image). The outputs are the same, bit for bit (tests).
    per_batch = True

    def __init__(self, processor: Any, limits: Limits | None = None):
        super().__init__(limits)
        object.__setattr__(self, "processor", processor)

    @property
    def spec(self) -> ProcessorSpec:
        return ProcessorSpec(self.processor, "")

    def describe(self) -> str:
        return f"the model's {type(self.processor).__name__}, once per batch"

    def apply(self, image: Any) -> np.ndarray:
        return self.apply_batch([image])[0].numpy()

    __call__ = apply

    def apply_batch(self, images: list[Any]) -> list[torch.Tensor]:
        """The processor on a batch of decoded images: one model input (C, H, W) per image."""
        return list(self.processor(images=list(images), return_tensors="pt")["pixel_values"])


def spec_from_image_processor(processor: Any) -> tuple[ImageSpec | None, str]:
    """``(ImageSpec, "")`` where it reproduces the processor exactly, else ``(None, why not)``."""
    from transformers.image_processing_backends import PilBackend

    if not isinstance(processor, PilBackend):
        return None, f"{type(processor).__name__} resizes tensors, not with Pillow"
    for method in ("_preprocess", "resize", "rescale", "normalize"):
        if getattr(type(processor), method) is not getattr(PilBackend, method):
            return None, f"{type(processor).__name__} overrides {method}"
    size = processor.size or {}
    size = dict(size) if isinstance(size, Mapping) else dict(vars(size))
    if not processor.do_resize or not (size.get("height") and size.get("width")):
        return None, f"resize {size} is not a plain height x width resize"
    if getattr(processor, "do_center_crop", False) or getattr(processor, "do_pad", False):
        return None, "a centre crop or pad (HF rounds crop offsets down, torchvision to nearest)"
    if getattr(processor, "do_convert_rgb", None) is False:
        return None, "do_convert_rgb=False"
    filt = _PIL_FILTERS.get(int(getattr(processor.resample, "value", processor.resample)))
    if filt not in INTERPOLATIONS:
        return None, f"resample {processor.resample!r}"
    scale = float(processor.rescale_factor) if processor.do_rescale else 1.0
    mean, std = (processor.image_mean, processor.image_std) if processor.do_normalize else ((0.0,) * 3, (1.0,) * 3)
    mean = tuple(mean) if isinstance(mean, (list, tuple)) else (float(mean),) * 3
    std = tuple(std) if isinstance(std, (list, tuple)) else (float(std),) * 3
    spec = ImageSpec(
        input_size=(int(size["height"]), int(size["width"])),
        resize_mode="exact",
        crop="none",
        interpolation=filt,
        scale=scale,
        mean=mean,
        std=std,
    )
    return spec, ""


# --------------------------------------------------------------------------- the output end


def activation_for(config: Any) -> str:
    """The pipeline's rule: multi-label or one logit -> sigmoid; single-label or several -> softmax."""
    problem = getattr(config, "problem_type", None)
    num = int(getattr(config, "num_labels", 0) or 0)
    if problem == "regression":
        raise ModelError(
            "the model's config.problem_type is 'regression': its outputs are values, not class scores; "
            "twoends runs classifiers"
        )
    if problem == "multi_label_classification" or num == 1:
        return "sigmoid"
    return "softmax"


def _info(model: PreTrainedModel, name: str | None, spec: Any, notes: list[str]) -> ModelInfo:
    base = info_from_module(model, name=name or getattr(model.config, "_name_or_path", "") or type(model).__name__)
    problem = getattr(model.config, "problem_type", None)
    activation = activation_for(model.config)
    notes = [
        *base.notes,
        f"activation {activation} from config (problem_type={problem!r}, num_labels={model.config.num_labels})",
        *notes,
    ]
    if base.labels and all(lab == f"LABEL_{i}" for i, lab in enumerate(base.labels)):
        notes.append("id2label holds transformers' placeholder names LABEL_i: pass labels= for real names")
    return dataclasses.replace(
        base, spec=spec, activation=activation, num_outputs=int(model.config.num_labels), notes=tuple(notes)
    )


# --------------------------------------------------------------------------- text


class HFTextBackend(TorchBackend):
    """A torch module fed by a Hugging Face tokenizer: ``collate`` tokenizes, ``forward`` runs ``module(**enc)``
    on batches of like-length texts (``backends/text_batches.py``), the rows back in input order."""

    def __init__(
        self,
        module: torch.nn.Module,
        tokenizer: Any,
        *,
        info: ModelInfo,
        max_length: int,
        run: RunOptions | None = None,
    ):
        super().__init__(module, info=info, run=run)
        self.tokenizer = tokenizer
        self.max_length = max_length  # the model's limit, used when the spec leaves it open
        self.batch_size = 8

    def plan_batches(self, batch_size: int) -> None:
        self.batch_size = int(batch_size)

    def inputs_per_call(self, batch_size: int) -> int:
        return sort_window(batch_size)

    def collate(self, inputs: Any) -> Tokenized:
        return tokenize(self.tokenizer, inputs, self.info.spec, self.max_length)

    def forward(self, batch: Any) -> torch.Tensor:
        if not isinstance(batch, Tokenized):
            raise ModelError(f"{self.info.name} is a text model: forward takes a tokenized batch from collate(texts)")
        return run_sorted(
            batch,
            self.batch_size,
            lambda rows: super(HFTextBackend, self).forward(pad(self.tokenizer, batch, rows, tensors="pt")),
            torch.cat,
        )

    def describe(self) -> str:
        return super().describe().replace("TorchBackend(", "HFTextBackend(", 1)

    def _to_tensor(self, batch: Any) -> Any:
        return {k: v.to(self._device) for k, v in batch.items()}

    def _call(self, x: Any) -> Any:
        return self._run(lambda enc: self.module(**enc), x)  # autocast when precision asks for it


def _text_limit(tokenizer: Any, config: Any) -> int:
    """The longest input the model takes: the tokenizer's limit, capped by the position embeddings."""
    limits = [
        n
        for n in (getattr(tokenizer, "model_max_length", None), getattr(config, "max_position_embeddings", None))
        if isinstance(n, int) and 0 < n < 1_000_000
    ]
    return min(limits) if limits else 512


# --------------------------------------------------------------------------- wrap and load


def _is_tokenizer(obj: Any) -> bool:
    return isinstance(obj, transformers.PreTrainedTokenizerBase)


def wrap_model(
    model: PreTrainedModel,
    *,
    processor: Any = None,
    tokenizer: Any = None,
    run: RunOptions | None = None,
    name: str | None = None,
) -> TorchBackend:
    """The backend for ``twoends.wrap(hf_model, processor=...)``: a tokenizer makes it a text model,
    a feature extractor an audio model (``twoends.backends.transformers_audio``)."""
    from twoends.backends.transformers_audio import is_audio_model, wrap_audio

    if tokenizer is None and is_audio_model(model, processor):
        return wrap_audio(model, processor, run=run, name=name, info_for=_info)
    if (
        processor is not None
        and not _is_tokenizer(processor)
        and hasattr(processor, "tokenizer")
        and not hasattr(processor, "image_processor")
    ):
        processor = processor.tokenizer
    if processor is not None and hasattr(processor, "image_processor") and not hasattr(processor, "to_dict"):
        processor = processor.image_processor
    tokenizer = tokenizer or (processor if _is_tokenizer(processor) else None)
    if tokenizer is not None:
        limit = _text_limit(tokenizer, model.config)
        info = _info(
            model, name, TextSpec(max_length=limit), [f"tokenizer {type(tokenizer).__name__}, at most {limit} tokens"]
        )
        run = run or RunOptions()
        if run.compile:
            raise ConfigError(
                "compile=True is for image models: a text batch is padded to its longest text, so every new "
                "length would compile again; leave compile off for text models"
            )
        return HFTextBackend(model, tokenizer, info=info, max_length=limit, run=run)
    if processor is None:
        if getattr(model, "main_input_name", "") == "input_ids":
            raise ModelError(
                f"{type(model).__name__} is a text model and no tokenizer was given: "
                "wrap(model, processor=AutoTokenizer.from_pretrained(NAME))"
            )
        spec, notes = None, ["no processor given: the default ImageSpec is used; pass processor= (or spec=)"]
    else:
        mapped, why = spec_from_image_processor(processor)
        if mapped is not None:
            spec, notes = mapped, [f"spec from {type(processor).__name__} (an exact Pillow equivalent)"]
        else:
            spec, notes = ProcessorSpec(processor, why), [f"preprocessing: {type(processor).__name__} itself ({why})"]
    info = _info(model, name, spec, notes)
    return TorchBackend(model, info=info, run=run)


def load(
    name: str,
    *,
    run: RunOptions | None = None,
    revision: str | None = None,
    processor: Any = None,
    tokenizer: Any = None,
) -> TorchBackend:
    """``twoends.load("hf:ORG/NAME")`` (or ``"hf:/a/local/folder"``): model + processor from the hub or a folder.

    A hub name is loaded from the cache at once when the hub cannot be reached (backends/hub_access.py).
    """
    where = {"revision": revision} if revision else {}
    local = os.path.isdir(name)
    with _no_hub() if local else offline_when_unreachable() as why:
        try:
            model, processor = _from_pretrained(name, where, processor, tokenizer)
        except OSError as e:  # not found locally and the hub is unreachable, or no such repository
            cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
                os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
            )
            raise ModelError(
                f"cannot load Hugging Face model {name!r}: it is not a local folder, not in the Hugging Face cache "
                f"({cache}), or the hub could not be reached ({type(e).__name__}: {str(e).splitlines()[0][:300]})."
                f"{offline_hint(why)} Download it once with internet access (it is cached), or pass a folder "
                "written by save_pretrained"
            ) from e
        except Exception as e:  # a pickled weights file refused by weights-only loading, a damaged file
            if isinstance(e, ModelError):
                raise
            raise ModelError(
                f"cannot load Hugging Face model {name!r}: {type(e).__name__}: {str(e).strip().splitlines()[0][:300]}. "
                "A pytorch_model.bin that is refused holds more than tensors (pickled code): use a model saved "
                "as safetensors (save_pretrained(..., safe_serialization=True)) from a source you trust"
            ) from None
    return wrap_model(model, processor=processor, tokenizer=tokenizer, run=run, name=f"hf:{name}")


@contextmanager
def _no_hub():
    yield None


def _from_pretrained(name: str, where: dict, processor: Any, tokenizer: Any):
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoImageProcessor,
        AutoModelForAudioClassification,
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    config = AutoConfig.from_pretrained(name, **where)
    arch = " ".join(config.architectures or [])
    from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES as audio

    if config.model_type in audio and ("ForAudioClassification" in arch or "ForSequenceClassification" in arch):
        model = AutoModelForAudioClassification.from_pretrained(name, **where)  # Wav2Vec2ForSequenceClassification...
        if processor is None:
            processor = AutoFeatureExtractor.from_pretrained(name, **where)
    elif "ForSequenceClassification" in arch:
        model = AutoModelForSequenceClassification.from_pretrained(name, **where)
        if processor is None and tokenizer is None:
            processor = AutoTokenizer.from_pretrained(name, **where)
    elif "ForImageClassification" in arch:
        model = AutoModelForImageClassification.from_pretrained(name, **where)
        if processor is None:
            processor = AutoImageProcessor.from_pretrained(name, **where)
    else:
        raise ModelError(
            f"{name} is a {arch or config.model_type} model; expected an image classifier "
            "(…ForImageClassification), a text classifier (…ForSequenceClassification) or an audio "
            "classifier (…ForAudioClassification)"
        )
    return model, processor


# --------------------------------------------------------------------------- zero-shot text


class _ZeroShotModule(torch.nn.Module):
    """Sentence embeddings (mean of token embeddings, L2-normalised) against fixed label embeddings.

    Mean pooling and normalisation are what sentence-transformers' all-MiniLM-L6-v2
    modules.json says (Transformer -> Pooling(mean) -> Normalize); the logits are
    ``logit_scale * cos(text, label description)``.
    """

    def __init__(self, encoder: torch.nn.Module, logit_scale: float):
        super().__init__()
        self.encoder = encoder
        self.logit_scale = float(logit_scale)
        self.register_buffer("label_embeddings", torch.empty(0))

    def embed(self, **enc: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, p=2, dim=1)

    def forward(self, **enc: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * self.embed(**enc) @ self.label_embeddings.T


def zero_shot_text(
    folder: str,
    descriptions: list[str],
    *,
    logit_scale: float,
    max_length: int,
    name: str,
    notes: tuple[str, ...] = (),
    run: RunOptions | None = None,
) -> HFTextBackend:
    """A text classifier over ``descriptions`` with the sentence-embedding model in ``folder``."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder)
    module = _ZeroShotModule(encoder, logit_scale)
    spec = TextSpec(max_length=max_length)
    info = ModelInfo(name=name, spec=spec, activation="softmax", num_outputs=len(descriptions), notes=notes)
    backend = HFTextBackend(module, tokenizer, info=info, max_length=max_length, run=run)
    with torch.no_grad():  # label embeddings: computed once, kept on the model's device
        enc = backend._to_tensor(
            pad(tokenizer, backend.collate([TextInput(d, spec) for d in descriptions]), tensors="pt")
        )
        module.label_embeddings = module.embed(**enc)
    return backend
