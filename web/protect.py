"""What every request and every response of the dashboard gets, whatever the route: a bound on
the request body, the security headers, and one sentence (a page, or {"ok": false, "error"}
under /api/) for a path, method or body the dashboard does not take.

The body bound is enforced twice: waitress refuses a longer body before the app runs
(web/serve.py passes MAX_BODY_BYTES to it), and Flask's MAX_CONTENT_LENGTH refuses it again
under any other server (the test client, a developer's `flask run`).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from device.errors import RetrotreadError

# The largest body the dashboard takes is the settings form: 13 fields of a few dozen bytes
# each plus the CSRF token, about 1.5 KiB even with ten level caps; a login is under 200
# bytes and a control command about 40. 64 KiB is forty times that, and 48 waitress workers
# each holding one such body cost 3 MB, not the 1 GiB per request waitress allows by default.
MAX_BODY_BYTES = 64 * 1024

# No inline script or style anywhere (the pages load static/*.js and *.css only; the charts'
# data rides in <script type="application/json">, which is data, never run); no frames, no
# <base> tricks, forms post only to this dashboard, scripts fetch only from it.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    # a gym's dashboard links nowhere else; even its own paths (session ids) stay on it
    "Referrer-Policy": "same-origin",
}

API_ROUTES = "/api/status, /api/stream, /api/control and /api/sessions"
_SHOWN_PATH_CHARS = 80


def _shown_path() -> str:
    path = request.path
    return path if len(path) <= _SHOWN_PATH_CHARS else path[: _SHOWN_PATH_CHARS - 3] + "..."


def problem(sentence: str, code: int, *, title: str = "Try again") -> ResponseReturnValue:
    """The answer for a request the dashboard refuses: JSON under /api/, a page elsewhere."""
    if request.path.startswith("/api/"):
        return jsonify({"ok": False, "error": sentence}), code
    return render_template("problem.html", title=title, sentence=sentence), code


class Refused(RetrotreadError):
    """A request a route turns down, in one sentence with its HTTP status: raise it and the one
    handler answers {"ok": false, "error": sentence} under /api/ (plus any `extra` keys, such as
    where to log in), a page elsewhere. Every error body of the API has this one shape."""

    def __init__(self, sentence: str, code: int, **extra: object) -> None:
        super().__init__(sentence)
        self.code = code
        self.extra = extra


def _refused(exc: Refused) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return jsonify({"ok": False, "error": str(exc), **exc.extra}), exc.code
    return problem(str(exc), exc.code)


def _not_found(exc: HTTPException) -> ResponseReturnValue:
    path = _shown_path()
    if request.path.startswith("/api/"):
        return problem(f"There is no {path} in this dashboard's API; it has {API_ROUTES}.", 404)
    return problem(
        f"There is no page at {path} on this dashboard; start from the live page or the history.",
        404,
        title="No such page",
    )


def _wrong_method(exc: HTTPException) -> ResponseReturnValue:
    allowed = sorted(set(getattr(exc, "valid_methods", None) or ()) - {"HEAD", "OPTIONS"})
    takes = " or ".join(allowed) if allowed else "no request"
    reply = problem(f"{request.method} is not taken at {_shown_path()}; it takes {takes}.", 405)
    return reply


def _too_large(exc: HTTPException) -> ResponseReturnValue:
    return problem(
        f"The request body is over {MAX_BODY_BYTES // 1024} KiB, far more than any form of "
        "this dashboard sends; nothing was read or saved.",
        413,
        title="Too large",
    )


def _failed(exc: Exception) -> ResponseReturnValue:
    # the last resort, never a traceback in the browser (with TESTING, Flask raises instead)
    return problem(
        "The dashboard failed on this request; the treadmill is not affected. See "
        "journalctl -u retrotread-web for the cause.",
        500,
        title="Something went wrong",
    )


def _with_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Bound `app`'s request bodies, add the security headers to every response and answer
    404, 405, 413, 500 and every Refused in one sentence."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default, None, is no bound
        app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.after_request(_with_headers)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _wrong_method)
    app.register_error_handler(413, _too_large)
    app.register_error_handler(500, _failed)
    app.register_error_handler(Refused, _refused)
