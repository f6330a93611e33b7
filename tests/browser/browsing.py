"""What the browser tests share: the running demo and one visited page with what it asked
for and what it complained about, Content-Security-Policy violations apart (conftest fails a
test after which any page has a violation it has not yet answered for)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support.ports import free_port
from support.waiting import wait_until

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


@contextmanager
def running(
    command: str,
    *args: str,
    work: Path,
    db: Path,
    ready: str,
    password_for: str,
    within_s: float,
    env: dict[str, str] | None = None,
    clean_exit: bool = False,
) -> Iterator[Demo]:
    """`retrotread COMMAND --port P ARGS` in `work`, once `ready` (a path) answers 200; its
    admin password read from the line "admin password (PASSWORD_FOR): ...". Stopped at the
    end: with Ctrl-C and an asserted exit 0 when `clean_exit`, else terminated."""
    port = free_port()
    log = work / f"{command}.log"
    argv = [sys.executable, "-m", "device.cli", command, "--port", str(port), *args]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    demo = Demo(url=f"http://127.0.0.1:{port}", db=db, process=process, log=log)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{command} exited {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(demo.url + ready, timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    wait_until(answers, within_s=within_s, what=f"{command} to answer", showing=log.read_text)
    found = re.search(rf"admin password \({password_for}\): (\S+)", log.read_text())
    demo.password = found.group(1) if found else ""
    try:
        yield demo
    finally:
        try:
            if clean_exit:
                process.send_signal(signal.SIGINT)  # Ctrl-C, as a newcomer stops it
                assert process.wait(timeout=30) == 0, log.read_text()
            else:
                process.terminate()
                process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
            shutil.rmtree(work, ignore_errors=True)


# Every page reports each CSP violation (a blocked inline script or style, a foreign fetch)
# to the console with this prefix; window.__cspViolations counts them for a wait_for_function.
CSP_PREFIX = "CSP violation: "
REPORT_VIOLATIONS = """
window.__cspViolations = 0;
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations += 1;
  const what = event.blockedURI || "inline";
  console.error("CSP_PREFIX" + event.violatedDirective + " blocked " + what + " at "
                + event.documentURI + ":" + event.lineNumber);
});
""".replace("CSP_PREFIX", CSP_PREFIX)


@dataclass
class Visit:
    """One page of the dashboard, with what it asked for and what it complained about."""

    page: object
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    csp_checked: int = 0  # how many of csp_violations a test has already answered for

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def open_page(browser, url: str, *, width: int = 1280, height: int = 800) -> Visit:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    visit = Visit(page)
    VISITS.append(visit)
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("request", lambda request: visit.requests.append(request.url))
    page.on("console", lambda message: _console(visit, message))
    page.on("pageerror", lambda error: visit.console_errors.append(str(error)))
    page.goto(url)
    return visit


def _console(visit: Visit, message) -> None:
    if message.type != "error":
        return
    text = message.text
    if text.startswith(CSP_PREFIX) or "Content Security Policy" in text:
        visit.csp_violations.append(text)  # Chromium's own "Refused to ..." line as well
    else:
        visit.console_errors.append(text)


VISITS: list[Visit] = []  # every page opened, for conftest's check after each test


# -- the demo's live page -----------------------------------------------------------------------

SLOW_MS = 20_000  # the demo's walker and the daemon's grace work in real time


def state_of(visit: Visit) -> str:
    return visit.page.locator("#state").inner_text().strip().lower()


def wait_for_state(visit: Visit, state: str, *, timeout: int = SLOW_MS) -> None:
    visit.page.wait_for_function(
        "s => document.querySelector('#state').textContent.trim().toLowerCase() === s",
        arg=state,
        timeout=timeout,
    )


def panel_belt(visit: Visit, kmh: str) -> None:
    """The demo's simulator panel sets the belt: its walker's routine stops for good."""
    visit.page.locator(f"[data-testid=demo-panel] button[data-kmh='{kmh}']").click()


def take_over(visit: Visit) -> None:
    """Stop the demo's routine with the belt at rest and no session open (its walker
    presses START five seconds in): the treadmill as a newcomer finds it."""
    visit.page.locator("#connection").filter(has_text="live").wait_for(timeout=SLOW_MS)
    panel_belt(visit, "0")
    if state_of(visit) != "idle":
        visit.page.locator("[data-testid=demo-start-hold]").click()  # ends the session
        wait_for_state(visit, "idle")
