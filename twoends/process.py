"""Settings for a process that runs one model for a long time: what the ``twoends`` commands set.

Both are process-wide, so the library never applies them on its own: the
commands do (``predict``, ``evaluate``, ``calibrate``, ``serve``, ``bench``,
``doctor``, and the Ray actors), and a Python program running a big job may
call ``tune_process()`` once, first thing. ``TWOENDS_KEEP_MEMORY=0`` turns the
allocator setting off; an ``GOMP_SPINCOUNT`` you set yourself is kept.

Keep freed memory for reuse: the C allocator setting that big inference jobs want.

Why: glibc's ``malloc`` serves every block over its mmap threshold (128 KiB at
first, raised to at most 32 MiB as blocks are freed) with a fresh ``mmap`` and
gives it back with ``munmap`` when it is freed, and it trims the top of the
heap back to the OS. An inference loop allocates and frees the same large
blocks again and again - every activation tensor of every layer, every decoded
and resized image - so each one is page-faulted in anew. On the 2-core VM this
project is developed on, those page faults took about a third of an
EfficientNet-Lite0 forward pass at batch 8 and most of the cost of copying a
decoded photo (bench/RESULTS.md). Whether a given block is mmapped also depends
on what the process freed before, so the speed of the same model changed by up
to 2x from one process to the next.

``keep_freed_memory()`` sets the mmap threshold to 256 MiB (below it, blocks
come from the heap and are reused) and the trim threshold to 1 GiB (freed heap
memory stays with the process). The cost is that the process's resident memory
stays at its high-water mark instead of shrinking when a batch is freed: the
peak is the same, only the give-back is gone. Only glibc has ``mallopt``;
elsewhere it does nothing and says so.

Shorter OpenMP spinning: after each parallel region, PyTorch's OpenMP threads
(GNU libgomp) spin for 300,000 rounds before they sleep. On the CPU the
decoding threads run right after the forward pass (runner.py), and spinning
forward threads take the cores from them. ``GOMP_SPINCOUNT=10000`` keeps the
threads spinning through the short gaps between the operators of one forward
pass but lets them sleep between batches (bench/RESULTS.md: 98 vs 81 images/s
in float32). libgomp reads it when it is loaded, so it only works before torch
is imported; ``tune_openmp`` says when it came too late.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

__all__ = ["tune_process", "keep_freed_memory", "tune_openmp", "ENV_SWITCH", "SPINCOUNT"]

#: set to 0 to keep the C allocator's defaults in the ``twoends`` commands
ENV_SWITCH = "TWOENDS_KEEP_MEMORY"

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30

#: libgomp's spin rounds before an idle OpenMP thread sleeps (its default: 300,000)
SPINCOUNT = "10000"

_lock = threading.Lock()
_state: str | None = None
_openmp_state: str | None = None


def keep_freed_memory() -> str:
    """Make glibc keep and reuse freed memory (see the module docstring); idempotent.

    Returns what happened, for ``describe``-style reports: ``"on"``,
    ``"off (TWOENDS_KEEP_MEMORY=0)"`` or ``"unavailable (...)"``.
    """
    return _once("_state", _apply)


def _apply() -> str:
    if os.environ.get(ENV_SWITCH, "1").strip() in ("0", "false", "no", "off"):
        return f"off ({ENV_SWITCH}=0)"
    if not sys.platform.startswith("linux"):
        return f"unavailable (mallopt is glibc's; this is {sys.platform})"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "unavailable (no glibc mallopt in this C library)"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 or mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return "unavailable (mallopt refused the setting)"
    return "on"


def tune_openmp() -> str:
    """Set ``GOMP_SPINCOUNT`` (see the module docstring) unless it is set or torch is already loaded.

    Idempotent: a second call reports what the first one did.
    """
    return _once("_openmp_state", _apply_openmp)


def _once(name: str, apply) -> str:
    """``apply()`` on the first call only, its report kept in the module global ``name``; that report after."""
    with _lock:
        if globals()[name] is None:
            globals()[name] = apply()
        return globals()[name]


def _apply_openmp() -> str:
    if "GOMP_SPINCOUNT" in os.environ:
        return f"kept (GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']} was set)"
    if "torch" in sys.modules:
        return "too late (torch is already imported; set GOMP_SPINCOUNT before starting Python)"
    os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
    return f"on (GOMP_SPINCOUNT={SPINCOUNT})"


def tune_process() -> dict[str, str]:
    """Both settings; what each did."""
    return {"allocator": keep_freed_memory(), "openmp": tune_openmp()}
