"""Writing a file so that no reader ever sees half of it: the config file the settings page
saves (device.config.write) and the dashboard's files in its state directory (web.auth,
web.logins) all go through write_atomically. It lives in the config package because that is
the lowest layer the web may import; it knows nothing of config.

Errors stay OSError: each caller turns them into its own one-sentence message, since only it
knows which file this is to the operator and what the fix is.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["NoTempFile", "write_atomically"]


class NoTempFile(OSError):
    """No temporary file could be made beside the target: its directory refuses new files (a
    caller tells "give write permission on the folder" apart from a failed write). Internal:
    callers turn it into their own sentence, like any OSError."""


def write_atomically(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int,
    owner: tuple[int, int] | None = None,
    owner_required: bool = True,
    clobber: bool = True,
) -> None:
    """Write `data` to `path` with `mode` through a temporary file in the same directory,
    fsynced, then renamed into place, and the directory fsynced so the rename survives a power
    cut: a reader sees the old file or the new one, never a mix.

    `owner` (uid, gid) is given to the new file. With owner_required the chown must succeed
    (OSError otherwise); without, the uid and gid are kept where this user may (root may; any
    user may keep a group it belongs to) and quietly not otherwise. clobber=False never
    replaces an existing file (two dashboard workers starting at the same moment): the second
    gets FileExistsError. Raises NoTempFile when the directory takes no new file, OSError for
    any other failure; the old file is unchanged either way and no temporary file is left.
    """
    target = os.fspath(path)
    directory = os.path.dirname(target) or "."
    try:
        # mkstemp makes the file 0600: nothing is readable before the mode below is set
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}-")
    except OSError as exc:
        raise NoTempFile(exc.errno, exc.strerror, exc.filename) from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if owner is not None:
                _give_owner(fh.fileno(), owner, required=owner_required)
            os.fsync(fh.fileno())
        if clobber:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails with FileExistsError where os.replace would not
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # after a link, or a failure; after a replace it is gone already
    _sync_directory(directory)


def _give_owner(fd: int, owner: tuple[int, int], *, required: bool) -> None:
    uid, gid = owner
    if required:
        os.fchown(fd, uid, gid)
        return
    with contextlib.suppress(OSError):
        os.fchown(fd, uid, gid)
        return
    with contextlib.suppress(OSError):
        os.fchown(fd, -1, gid)


def _sync_directory(directory: str) -> None:
    # Best effort: the file itself is whole already; some filesystems cannot fsync a folder.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
