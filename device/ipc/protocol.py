"""The daemon's socket protocol: parsing and encoding only; the server is device/ipc/server.py
and the client device/ipc/client.py.

Protocol (a contract with the web dashboard, and easy to try with `socat`): one JSON object
per line, UTF-8, newline-terminated, at most 4096 bytes per request line.

    {"cmd": "status"}                    one status line
    {"cmd": "subscribe"}                 a status line at once, then one every 250 ms until
                                         the client disconnects (further input is ignored)
    {"cmd": "start" | "pause" | "resume" | "end"}
    {"cmd": "mode", "mode": "forward" | "backward"}
    {"cmd": "reload"}                    re-read the config file

Every reply has "ok": true|false. A request the daemon cannot accept gets
{"ok": false, "error": "<one sentence>"} and the connection stays usable. A request line
longer than 4096 bytes gets one such error, the rest of that line is skipped up to its newline,
and the next line is served normally.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from device.core.modes import Mode

# The status every status and subscribe line carries (after its "ok"): built in
# device/core/status.py, the protocol's own type for the daemon and the web.
from device.core.status import ControllerStatus as ControllerStatus
from device.core.status import DeviceStatus as DeviceStatus
from device.core.status import HealthStatus as HealthStatus
from device.core.status import device_status as device_status
from device.errors import RetrotreadError

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

    def message(self) -> dict[str, str]:
        """The request as the socket takes it: {"cmd": ...}, and "mode" for Command.MODE."""
        return {"cmd": self.cmd} if self.mode is None else {"cmd": self.cmd, "mode": self.mode}


@dataclass(frozen=True)
class Spelling:
    """How one party writes a command: the socket's {"cmd": "start"} lines, the dashboard's
    {"action": "start"} bodies. The checks are the same for both (request_from); only the
    words of their sentences differ, and which commands each may send."""

    key: str  # the field that names the command
    noun: str  # the whole object, in a sentence: "request", "body"
    listed: str  # what the allowed names are called: "commands", "actions"
    commands: tuple[Command, ...]
    names_wrong_type: bool = True  # a key that is no string: named by its JSON type, or unknown
    says_whose_keys: bool = True  # "the request has unexpected keys", or "unexpected keys"


class RequestError(RetrotreadError, ValueError):
    """A request line the daemon cannot accept; str(error) is one sentence for the client."""


class IpcError(RetrotreadError):
    """The device socket cannot be served or reached; str(error) is one sentence."""


SOCKET = Spelling(key="cmd", noun="request", listed="commands", commands=tuple(Command))
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
    return request_from(message, SOCKET)


def request_from(message: dict[str, Any], spelling: Spelling) -> Request:
    """Turn one decoded JSON object into a Request, checked as `spelling` writes commands.

    Raises RequestError with one sentence naming the problem and what is allowed.
    """
    key, commands = spelling.key, spelling.commands
    allowed_names = f"allowed {spelling.listed}: {', '.join(commands)}."
    if key not in message:
        raise RequestError(f'the {spelling.noun} has no "{key}"; {allowed_names}')
    value = message[key]
    if not isinstance(value, str) and spelling.names_wrong_type:
        raise RequestError(f'"{key}" must be a string, not {_json_type(value)}; {allowed_names}')
    cmd = next((command for command in commands if command == value), None)
    if cmd is None:
        raise RequestError(f"unknown {key} {_quote(value)}; {allowed_names}")
    allowed = {key, "mode"} if cmd is Command.MODE else {key}
    extra = sorted(set(message) - allowed)
    if extra:
        keys = ", ".join(_quote(name) for name in extra)
        takes = f'"{key}" and "mode"' if cmd is Command.MODE else f'only "{key}"'
        whose = f"the {spelling.noun} has " if spelling.says_whose_keys else ""
        raise RequestError(f'{whose}unexpected keys {keys}; "{cmd}" takes {takes}.')
    if cmd is not Command.MODE:
        return Request(cmd)
    if "mode" not in message:
        raise RequestError(f'"{key}": "mode" needs "mode": {_MODES}.')
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
