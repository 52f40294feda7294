"""Settle once: what a model needs, resolved in one place, recorded with where it came from.

``settle(backend, ...)`` is called by ``load`` / ``wrap`` (the composition root)
and returns a frozen ``Settled`` record. The Classifier, the CLI, the server,
calibration, the doctor and Ray only read it; none of them resolves a setting
again. One precedence rule for every setting:

    explicit argument  >  calibration file  >  the model's own  >  default

A calibration file sets the temperature, thresholds and prediction sets; giving
one of those explicitly together with a calibration is refused rather than
silently letting one win (which would be meant is not knowable).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping

from .backends.base import Backend
from .errors import ConfigError
from .head.head import HeadSettings, resolve_activation, shown_labels
from .head.ood import default_method, describe_method
from .label_groups import LabelGroups
from .labels import LabelMap
from .options import RunOptions
from .preprocess.audio import DEFAULT_MAX_SECONDS
from .preprocess.image import DEFAULT_MAX_PIXELS
from .preprocess.protocol import InputPlan, InputSpec, Limits, resolve_input_spec
from .preprocess.spec import ImageSpec
from .runner import default_workers

__all__ = ["Settled", "check_positive", "settle"]

DEFAULT_TOP_K = 5
DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class Settled:
    """The settled record of one model (read-only; ``describe()`` shows it with its sources).

    ``labels`` and ``activation`` are as shown: checked against the number of
    outputs and with the one-logit rule applied, once that number is known (a
    model that does not say is settled again after its first batch, see
    ``with_outputs``).
    """

    name: str
    spec: InputSpec
    plan: InputPlan
    head: HeadSettings
    num_outputs: int | None
    labels: LabelMap | None
    activation: str
    run: RunOptions
    batch_size: int
    workers: int
    limits: Limits
    calibration: Any = None
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def outputs(self) -> str:
        return self.head.outputs

    def with_outputs(self, num_outputs: int) -> "Settled":
        """The record once the number of outputs is known (labels and activation as shown)."""
        if self.num_outputs == num_outputs:
            return self
        labels = shown_labels(self.head.labels, num_outputs)
        head = self.head
        if head.groups is not None:  # indices were checked against the names known then; check them again
            head = dataclasses.replace(head, groups=LabelGroups.resolve(head.groups, labels))
        return dataclasses.replace(
            self,
            num_outputs=num_outputs,
            labels=labels,
            head=head,
            activation=resolve_activation(self.head.activation, num_outputs),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "spec": self.spec.to_dict(),
            "spec_source": self.sources["spec"],
            "labels": {
                "count": len(self.labels) if self.labels is not None else None,
                "source": self.sources["labels"],
            },
            "activation": self.activation,
            "outputs": self.head.outputs,
            "num_outputs": self.num_outputs,
            "temperature": self.head.temperature,
            "top_k": self.head.top_k,
            "calibration": self.head.calibration,
            "ood": {
                "score": describe_method(self.head.ood_method, self.activation),
                "threshold": self.head.ood_threshold,
            },
            "groups": None if self.head.groups is None else _describe_groups(self.head, self.activation),
            "run": self.run.to_dict(),
            "batch_size": self.batch_size,
            "workers": self.workers,
            "max_pixels": self.limits.max_pixels,
            "max_seconds": self.limits.max_seconds,
            "sources": dict(self.sources),
        }


#: the settings ``settle`` takes (``load`` / ``wrap`` document each); None means "not given"
SETTINGS = (
    "spec",
    "labels",
    "activation",
    "outputs",
    "temperature",
    "thresholds",
    "top_k",
    "prediction_sets",
    "calibration",
    "batch_size",
    "workers",
    "max_pixels",
    "max_seconds",
    "name",
    "run",
    "groups",
    "ood_method",
)


def settle(backend: Backend, **settings: Any) -> Settled:
    """Resolve every setting of ``backend``'s model once (see the module docstring).

    ``settings``: the names in ``SETTINGS`` (an unknown one is a ConfigError with a
    did-you-mean); ``calibration`` is an already loaded Calibration.
    """
    if not isinstance(backend, Backend):
        raise ConfigError(f"a twoends Backend was expected, got {type(backend).__name__}; use twoends.wrap(model)")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        close = {u: difflib.get_close_matches(u, SETTINGS, n=1) for u in unknown}
        hints = "".join(f" Did you mean {c[0]!r} for {u!r}?" for u, c in close.items() if c)
        raise ConfigError(
            f"{', '.join(map(repr, unknown))} is not a setting; settings are {', '.join(SETTINGS)}.{hints}"
        )
    return _settle(
        backend,
        **{**dict.fromkeys(SETTINGS), "max_pixels": DEFAULT_MAX_PIXELS, "max_seconds": DEFAULT_MAX_SECONDS, **settings},
    )


def _settle(
    backend: Backend,
    *,
    spec: Any,
    labels: Any,
    activation: Any,
    outputs: Any,
    temperature: Any,
    thresholds: Any,
    top_k: Any,
    prediction_sets: Any,
    calibration: Any,
    batch_size: Any,
    workers: Any,
    max_pixels: Any,
    max_seconds: Any,
    name: Any,
    run: Any,
    groups: Any,
    ood_method: Any,
) -> Settled:
    info = backend.info
    sources: dict[str, str] = {}

    def pick(key: str, explicit: Any, *candidates: tuple[Any, str], default: Any) -> Any:
        for value, source in ((explicit, "explicit"), *candidates):
            if value is not None:
                sources[key] = source
                return value
        sources[key] = "default"
        return default

    model_name = pick("name", name, (info.name, "model"), default="model")
    # the model's spec decides what an input is (text models take str as text, image models as paths)
    default_spec = ImageSpec()
    input_spec, sources["spec"] = resolve_input_spec(spec, info.spec, default_spec)
    limits = Limits(max_pixels=max_pixels, max_seconds=max_seconds)
    sources["max_pixels"] = "default" if max_pixels == DEFAULT_MAX_PIXELS else "explicit"
    sources["max_seconds"] = "default" if max_seconds == DEFAULT_MAX_SECONDS else "explicit"

    cal_settings = _calibration_settings(calibration, temperature, thresholds, prediction_sets, ood_method)
    label_map = pick(
        "labels",
        None if labels is None else LabelMap.from_any(labels),
        (None if not info.labels else LabelMap.from_any(info.labels), "model"),
        default=None,
    )
    model_outputs = pick("outputs", outputs, (info.outputs, "model"), default="logits")
    head = HeadSettings(
        labels=label_map,
        activation=pick("activation", activation, (info.activation, "model"), default="auto"),
        outputs=model_outputs,
        temperature=pick("temperature", temperature, (cal_settings.get("temperature"), "calibration"), default=1.0),
        thresholds=pick("thresholds", thresholds, (cal_settings.get("thresholds"), "calibration"), default=None),
        prediction_sets=pick(
            "prediction_sets", prediction_sets, (cal_settings.get("prediction_sets"), "calibration"), default=None
        ),
        calibration=pick("calibration", None, (cal_settings.get("calibration"), "calibration"), default=None),
        top_k=pick("top_k", top_k, default=DEFAULT_TOP_K),
        model=model_name,
        ood_method=pick(
            "ood_method",
            ood_method,
            (cal_settings.get("ood_method"), "calibration"),
            default=default_method(model_outputs),
        ),
        ood_threshold=pick("ood_threshold", None, (cal_settings.get("ood_threshold"), "calibration"), default=None),
        set_groups=cal_settings.get("set_groups"),
    )
    batch = pick("batch_size", batch_size, default=DEFAULT_BATCH_SIZE)
    check_positive("batch_size", batch)
    if workers is not None:
        check_positive("workers", workers)
    run = run if run is not None else RunOptions()
    sources.update({f"run.{k}": "explicit" for k in run.changed()})
    settled = Settled(
        name=model_name,
        spec=input_spec,
        plan=input_spec.plan(limits),
        head=head,
        num_outputs=None,
        labels=label_map,
        activation=head.activation,
        run=run,
        batch_size=batch,
        workers=pick("workers", workers, default=default_workers()),
        limits=limits,
        calibration=calibration,
        sources=sources,
        notes=tuple(info.notes),
    )
    if info.num_outputs:  # fail now, not after the first batch of a long run
        settled = settled.with_outputs(info.num_outputs)
    chosen = pick("groups", groups, (cal_settings.get("groups"), "calibration"), default=None)
    if chosen is not None:
        settled = _with_groups(settled, chosen, cal_settings.get("groups"))
    if calibration is not None and (settled.num_outputs or label_map is not None):
        calibration.check(
            settled.labels, model=model_name, activation=settled.activation if settled.num_outputs else None
        )
    return settled


def _with_groups(settled: Settled, groups: Any, calibrated: LabelGroups | None) -> Settled:
    """Label groups resolved against the labels as shown (names with did-you-mean, indices in range)."""
    labels = settled.labels
    if labels is None:
        raise ConfigError(
            "label groups name classes, but this model's classes are not known yet: pass labels= (or --labels FILE)"
        )
    resolved = LabelGroups.resolve(groups, labels)
    if calibrated is not None and _partition(resolved, len(labels)) != calibrated.to_dict():
        raise ConfigError(
            f"the calibration was fitted for the groups {calibrated.source} ({calibrated.describe()}), and other "
            f"groups were given ({resolved.describe()}): its conformal sets are for its own groups; drop groups= / "
            "--groups, or fit the calibration again with these groups"
        )
    shown = calibrated if calibrated is not None else resolved  # with "(other)": the sets may name it
    return dataclasses.replace(settled, head=dataclasses.replace(settled.head, groups=shown))


def _partition(groups: LabelGroups, n: int) -> dict | None:
    try:
        return groups.partition(n).to_dict()
    except ConfigError:  # overlapping groups cannot be the ones a group-level calibration was fitted on
        return None


def _describe_groups(head: HeadSettings, activation: str) -> dict:
    from .head.groups import SIGMOID_RULE, SOFTMAX_RULE

    groups = head.groups
    if groups is None:  # the caller asks only when there are groups; this keeps the type narrow
        return {}
    return {
        "groups": groups.to_dict(),
        "source": groups.source,
        "rule": SIGMOID_RULE if activation == "sigmoid" else SOFTMAX_RULE,
        "sets": "groups" if head.set_groups is not None else "classes",
    }


def _calibration_settings(
    calibration: Any, temperature: Any, thresholds: Any, prediction_sets: Any, ood_method: Any = None
) -> dict:
    """What a calibration sets (temperature, thresholds, prediction sets, its name); none without one."""
    if calibration is None:
        return {}
    if not hasattr(calibration, "head_settings"):
        raise ConfigError(
            f"calibration must be a loaded Calibration here, got {type(calibration).__name__}; pass the file to "
            "twoends.load(..., calibration=PATH) / twoends.wrap(..., calibration=PATH), which load it"
        )
    settings = dict(calibration.head_settings())
    given = [
        n
        for n, v in (("temperature", temperature), ("thresholds", thresholds), ("prediction_sets", prediction_sets))
        if v is not None
    ]
    if ood_method is not None and settings.get("ood_method") not in (None, ood_method):
        given.append("ood_method")
    if given:
        raise ConfigError(
            f"a calibration sets the temperature, thresholds and prediction sets itself: got it together with "
            f"{'/'.join(given)}; pass one or the other"
        )
    return settings


def check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
