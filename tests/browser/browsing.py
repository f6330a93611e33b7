"""What the browser tests share: the running demo and one visited page with what it asked
for and what it complained about."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"


@dataclass
class Demo:
    url: str
    db: Path
    process: subprocess.Popen
    log: Path
    password: str = ""
    lines: list[str] = field(default_factory=list)


@dataclass
class Visit:
    """One page of the dashboard, with what it asked for and what it complained about."""

    page: object
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def open_page(browser, url: str, *, width: int = 1280, height: int = 800) -> Visit:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    visit = Visit(page)
    page.on("request", lambda request: visit.requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            visit.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: visit.console_errors.append(str(error)))
    page.goto(url)
    return visit
