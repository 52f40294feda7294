"""The doctor: the silent mistakes at both ends of a model, each as a check with a clear finding.

``twoends.check(...)`` runs every check that applies (see ``run.check``); each
check is also a plain function here, usable on its own:

input end   ``batch_shape`` (batch-dimension, layout), ``input_size``, ``normalization``,
            ``known_answer``, ``channel_order``
the model   ``training_mode``
output end  ``probabilities_as_logits``, ``softmax_axis``, ``activation``, ``labels``,
            ``over_confidence``

Every one returns a list of ``Finding`` (empty: nothing wrong seen).
"""

from .finding import SEVERITIES, Finding, Findings
from .inputs import batch_shape, input_size, normalization
from .model import KNOWN_ANSWERS, channel_order, known_answer, training_mode
from .outputs import activation, labels, over_confidence, probabilities_as_logits, softmax_axis
from .run import CHECKS, check

__all__ = [
    "CHECKS",
    "Finding",
    "Findings",
    "KNOWN_ANSWERS",
    "SEVERITIES",
    "activation",
    "batch_shape",
    "channel_order",
    "check",
    "input_size",
    "known_answer",
    "labels",
    "normalization",
    "over_confidence",
    "probabilities_as_logits",
    "softmax_axis",
    "training_mode",
]
