import atexit
import os
import shutil
import sys
import tempfile

# the tests run against the working tree, installed or not
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow 2.21 and Triton both bundle LLVM: Triton's library loaded after TensorFlow crashes the
# process (torch loads it for torch.compile and its optimizers). Test modules import TensorFlow at
# collection, before any torch test runs: load Triton's library first (twoends/backends/tf_first.py).
import importlib.util  # noqa: E402

if importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("triton") is not None:
    import triton._C.libtriton  # noqa: E402,F401

# Exports made by the tests go to a cache of this test session, never the user's.
if "TWOENDS_CACHE_DIR" not in os.environ:
    os.environ["TWOENDS_CACHE_DIR"] = tempfile.mkdtemp(prefix="twoends-test-cache-")
    atexit.register(shutil.rmtree, os.environ["TWOENDS_CACHE_DIR"], ignore_errors=True)
# The suite tests each runtime by asking for it (tests/test_runtimes.py tests "auto", the default, and
# the start-up from a cached export); elsewhere the PyTorch backend is what is under test, and exporting
# every model a test builds would cost tens of seconds each.
os.environ.setdefault("TWOENDS_RUNTIME", "torch")
