"""The ``twoends`` command: thin click commands over the public API.

Each command lives in its own module and is added to the group here.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

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


def run() -> None:
    """The console entry point: ``main`` as a command, then a quick exit.

    Once a command has returned, its outputs are written and closed; what Python would
    still do is tear the interpreter down (runtime sessions, thread pools, hundreds of
    modules), 60 ms of a 0.4 s one-photo run here. The exit handlers still run (Ray's
    shutdown, thread-pool joins), the streams are flushed, then the process ends. With a
    non-daemon thread still running, Python's own exit waits for it as usual.
    """
    try:
        main.main(prog_name="twoends")
        code: object = 0
    except SystemExit as stop:
        code = stop.code
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others:
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # SystemExit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that left early, or a closed stream
            pass
    os._exit(code)


__all__ = ["main", "run"]
