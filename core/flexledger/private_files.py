"""Files and folders that hold keys, credentials or household data: private from creation.

A mode set after the write leaves a window in which another local user can open the file (and an
open descriptor outlives any later chmod), so each file is created with its final mode by
``os.open`` and each folder by ``mkdir(mode=...)``; a data directory found open to others is closed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` created (with missing parents) readable by its owner only; an existing folder of ours
    that others can read is made private too (it holds household consumption and credentials)."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(stat.S_IMODE(info.st_mode) & ~0o077)
    return path


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to ``path``, readable by its owner only from the moment it exists. With
    ``exclusive`` an existing file is an error (:class:`FileExistsError`); otherwise the file is
    replaced whole (written beside it, then renamed over it)."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
