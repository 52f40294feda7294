"""One guard for processes that hold TensorFlow and PyTorch together.

TensorFlow 2.21 and Triton (the compiler behind ``torch.compile``, which torch also loads when
an optimizer or ``torch._dynamo`` is first used) each bundle LLVM: a process that loads Triton's
library after TensorFlow's crashes with a segmentation fault; loaded the other way round, both
work. The TensorFlow and Keras backends call ``load_triton_first()`` before TensorFlow is
imported: when the user has already imported torch and Triton is installed, Triton's library is
loaded first. It imports nothing when torch is not imported (rule 1) or TensorFlow already is.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

__all__ = ["load_triton_first"]


def load_triton_first() -> bool:
    """Load Triton's library before TensorFlow when torch is in use; True when it did."""
    if "tensorflow" in sys.modules or "torch" not in sys.modules or "triton" in sys.modules:
        return False
    if importlib.util.find_spec("triton") is None:
        return False
    try:
        importlib.import_module("triton._C.libtriton")
    except Exception:  # noqa: BLE001 - a Triton that cannot load is torch's business, not ours
        return False
    return True
