"""The live page and its stream as a test reads them: each element with an id, and
/api/stream over a real HTTP connection, one server-sent message at a time."""

from __future__ import annotations

import http.client
import json
import time
from html.parser import HTMLParser
from typing import Any

from flask.testing import FlaskClient

from web.serve import WebServer

WITHIN_S = 5.0  # generous bound for "the event arrives": a failure, not a measurement


class Elements(HTMLParser):
    """Each element with an id: its attributes and its text."""

    def __init__(self, html: str):
        super().__init__()
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        element_id = found.get("id")
        if element_id:
            self.attrs[element_id] = found
            self.text[element_id] = ""
        if tag not in {"meta", "link", "br", "img", "input"}:
            self._open.append(element_id)

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in {"meta", "link", "br", "img", "input"}:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.text[element_id] += data

    def shown(self, element_id: str) -> bool:
        return "hidden" not in self.attrs[element_id]

    def says(self, element_id: str) -> str:
        return " ".join(self.text[element_id].split())


def live_page(client: FlaskClient) -> Elements:
    reply = client.get("/")
    assert reply.status_code == 200
    return Elements(reply.get_data(as_text=True))


class EventStream:
    """/api/stream read over a real HTTP connection, one SSE message at a time."""

    def __init__(self, server: WebServer):
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WITHIN_S)
        self.connection.request("GET", "/api/stream", headers={"Accept": "text/event-stream"})
        self.response = self.connection.getresponse()

    def next_message(self) -> dict[str, Any]:
        """{"event": ..., "data": {...}} or {"comment": ...} or {"retry": ...}."""
        message: dict[str, Any] = {}
        while True:
            line = self.response.readline().decode("utf-8")
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if not line:
                if message:
                    return message
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "":
                message["comment"] = value
            elif field == "data":
                message["data"] = json.loads(value)
            else:
                message[field] = value

    def next_event(self, kind: str) -> dict[str, Any]:
        deadline = time.monotonic() + WITHIN_S
        while time.monotonic() < deadline:
            message = self.next_message()
            if message.get("event") == kind:
                return message["data"]
        raise AssertionError(f"no {kind} event within {WITHIN_S} s")

    def close(self) -> None:
        self.connection.close()
