"""Torch devices by name: "auto", "cpu", "cuda", "cuda:N", "mps" -> a usable ``torch.device``.

Importing this module imports torch.
"""

from __future__ import annotations

import torch

from twoends.errors import ConfigError

__all__ = ["available_devices", "resolve_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The devices this process can run on, in the order "auto" prefers them."""
    devices = []
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda", "cuda:1", "mps" or a ``torch.device`` into a usable device.

    "auto" picks CUDA if available, else MPS if available, else the CPU.
    An unknown or unavailable device raises ConfigError naming the available ones.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")

    available = ", ".join(["auto", *available_devices()])
    try:
        dev = device if isinstance(device, torch.device) else torch.device(str(device).strip().lower())
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"unknown device {device!r}: expected one of {available}") from None

    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r} was asked for but CUDA is not available here; available devices: {available}"
            )
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); available devices: {available}"
            )
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise ConfigError(
                f"device {device!r} was asked for but MPS is not available here; available devices: {available}"
            )
        return torch.device("mps")
    raise ConfigError(f"unsupported device {device!r}: expected one of {available}")


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda:{dev.index if dev.index is not None else 0}"
    return dev.type
