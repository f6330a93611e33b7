"""Writing settings back into the user's config.toml: only the changed keys, with every comment,
blank line and key order the operator left in the file, and atomically, so the daemon reading
the file at any moment (a reload, a power cut) sees either the old file or the new one.

The dashboard's settings page validates first (device.config: merge_overrides) and then calls
write_config_changes; this module checks only that the text it writes is TOML that loads back
to a config the device accepts.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from typing import Any

import tomlkit
import tomlkit.exceptions

from device.config.files import NoTempFile, write_atomically
from device.config.load import config_from_mapping, format_config
from device.config.model import Config
from device.errors import RetrotreadError

__all__ = ["ConfigWriteError", "write_config_changes"]

# A new file holds no secret (the admin password lives in the state dir), and the daemon may
# run as another user than the dashboard: readable by all, writable by its owner.
NEW_FILE_MODE = 0o644


class ConfigWriteError(RetrotreadError):
    """The config file could not be written; str() is one sentence naming the file and the fix.
    The file on disk is unchanged."""


def write_config_changes(
    path: str | os.PathLike[str],
    changes: Mapping[str, Mapping[str, Any]],
    *,
    base: Config,
) -> Config:
    """Set `changes` ({table: {key: value}}, plain TOML values) in the config file at `path`
    and return the Config the new file resolves to.

    An existing file keeps its comments, ordering and mode; the keys not in `changes` are left
    exactly as written. When no file exists it is created from `base` (every key, resolved)
    with the changes applied. A symlink is followed, so the link stays a link. Raises
    ConfigWriteError, leaving the old file in place, when the file cannot be read or written,
    and ConfigError if the result would not load (a caller that validated never sees this).
    """
    target = os.path.realpath(os.fspath(path))
    try:
        with open(target, encoding="utf-8") as fh:
            text: str | None = fh.read()
        info = os.stat(target)
        mode, owner = stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)
    except FileNotFoundError:
        text, mode, owner = None, NEW_FILE_MODE, None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigWriteError(
            f"{path}: cannot read the config file ({_reason(exc)}); fix it by hand or check "
            "its permissions, then save again."
        ) from None
    if text is None:
        text = format_config(base, source="the dashboard's settings page")
    try:
        new_text = _apply(text.removeprefix("\ufeff"), changes)
    except (tomlkit.exceptions.TOMLKitError, RecursionError) as exc:
        why = "it nests too deep" if isinstance(exc, RecursionError) else str(exc)
        raise ConfigWriteError(
            f"{path}: the config file is not valid TOML ({why}); run retrotread check-config "
            "on it and fix it by hand, then save again."
        ) from None
    config = config_from_mapping(tomllib.loads(new_text), source=os.fspath(path))
    _replace_atomically(target, new_text, mode=mode, owner=owner, shown=os.fspath(path))
    return config


def _apply(text: str, changes: Mapping[str, Mapping[str, Any]]) -> str:
    doc = tomlkit.parse(text)
    for table_name, entries in changes.items():
        if table_name not in doc:
            written = doc.as_string()
            if written.strip() and not written.endswith("\n\n"):
                doc.add(tomlkit.nl())  # a blank line before the new [table], like the rest
            doc.add(table_name, tomlkit.table())
        table = doc[table_name]
        for key, value in entries.items():
            # Assigning over an existing key keeps its trailing comment; a new key is appended
            # to its table (an inline table or dotted keys stay in their own style).
            table[key] = value
    return tomlkit.dumps(doc)


def _replace_atomically(
    target: str, text: str, *, mode: int, owner: tuple[int, int] | None, shown: str
) -> None:
    """Write `text` over `target` atomically (device.config.files), keeping the old file's
    owner and group where this user may, so the daemon's group can still read it."""
    try:
        write_atomically(target, text.encode("utf-8"), mode=mode, owner=owner, owner_required=False)
    except NoTempFile as exc:
        directory = os.path.dirname(target) or "."
        raise ConfigWriteError(
            f"{shown}: cannot write into {directory} ({_reason(exc)}); give the dashboard's "
            "user write permission on that directory (the new file is renamed into place)."
        ) from None
    except OSError as exc:
        raise ConfigWriteError(
            f"{shown}: cannot save the config file ({_reason(exc)}); the old file is unchanged."
        ) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return exc.__class__.__name__
