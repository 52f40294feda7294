"""``twoends serve`` fails fast, before listening, on a model it cannot load or a bad limit."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from twoends.cli import main


def test_help_lists_the_limits():
    out = CliRunner().invoke(main, ["serve", "--help"]).output
    for option in (
        "--max-batch-size",
        "--max-delay-ms",
        "--max-body-mb",
        "--timeout-s",
        "--max-queue",
        "--port",
        "--host",
    ):
        assert option in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--model", "efficientnet_lite9"], "unknown model"),
        (["--max-batch-size", "0"], "max-batch-size"),
        (["--timeout-s", "0"], "timeout-s"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, needle):
    r = CliRunner().invoke(main, ["serve", "--port", "0", *args])
    assert r.exit_code == 2 and needle in r.output
