"""Open a path for reading without ever blocking on it, or refuse it with a clear reason.

``open(path)`` on a FIFO (a named pipe called ``x.jpg``) waits forever for a writer,
and a device file (``/dev/zero``) never ends; neither is an input file. The path is
opened non-blocking (a no-op for regular files) and anything but a regular file is
a ``DecodeError`` that says what it is.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from ..errors import DecodeError

__all__ = ["open_regular_file"]


def open_regular_file(path: str, *, what: str = "decode") -> BinaryIO:
    """``path`` opened for binary reading; a DecodeError for a missing, special or unreadable one."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DecodeError(f"cannot {what} {path}: no such file (or a link to a missing file); check the path") from None
    except IsADirectoryError:
        raise DecodeError(f"cannot {what} {path}: it is a directory; pass the folder as a source instead") from None
    except OSError as e:
        raise DecodeError(f"cannot {what} {path}: cannot open it ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise DecodeError(f"cannot {what} {path}: it is a directory; pass the folder as a source instead")
        if not stat.S_ISREG(mode):
            raise DecodeError(
                f"cannot {what} {path}: it is {_kind(mode)}, not a regular file; expected a file "
                "(read a stream yourself and pass its bytes instead)"
            )
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "a special file"
