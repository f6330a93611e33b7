"""The daemon's socket protocol: one JSON object per line, both ways. Parsing and encoding
only; the server is device/ipc/server.py and the client device/ipc/client.py. The protocol itself is
described in device/ipc/server.py's docstring."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from device.core.modes import Mode

MAX_LINE_BYTES = 4096
SOCKET_NAME = "device.sock"
DEFAULT_RUNTIME_DIR = "/run/retrotread"
# sun_path holds 108 bytes including the terminating NUL
MAX_PATH_BYTES = 107


class Command(StrEnum):
    STATUS = "status"
    SUBSCRIBE = "subscribe"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    END = "end"
    MODE = "mode"  # the only command with an argument: "mode": "forward" | "backward"
    RELOAD = "reload"  # re-read the config file (the web's settings page wrote it)


@dataclass(frozen=True)
class Request:
    cmd: Command
    mode: Mode | None = None  # set only for Command.MODE


class RequestError(ValueError):
    """A request line the daemon cannot accept; str(error) is one sentence for the client."""


class IpcError(Exception):
    """The device socket cannot be served or reached; str(error) is one sentence."""


_COMMANDS = ", ".join(command.value for command in Command)
_MODES = " or ".join(f'"{mode.value}"' for mode in Mode)
_EXAMPLE = '{"cmd": "status"}'
TOO_LONG = (
    f"the request line is longer than {MAX_LINE_BYTES} bytes; "
    f"send one JSON object of at most {MAX_LINE_BYTES} bytes per line."
)


def _quote(value: Any) -> str:
    """A client's value as short JSON, so an error sentence stays one readable line."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), "an object")


def parse_request(line: bytes) -> Request:
    """Turn one request line (with or without its newline) into a Request.

    Raises RequestError with one sentence naming the problem and what is allowed.
    """
    body = line.removesuffix(b"\n").removesuffix(b"\r")
    if len(body) > MAX_LINE_BYTES:
        raise RequestError(TOO_LONG)
    if not body.strip():
        raise RequestError(f"the request line is empty; send one JSON object, e.g. {_EXAMPLE}.")
    try:
        message = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:  # a ValueError too, so it comes first
        raise RequestError("the request is not valid UTF-8; send JSON encoded as UTF-8.") from None
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        raise RequestError(f"the request is not valid JSON; send e.g. {_EXAMPLE}.") from None
    if not isinstance(message, dict):
        raise RequestError(
            f"the request must be a JSON object, not {_json_type(message)}; send e.g. {_EXAMPLE}."
        )
    if "cmd" not in message:
        raise RequestError(f'the request has no "cmd"; allowed commands: {_COMMANDS}.')
    value = message["cmd"]
    if not isinstance(value, str):
        raise RequestError(
            f'"cmd" must be a string, not {_json_type(value)}; allowed commands: {_COMMANDS}.'
        )
    try:
        cmd = Command(value)
    except ValueError:
        raise RequestError(f"unknown cmd {_quote(value)}; allowed commands: {_COMMANDS}.") from None
    allowed = {"cmd", "mode"} if cmd is Command.MODE else {"cmd"}
    extra = sorted(set(message) - allowed)
    if extra:
        keys = ", ".join(_quote(key) for key in extra)
        takes = '"cmd" and "mode"' if cmd is Command.MODE else 'only "cmd"'
        raise RequestError(f'the request has unexpected keys {keys}; "{cmd}" takes {takes}.')
    if cmd is not Command.MODE:
        return Request(cmd)
    if "mode" not in message:
        raise RequestError(f'"cmd": "mode" needs "mode": {_MODES}.')
    mode = message["mode"]
    if not isinstance(mode, str) or mode not in {m.value for m in Mode}:
        raise RequestError(f"unknown mode {_quote(mode)}; allowed modes: {_MODES}.")
    return Request(cmd, Mode(mode))


def error_reply(sentence: str) -> dict[str, Any]:
    return {"ok": False, "error": sentence}


def encode_line(message: dict[str, Any]) -> bytes:
    """One protocol line. Raises TypeError/ValueError for values JSON cannot carry (NaN too:
    browsers' JSON.parse rejects it)."""
    text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def default_socket_path() -> Path:
    """`$RUNTIME_DIRECTORY/device.sock` under systemd (the first directory when it lists
    several), else /run/retrotread/device.sock."""
    listed = os.environ.get("RUNTIME_DIRECTORY", "").replace(":", " ").split()
    return Path(listed[0] if listed else DEFAULT_RUNTIME_DIR) / SOCKET_NAME
