"""The live page's words for statuses of unexpected shape (web/live_view.py), which render
with their odd fields as unknown, never a 500, and never end the SSE stream. A hypothesis fuzz
feeds arbitrary JSON objects, and objects with the real keys holding arbitrary JSON, into
view(), the page, /api/status and the stream. The health line is in test_live_health.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.live_page import Elements, EventStream, live_page
from support.waiting import wait_until

from web import live
from web.hub import StatusHub
from web.live_view import OFFLINE_VIEW, view
from web.serve import WebServer
from web.site import site

if TYPE_CHECKING:  # pytest imports each conftest under the same name: never import it
    from conftest import FakeDevice

WITHIN_S = 5.0


# -- statuses of unexpected shape -----------------------------------------------------------

ODD = {"speed_kmh": "fast", "sensor": 5, "warning": [1], "state": {"a": None},
       "mode": ["backward"], "cap_kmh": "low", "elapsed_s": float("inf"), "level": 2.5,
       "program": {"week": "one"}, "weakened": "grace", "machine_name": 7,
       "history_error": True, "cap_enforced": "yes", "health": {"history": None}}  # fmt: skip


def test_a_status_of_odd_types_renders_with_those_fields_unknown(running_status) -> None:
    words = view(running_status(**ODD))
    assert words["speed"] == "--"
    assert words["sensor"] == "sensor: unknown"  # never "ok"
    assert words["warning"] == "The device warns, but this dashboard cannot read why: slow down"
    assert words["state"] == "unknown" and words["mode"] == "?"
    assert words["cap"] == "cap unknown" and words["elapsed"] == "--:--"
    assert words["level"] == "level unknown" and words["program"] == "program unknown"
    assert words["safety"].startswith("Safety settings loosened: unknown")
    assert words["history"] == "History is not being saved: the device's reason cannot be read."


def test_the_start_gate_word_shows_under_the_buttons_only_while_start_is_on_offer(
    running_status,
) -> None:
    unknown = "The belt speed is not known yet: the sensor has not seen enough of the belt."
    assert view(running_status(state="idle", start_refusal=unknown))["start_hint"] == unknown
    assert view(running_status(state="paused", start_refusal=unknown))["start_hint"] == unknown
    assert view(running_status(state="running", start_refusal=unknown))["start_hint"] == ""
    assert view(running_status(state="idle", start_refusal=None))["start_hint"] == ""
    assert view(running_status(state="idle", start_refusal=["odd"]))["start_hint"] == ""


def test_an_unreadable_cap_enforced_never_promises_a_stop(running_status) -> None:
    warning = {"reason": "over the cap", "speed_kmh": 2.6, "cap_kmh": 2.0, "seconds_left": 2.0,
               "enforced": False}  # fmt: skip
    words = view(running_status(warning=warning, cap_enforced="yes"))
    assert words["warning"] == "Over the cap and not enforced on this machine"


def test_a_sensor_report_missing_its_verdict_is_not_ok(running_status) -> None:
    assert view(running_status(sensor={"kind": "hall"}, sensor_lost="no"))["sensor"] == (
        "hall sensor: unknown"
    )
    assert view(running_status(sensor={"kind": "hall", "ok": "yes"}))["sensor"] == (
        "hall sensor: unknown"
    )


def test_the_live_page_and_api_answer_an_odd_status_without_a_500(
    fake_device: FakeDevice, client: FlaskClient, running_status
) -> None:
    fake_device.status = running_status(**{k: v for k, v in ODD.items() if k != "elapsed_s"})
    page = live_page(client)  # asserts 200
    assert page.says("speed") == "--" and page.says("sensor") == "sensor: unknown"
    assert page.shown("warning-banner")
    assert page.attrs["live"]["data-state"] == "unknown"
    assert page.says("machine") == "Treadmill 1"  # the config's name, not the odd 7
    reply = client.get("/api/status")
    assert reply.status_code == 200 and reply.get_json()["speed_kmh"] == "fast"


def test_a_status_nan_cannot_spoil_goes_out_as_strict_json(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    hub = StillHub({"speed_kmh": float("nan"), "kcal": float("-inf"), "x": [float("inf")]})
    site(app).extras["hub"] = hub
    reply = app.test_client().get("/api/status")
    body = strict_json(reply.get_data(as_text=True))
    assert body["speed_kmh"] is None and body["kcal"] is None and body["x"] == [None]
    event = next(e for e in live._events(hub) if e.startswith("event: status"))  # type: ignore[arg-type]
    assert strict_json(event.split("data: ", 1)[1])["view"]["speed"] == "--"


def test_the_stream_survives_an_odd_status_and_goes_on_with_the_next(
    fake_device: FakeDevice,
    app: Flask,
    serve_app: Callable[..., WebServer],
    running_status: Callable[..., dict],
) -> None:
    stream = EventStream(serve_app(app))
    try:
        assert stream.next_event("status")["view"]["speed"] == "2.1"
        fake_device.status = running_status(**{k: v for k, v in ODD.items() if k != "elapsed_s"})
        deadline = time.monotonic() + WITHIN_S
        while (odd := stream.next_event("status"))["view"]["sensor"] != "sensor: unknown":
            assert time.monotonic() < deadline
        assert odd["view"]["speed"] == "--"
        fake_device.status = running_status(speed_kmh=1.4)
        while stream.next_event("status")["view"]["speed"] != "1.4":
            assert time.monotonic() < deadline, "the stream did not go on after the odd status"
    finally:
        stream.close()


def test_a_failing_view_gives_the_page_503_with_a_sentence_and_the_stream_skips_it(
    fake_device: FakeDevice, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(status: Any) -> dict[str, str]:
        if status is None:
            return dict(OFFLINE_VIEW)
        raise ValueError("a bug in the words")

    monkeypatch.setattr(live, "view", broken)
    reply = client.get("/")
    assert reply.status_code == 503
    page = Elements(reply.get_data(as_text=True))
    assert page.says("offline-banner").startswith("device status unreadable: the device sent")
    hub = StillHub({"speed_kmh": 2.0})
    messages = live._events(hub)  # type: ignore[arg-type]
    assert next(messages).startswith("retry:")
    assert next(messages) == ": a status was skipped\n\n"


def test_the_hub_outlives_a_status_line_nested_past_what_json_can_read(tmp_path: Path) -> None:
    path = tmp_path / "device.sock"
    lines = [b'{"ok":true,"x":' + b"[" * 200_000 + b"\n", b'{"ok":true,"speed_kmh":1.5}\n']
    with LineServer(path, lines):
        hub = StatusHub(path, stale_after_s=5.0)
        hub.start()
        try:
            assert wait_until(
                lambda: (hub.latest() or {}).get("speed_kmh") == 1.5,
                within_s=WITHIN_S,
                what="the hub to read 1.5 km/h",
                showing=lambda: hub.error,
            )
        finally:
            hub.close()


# -- the fuzz -------------------------------------------------------------------------------

REAL_KEYS = ("machine_name", "speed_kmh", "mean_kmh", "mode", "state", "cap_kmh",
             "next_cap_kmh", "next_cap_in_s", "profile", "level", "running_unlocked", "program",
             "sensor", "warning", "weakened", "cap_enforced", "sensor_lost", "message",
             "elapsed_s", "distance_m", "kcal", "history_error", "health")  # fmt: skip
NESTED_KEYS = {
    "program": ("week", "sessions_done", "sessions_target", "per_week", "finished"),
    "sensor": ("kind", "ok", "state", "channel", "checked"),
    "warning": ("reason", "speed_kmh", "cap_kmh", "seconds_left", "enforced", "stop_coming"),
    "health": ("sensor_rejected", "sensor_error", "inputs_dropped", "history"),
    "history": ("ok", "error", "unsaved_rows", "lost_rows"),
}
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["backward", "forward", "idle", "running", "paused", "hall", "serial",
                     "guest", "speed unknown"]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def with_keys(keys: tuple[str, ...], values: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={key: values for key in keys})


history_like = with_keys(NESTED_KEYS["history"], json_values)
nested = {
    key: st.one_of(json_values, with_keys(keys, json_values | history_like))
    for key, keys in NESTED_KEYS.items()
}
statuses = st.one_of(
    st.dictionaries(st.text(max_size=12), json_values, max_size=6),
    st.fixed_dictionaries({}, optional={key: nested.get(key, json_values) for key in REAL_KEYS}),
)
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(status=statuses)
def test_view_gives_every_word_for_any_status(status: dict[str, Any]) -> None:
    words = view(status)
    assert set(words) == set(OFFLINE_VIEW)
    assert all(isinstance(text, str) for text in words.values())


@FUZZ
@given(status=statuses)
def test_page_api_and_stream_answer_any_status(app: Flask, status: dict[str, Any]) -> None:
    hub = StillHub(status)
    site(app).extras["hub"] = hub
    client = app.test_client()
    assert client.get("/").status_code == 200
    reply = client.get("/api/status")
    assert reply.status_code == 200
    strict_json(reply.get_data(as_text=True))
    events = live._events(hub)  # type: ignore[arg-type]
    next(events)  # retry:
    first = next(events)
    assert first.startswith("event: status\ndata: ")
    assert strict_json(first.split("data: ", 1)[1])["view"] == view(status)


# -- helpers --------------------------------------------------------------------------------


def strict_json(text: str) -> Any:
    """JSON as a browser reads it: NaN and Infinity are errors."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


class StillHub:
    """A StatusHub stand-in with one status that never changes (the fuzz's daemon)."""

    closed = False
    online = True
    error = None

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    def latest(self) -> dict[str, Any]:
        return self.status

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        return 1, self.status

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, dict[str, Any]]:
        return seq, self.status

    def wait_answered(self, timeout: float) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class LineServer:
    """A Unix socket that answers each connection's first line with the next of `lines`
    (the last one again once they run out), then keeps the connection open."""

    def __init__(self, path: Path, lines: list[bytes]) -> None:
        self.path, self.lines = path, list(lines)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LineServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            conn.makefile("rb").readline()
            line = self.lines.pop(0) if len(self.lines) > 1 else self.lines[0]
            conn.sendall(line)
