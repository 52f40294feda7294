"""keep_freed_memory: freed blocks are reused instead of being page-faulted in again."""

import os
import subprocess
import sys

import pytest

# Allocate and free a 40 MiB block (the size of a batch's activations) 50 times and count
# the minor page faults. With glibc's defaults a block over 32 MiB is mmapped and munmapped
# each time, so every allocation faults its pages in again (fewer faults where the kernel
# uses 2 MiB transparent huge pages, but as many more as there are allocations); kept for
# reuse, only the first allocation faults.
CHILD = r"""
import resource, sys
import numpy as np
from twoends.process import keep_freed_memory
state = keep_freed_memory()
np.ones(40 << 17)  # the first allocation faults in any case
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    a = np.ones(40 << 17)  # 40 MiB of float64, every page written
    del a
print(state, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

linux_glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")


def _child(env_value: str | None) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "TWOENDS_KEEP_MEMORY"}
    if env_value is not None:
        env["TWOENDS_KEEP_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True)
    state, faults = out.stdout.split(maxsplit=1)[0], int(out.stdout.split()[-1])
    return state, faults


@linux_glibc
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    state, kept = _child(None)
    off_state, default = _child("0")
    assert state == "on" and off_state == "off"
    assert default >= 50 * 20  # every allocation faulted in anew: at least 20 huge pages of 2 MiB each
    assert kept * 10 < default  # kept for reuse: the 50 allocations reuse the first one's pages


def test_it_is_idempotent_and_says_what_it_did():
    from twoends.process import keep_freed_memory

    first = keep_freed_memory()
    assert keep_freed_memory() == first
    assert first == "on" or first.startswith(("off", "unavailable"))


def test_importing_twoends_does_not_change_the_allocator():
    # the library never tunes the process on its own: only the commands (and callers) do
    code = "import twoends, twoends.process as a; print(a._state)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"
