"""Reaching the Hugging Face hub: one quick probe, then the cache only when it cannot be reached.

Without a network, ``from_pretrained`` retries each file for 35-60 s before it says so.
Before a hub name is loaded, one TCP connection to the hub's endpoint is tried (a few
seconds at most, name resolution included); when it fails, the hub library runs in its
offline mode for that load: a cached model loads at once, a missing one fails at once,
and the error names ``HF_HUB_OFFLINE``. With ``HF_HUB_OFFLINE=1`` set, nothing is probed.

Imports huggingface_hub (installed with transformers and timm); only their backends call it.
"""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlparse

__all__ = ["PROBE_TIMEOUT_S", "hub_unreachable", "offline_when_unreachable", "offline_hint"]

PROBE_TIMEOUT_S = 3.0
_LOCK = threading.Lock()


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the hub cannot be used now (offline mode set, or no connection), or None when it answers."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    outcome: list[BaseException | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(e)

    # a thread, because name resolution has no timeout of its own
    thread = threading.Thread(target=probe, name="twoends-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer from {constants.ENDPOINT} within {timeout:g} s"
    if outcome[0] is not None:
        return f"cannot connect to {constants.ENDPOINT} ({outcome[0]})"
    return None


@contextmanager
def offline_when_unreachable() -> Iterator[str | None]:
    """Run the body in the hub library's offline mode when the hub cannot be reached; yields why (or None)."""
    from huggingface_hub import constants

    why = hub_unreachable()
    if why is None or constants.HF_HUB_OFFLINE:
        yield why
        return
    with _LOCK:  # the hub library's switch is a module global: one load at a time flips it
        before = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True
        try:
            yield why
        finally:
            constants.HF_HUB_OFFLINE = before


def offline_hint(why: str | None) -> str:
    """The sentence an error adds when the hub was not used."""
    if why is None:
        return ""
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    return (
        f" The hub was not used ({why}), so only the cache at {cache} was looked at"
        " (HF_HUB_OFFLINE=1 skips the network check; download the model once with internet access)."
    )
