"""The input end of an ensemble: decode each input once, then every member applies its own plan.

``EnsembleSpec`` holds the members' specs (each member keeps its own input size,
normalisation, tokenizer...). Its plan decodes a raw input **once** and gives a
tuple with one model input per member (``apply``), so an image is read and
decompressed one time however many members look at it.

Decoding once, for images: the pixel limit is the strictest of the members'; each
member's header check (``check_size``) runs before any pixel is decoded; JPEG draft
decoding is asked for the largest of the members' draft sizes, so no member gets
fewer pixels than it would alone. (A member alone may pick a smaller draft scale
for a large JPEG; then its pixels here come from a finer decode.)
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from ..errors import ConfigError, InputError
from .image import decode_image
from .image_plan import ImageInput
from .protocol import Deferred, InputPlan, InputSpec, Limits

__all__ = ["EnsembleSpec", "EnsemblePlan"]


class EnsembleSpec(InputSpec):
    """The members' input specs, in member order (read-only)."""

    def __init__(self, specs: Sequence[InputSpec], names: Sequence[str]):
        kinds = {s.kind for s in specs}
        if len(kinds) != 1:
            shown = ", ".join(f"{n}: {s.kind}" for n, s in zip(names, specs))
            raise ConfigError(f"an ensemble's members must take the same kind of input, got {shown}")
        self.specs, self.names = tuple(specs), tuple(names)
        self.kind = kinds.pop()

    def plan(self, limits: Limits | None = None) -> "EnsemblePlan":
        return EnsemblePlan(self, [s.plan(limits) for s in self.specs], limits or Limits())

    def to_dict(self) -> dict[str, Any]:
        return {"members": [{"model": n, **s.to_dict()} for n, s in zip(self.names, self.specs)]}

    def replace(self, **changes: Any) -> "EnsembleSpec":
        raise ConfigError(
            f"an ensemble has no spec of its own to change ({sorted(changes)}): each member keeps its own; "
            "load the member with the spec it needs, then build the ensemble"
        )

    def describe(self) -> str:
        return "ensemble: " + "; ".join(f"{n}: {s.describe()}" for n, s in zip(self.names, self.specs))


class EnsemblePlan(InputPlan):
    """Decode once, apply every member's plan: ``apply(decoded)`` -> a tuple of model inputs."""

    per_batch = False  # members that work per batch get a Deferred in their slot, applied with their batch

    def __init__(self, spec: EnsembleSpec, plans: Sequence[InputPlan], limits: Limits):
        self.spec, self.plans, self.limits = spec, tuple(plans), limits
        self.kind = spec.kind
        self._images = all(isinstance(p, ImageInput) for p in self.plans)

    def is_single(self, x: Any) -> bool:
        return self.plans[0].is_single(x)

    def items(self, x: Any) -> Iterator[Any]:
        return self.plans[0].items(x)

    def decode(self, payload: Any) -> Any:
        if not self._images:  # texts: nothing to share but the checks, which are the first member's
            return self.plans[0].decode(payload)
        return decode_image(
            payload, max_pixels=self.limits.max_pixels, draft_size=self.draft_size, check_size=self._check_size
        )

    def _check_size(self, width: int, height: int) -> None:
        for p in self.plans:
            p.check_size(width, height)

    def apply(self, decoded: Any) -> tuple:
        return tuple(Deferred(decoded) if p.per_batch else p.apply(decoded) for p in self.plans)

    def check_ready(self, x: Any) -> Any:
        if isinstance(x, tuple) and len(x) == len(self.plans):
            return tuple(p.check_ready(v) for p, v in zip(self.plans, x))
        raise InputError(
            f"an ensemble takes raw inputs ({self.kind}s): each of its {len(self.plans)} members preprocesses its "
            f"own (input sizes {self._sizes()}); a preprocessed array fits one member only - pass the "
            f"{self.kind} itself, or a tuple with one model input per member"
        )

    @property
    def draft_size(self) -> Any:
        sizes = [p.draft_size for p in self.plans]
        if any(s is None for s in sizes):
            return None
        pairs = [(s, s) if isinstance(s, int) else tuple(s) for s in sizes]
        return max(h for h, _ in pairs), max(w for _, w in pairs)

    def warmup_input(self) -> Any:
        inputs = tuple(p.warmup_input() for p in self.plans)
        return None if any(x is None for x in inputs) else inputs

    def describe(self) -> str:
        return self.spec.describe()

    def _sizes(self) -> str:
        return ", ".join(str(p.output_shape) for p in self.plans)
