"""The first export says what it does and nothing a user cannot act on.

Where torchvision is absent (the light install), torch.onnx logs "torchvision is not installed. Skipping
torchvision::nms" and three more lines on every export; a classifier has no detection ops to register."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("torch")

from twoends.backends.onnx_export import _CHATTY_LOGGERS, _quiet_exporter  # noqa: E402


def test_the_registration_notes_are_silenced_during_an_export_only():
    logger = logging.getLogger(_CHATTY_LOGGERS[0])
    before = logger.level
    with _quiet_exporter():
        assert not logger.isEnabledFor(logging.WARNING) and logger.isEnabledFor(logging.ERROR)
        logger.warning("torchvision is not installed. Skipping torchvision::nms")  # dropped
    assert logger.level == before  # the user's own logging settings come back untouched


def test_the_silenced_logger_is_the_one_torch_logs_them_with():
    # the name is torch's: if torch renamed the module, the silencing would silently stop working
    import torch.onnx._internal.exporter._registration as registration

    assert registration.logger.name == _CHATTY_LOGGERS[0]
