"""Writing the dashboard's files in its state directory (the directory of [storage] db unless
told otherwise): privately, atomically, and with one sentence when the directory will not
have them. web.auth keeps the secret key and the password hash there, web.logins the logins.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class StateDirError(Exception):
    """The state directory cannot hold the secret key, the password hash or the logins;
    str() is one sentence naming the file and the fix."""


def write_private(
    path: Path,
    data: bytes,
    *,
    clobber: bool,
    owner: tuple[int, int] | None = None,
    mode: int = 0o600,
) -> None:
    """Write `data` to `path` with `mode` (0600 unless told) through a fsynced temp file in the
    same directory, so no reader ever sees half a file. clobber=False never replaces an
    existing file (a second worker starting at the same moment): FileExistsError then."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mkstemp: mode 0600
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if owner is not None:
                os.fchown(fh.fileno(), *owner)
            os.fsync(fh.fileno())
        if clobber:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def state_problem(path: Path, exc: OSError, doing: str) -> StateDirError:
    """The sentence for an OSError while `doing` something with `path`."""
    reason = (exc.strerror or exc.__class__.__name__).lower()
    return StateDirError(
        f"{path}: cannot {doing} ({reason}); make {path.parent} writable by the dashboard's "
        "user, or give the dashboard another state directory."
    )
