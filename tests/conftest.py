import os
import sys

# the tests run against the working tree, installed or not
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow 2.21 and Triton both bundle LLVM: Triton's library loaded after TensorFlow crashes the
# process (torch loads it for torch.compile and its optimizers). Test modules import TensorFlow at
# collection, before any torch test runs: load Triton's library first (twoends/backends/tf_first.py).
import importlib.util  # noqa: E402

if importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("triton") is not None:
    import triton._C.libtriton  # noqa: E402,F401
