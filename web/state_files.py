"""Writing the dashboard's files in its state directory (the directory of [storage] db unless
told otherwise): privately, atomically, and with one sentence when the directory will not
have them. web.auth keeps the secret key and the password hash there, web.logins the logins.
"""

from __future__ import annotations

from pathlib import Path

from device.config.files import write_atomically
from device.errors import RetrotreadError

# The secret key and the logins are the dashboard's alone.
PRIVATE_MODE = 0o600


class StateDirError(RetrotreadError):
    """The state directory cannot hold the secret key, the password hash or the logins;
    str() is one sentence naming the file and the fix."""


def write_private(
    path: Path,
    data: bytes,
    *,
    clobber: bool,
    owner: tuple[int, int] | None = None,
    mode: int = PRIVATE_MODE,
) -> None:
    """Write `data` to `path` with `mode` (0600 unless told), atomically: the one atomic write
    (device.config.files.write_atomically), with an owner that must be given or the write
    fails. clobber=False never replaces an existing file (a second worker starting at the
    same moment): FileExistsError then. Raises OSError, which state_problem turns into one
    sentence."""
    write_atomically(path, data, mode=mode, owner=owner, clobber=clobber)


def state_problem(path: Path, exc: OSError, doing: str) -> StateDirError:
    """The sentence for an OSError while `doing` something with `path`."""
    reason = (exc.strerror or exc.__class__.__name__).lower()
    return StateDirError(
        f"{path}: cannot {doing} ({reason}); make {path.parent} writable by the dashboard's "
        "user, or give the dashboard another state directory."
    )
