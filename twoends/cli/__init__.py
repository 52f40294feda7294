"""The ``twoends`` command: thin click commands over the public API.

Each command lives in its own module and is added to the group here.
"""

from __future__ import annotations

import click

from .._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="twoends")
def main() -> None:
    """Run any pretrained classifier the right way: its own preprocessing in, honest probabilities out."""


def _add_commands() -> None:
    from .bench import bench
    from .models import models
    from .predict import predict

    main.add_command(predict)
    main.add_command(models)
    main.add_command(bench)
    from .calibrate import calibrate
    from .doctor import doctor
    from .evaluate import evaluate
    from .export import export
    from .serve import serve

    for command in (export, serve, evaluate, calibrate, doctor):
        main.add_command(command)


_add_commands()

__all__ = ["main"]
