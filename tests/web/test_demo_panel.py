"""The demo's simulator panel routes (web/demo_panel.py) with a stand-in for the demo's
simulated treadmill: what they pass on, and what they refuse in one sentence."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient


class PanelDemo:
    """Records what the panel asks of the simulated treadmill."""

    def __init__(self) -> None:
        self.belt: list[float] = []
        self.presses: list[tuple[str, float]] = []

    def panel_state(self) -> dict[str, Any]:
        return {"belt_kmh": self.belt[-1] if self.belt else 0.0}

    def set_belt(self, kmh: float) -> None:
        self.belt.append(kmh)

    def press(self, button: str, *, hold_s: float) -> None:
        self.presses.append((button, hold_s))


@pytest.fixture
def demo() -> PanelDemo:
    return PanelDemo()


@pytest.fixture
def panel(make_app: Callable[..., Flask], demo: PanelDemo) -> FlaskClient:
    return make_app(demo=demo).test_client()


def post(client: FlaskClient, path: str, body: str | bytes) -> Any:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert token
    headers = {"Content-Type": "application/json", "X-CSRFToken": token.group(1)}
    return client.post(path, data=body, headers=headers)


def test_the_belt_knob_and_the_buttons_reach_the_simulated_treadmill(
    panel: FlaskClient, demo: PanelDemo
) -> None:
    assert post(panel, "/demo/belt", '{"kmh": 2.5}').get_json() == {"ok": True, "belt_kmh": 2.5}
    assert post(panel, "/demo/press", '{"button": "start", "hold_s": 2.5}').status_code == 200
    assert demo.belt == [2.5] and demo.presses == [("start", 2.5)]
    assert panel.get("/demo/state").get_json() == {"ok": True, "belt_kmh": 2.5}


@pytest.mark.parametrize(
    "body",
    ["[" * 30_000, "not json", b"\xff\xfe", "[1, 2]", '{"kmh": NaN}', '{"kmh": 1e400}',
     '{"kmh": true}', '{"kmh": 2, "x": 1}'],
)  # fmt: skip
def test_a_body_the_belt_knob_cannot_read_is_400_with_a_sentence(
    panel: FlaskClient, demo: PanelDemo, body: str | bytes
) -> None:
    reply = post(panel, "/demo/belt", body)
    assert reply.status_code == 400
    assert reply.get_json()["error"].startswith('Send {"kmh": N}')
    assert demo.belt == []


def test_deeply_nested_json_to_the_buttons_is_400_not_500(
    panel: FlaskClient, demo: PanelDemo
) -> None:
    reply = post(panel, "/demo/press", "[" * 30_000)
    assert reply.status_code == 400
    assert demo.presses == []
