"""What the browser tests share: the running demo and one visited page with what it asked
for and what it complained about, Content-Security-Policy violations apart (conftest fails a
test after which any page has a violation it has not yet answered for)."""

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
