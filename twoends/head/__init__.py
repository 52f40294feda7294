"""The output end: framework-agnostic numerics and the Head.

No framework is imported here: every function works on the array it is given
(NumPy, PyTorch, JAX, or any array-API library) and returns the same kind.
"""

from .activations import apply_temperature, log_sigmoid, log_softmax, logsumexp, sigmoid, softmax
from .head import Head
from .topk import TopK, topk
from .uncertainty import binary_entropy, entropy, margin, max_probability

__all__ = [
    "Head",
    "TopK",
    "apply_temperature",
    "binary_entropy",
    "entropy",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "margin",
    "max_probability",
    "sigmoid",
    "softmax",
    "topk",
]
