"""What a message on the broker says, checked before anything believes it: its topic read into
a site, a machine and a kind, its payload bounded, parsed and validated against the schemas in
device/fleet/schema/ (loaded once). Anything else is a Rejection with a Reason, never an
exception: a fleet hears from every treadmill of a gym, and one broken or hostile client must
not silence the others.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from device.fleet.topics import OFFLINE, ONLINE, PAYLOAD_VERSION, ROOT, valid_level

# A session of a full day at 1 Hz is about 3 MB of JSON; nothing honest is larger. Checked on
# the raw bytes, before json.loads spends memory and time on it.
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024


class Kind(Enum):
    """What a topic under retrotread/<site>/<machine_id>/ carries."""

    AVAILABILITY = "availability"
    STATUS = "status"
    EVENT = "events"
    SESSION = "sessions"


class Reason(Enum):
    """Why a message was turned away; the fleet counts them by this."""

    UNKNOWN_TOPIC = "unknown_topic"
    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    WRONG_VERSION = "wrong_version"
    SCHEMA = "schema"
    MACHINE_MISMATCH = "machine_mismatch"
    UUID_MISMATCH = "uuid_mismatch"
    BAD_AVAILABILITY = "bad_availability"


# what each reason means, for the log line and the dashboard's count
REASON_WORDS = {
    Reason.UNKNOWN_TOPIC: "a topic this fleet does not know",
    Reason.TOO_LARGE: f"a payload over {MAX_PAYLOAD_BYTES // (1024 * 1024)} MiB",
    Reason.NOT_JSON: "a payload that is not JSON",
    Reason.WRONG_VERSION: f'a payload whose "v" is not {PAYLOAD_VERSION}',
    Reason.SCHEMA: "a payload that does not match its schema (missing fields, wrong types)",
    Reason.MACHINE_MISMATCH: "a payload whose machine_id is not the one in its topic",
    Reason.UUID_MISMATCH: "a session whose uuid is not the one in its topic",
    Reason.BAD_AVAILABILITY: 'an availability that is neither "online" nor "offline"',
}


@dataclass(frozen=True)
class Address:
    """Whose message it is and what it carries, read from its topic."""

    site: str
    machine_id: str
    kind: Kind
    uuid: str | None = None  # for a session: the last topic level


@dataclass(frozen=True)
class Message:
    """A message that passed: for availability `online` is set, for the JSON kinds `body`
    holds the validated payload."""

    address: Address
    online: bool | None = None
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    detail: str  # one line: which topic, and what was wrong with it


def _load_schema(name: str) -> Draft202012Validator:
    text = resources.files("device.fleet").joinpath("schema", name).read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# loaded once, at import: a broken schema file is a broken install, found at start-up
VALIDATORS = {
    Kind.STATUS: _load_schema("status.json"),
    Kind.EVENT: _load_schema("event.json"),
    Kind.SESSION: _load_schema("session.json"),
}
# the status keys the schema declares: all /api/fleet passes on (minus the profile)
STATUS_KEYS = frozenset(VALIDATORS[Kind.STATUS].schema["properties"])


def read_topic(topic: str) -> Address | None:
    """The address of `topic`, or None for a topic that is not one of a treadmill's."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != ROOT or not (valid_level(parts[1]) and valid_level(parts[2])):
        return None
    site, machine_id, rest = parts[1], parts[2], parts[3:]
    if len(rest) == 2 and rest[0] == Kind.SESSION.value and rest[1]:
        return Address(site, machine_id, Kind.SESSION, uuid=rest[1])
    if len(rest) == 1:
        for kind in (Kind.AVAILABILITY, Kind.STATUS, Kind.EVENT):
            if rest[0] == kind.value:
                return Address(site, machine_id, kind)
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON carries")


def read(topic: str, payload: bytes) -> Message | Rejection:
    """Check one message from the broker; never raises."""
    address = read_topic(topic)
    shown = topic if len(topic) <= 120 else topic[:117] + "..."
    if address is None:
        return Rejection(Reason.UNKNOWN_TOPIC, shown)
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection(Reason.TOO_LARGE, f"{shown}: {len(payload)} bytes")
    if address.kind is Kind.AVAILABILITY:
        word = payload.decode("ascii", errors="replace").strip()
        if word not in (ONLINE, OFFLINE):
            return Rejection(Reason.BAD_AVAILABILITY, f"{shown}: {word[:40]!r}")
        return Message(address, online=word == ONLINE)
    try:
        body = json.loads(payload, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return Rejection(Reason.NOT_JSON, f"{shown}: {str(exc)[:120]}")
    if not isinstance(body, dict):
        return Rejection(Reason.SCHEMA, f"{shown}: a {type(body).__name__}, not an object")
    version = body.get("v")
    if version != PAYLOAD_VERSION or isinstance(version, bool):
        return Rejection(Reason.WRONG_VERSION, f"{shown}: v = {str(version)[:20]}")
    try:
        problem = next(VALIDATORS[address.kind].iter_errors(body), None)
    except RecursionError:
        return Rejection(Reason.SCHEMA, f"{shown}: nested too deep")
    if problem is not None:
        where = "/".join(str(step) for step in problem.absolute_path) or "(the payload)"
        return Rejection(Reason.SCHEMA, f"{shown}: {where}: {problem.message[:160]}")
    if not _finite(body):
        return Rejection(Reason.SCHEMA, f"{shown}: a number too large to be one")
    if body["machine_id"] != address.machine_id:
        return Rejection(Reason.MACHINE_MISMATCH, f"{shown}: machine_id {body['machine_id']}")
    if address.kind is Kind.SESSION and body["uuid"] != address.uuid:
        return Rejection(Reason.UUID_MISMATCH, f"{shown}: uuid {body['uuid']}")
    return Message(address, body=body)


def _finite(value: Any) -> bool:
    """False when a number overflowed to infinity (1e999 parses so): JSON cannot send it on."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
