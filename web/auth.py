"""Who may press the dashboard's buttons. Reading (live, history) never needs a login; the
session controls and the settings page need the admin's password, unless [web] open_controls
= true (a home treadmill). There is one admin, the gym operator, so there are no usernames.

What lives in the state directory (the directory of [storage] db unless told otherwise):
`web-secret`, the session-signing key made on first start, `admin-password`, the password's
scrypt hash written by `retrotread set-password`, and `web-logins`, the logins not yet logged
out (web/logins.py). All are written atomically and private to the dashboard's user (the
password hash also to its group).

Every state-changing request carries a CSRF token (Flask-WTF): forms in a hidden csrf_token
field, JSON in the X-CSRFToken header copied from base.html's <meta name="csrf-token">.
Login attempts are rate-limited per client address, in memory (one dashboard process).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import hmac
import os
import secrets
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    render_template_string,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

from device.errors import RetrotreadError
from web import logins
from web.protect import Refused, problem
from web.site import site
from web.state_files import StateDirError, state_problem, write_private

bp = Blueprint("auth", __name__)

SECRET_FILE = "web-secret"
PASSWORD_FILE = "admin-password"
SECRET_BYTES = 32
MIN_PASSWORD_CHARS = 8
LOGIN_LIMITS = "5 per minute;30 per hour"

NO_PASSWORD = (
    "No admin password is set yet: run `retrotread set-password` on the Pi, then log in here."
)
LOG_IN = "Log in to use the controls."
WRONG_PASSWORD = "That password is not right; try again."
TOO_MANY = "Too many login attempts from this address; wait a few minutes and try again."
FORM_EXPIRED = (
    "This page's security token is missing or out of date (the browser dropped its cookie or "
    "the dashboard got a new key); reload the page and try again."
)

View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


class PasswordError(RetrotreadError, ValueError):
    """A new admin password that is refused (too short, typed differently twice)."""


# ---- the files in the state directory ---------------------------------------------------


def load_secret_key(state_dir: Path) -> bytes:
    """The key that signs session cookies: made on first start, then reused, so logins
    survive a restart. Raises StateDirError when it cannot be read or created."""
    path = Path(state_dir) / SECRET_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # another worker made it first: use it
                write_private(path, secrets.token_bytes(SECRET_BYTES), clobber=False)
        key = path.read_bytes()
    except OSError as exc:
        raise state_problem(path, exc, "create the dashboard's secret key") from None
    if len(key) < SECRET_BYTES:
        raise StateDirError(
            f"{path}: the secret key is shorter than {SECRET_BYTES} bytes; delete the file and "
            "restart the dashboard to make a new one."
        )
    return key


def set_password(state_dir: str | os.PathLike[str], password: str) -> Path:
    """Store the admin password's hash (scrypt, salted) in `state_dir`/admin-password, mode
    0640 (the dashboard's user reads it through the shared group); return the file's path.
    Everyone logged in must log in again. Raises PasswordError for a password under 8
    characters, StateDirError when the file cannot be written."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(
            f"The password must have at least {MIN_PASSWORD_CHARS} characters; choose a longer one."
        )
    path = Path(state_dir) / PASSWORD_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        info = path.parent.stat()
        # `sudo retrotread set-password` must leave a file the dashboard's user can read.
        owner = (info.st_uid, info.st_gid) if os.geteuid() == 0 else None
        hashed = generate_password_hash(password, method="scrypt")
        # 0640: the dashboard runs as its own user in the state directory's group
        write_private(path, (hashed + "\n").encode("ascii"), clobber=True, owner=owner, mode=0o640)
    except OSError as exc:
        raise state_problem(path, exc, "write the admin password") from None
    return path


def _stored_hash(state_dir: Path) -> str | None:
    path = state_dir / PASSWORD_FILE
    try:
        return path.read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else "garbled"
        raise StateDirError(
            f"{path}: cannot read the admin password ({reason}); run `retrotread "
            "set-password` again as the user that owns that directory."
        ) from None


def _fingerprint(hashed: str) -> str:
    # The session holds this, not a bare "yes": a new password logs everybody out.
    return hashlib.sha256(hashed.encode("ascii")).hexdigest()[:32]


# ---- who may press the buttons ----------------------------------------------------------


def logged_in() -> bool:
    """Whether this browser logged in with the current admin password, in a login that has
    not been logged out since (web.logins keeps those on the server)."""
    token = session.get("admin")
    if not isinstance(token, str):
        return False
    state_dir = site(current_app).state_dir
    try:
        stored = _stored_hash(state_dir)
    except StateDirError:
        return False
    if stored is None or not hmac.compare_digest(token, _fingerprint(stored)):
        return False
    return logins.is_live(state_dir, session.get("login"), now=time.time())


def controls_allowed() -> bool:
    """Whether this request may use the session controls and change settings."""
    return site(current_app).config.web.open_controls or logged_in()


def login_hint() -> str:
    """The sentence telling a visitor what to do to get the controls."""
    try:
        stored = _stored_hash(site(current_app).state_dir)
    except StateDirError as exc:
        return str(exc)
    return LOG_IN if stored is not None else NO_PASSWORD


def login_required_for_controls(view: View) -> View:
    """Refuse the view without a login (unless open_controls): an /api/ route answers 401
    {"ok": false, "error", "login"} (web.protect.Refused, with where to log in), a page sends
    the browser to the login form."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if controls_allowed():
            return view(*args, **kwargs)
        if request.path.startswith("/api/"):
            raise Refused(login_hint(), 401, login=url_for("auth.login"))
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    return guarded  # type: ignore[return-value]


# ---- pages ------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str | None:
    """Only a path on this dashboard: never send a fresh login to another site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target if "\\" not in target else None


def _login_page(*, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    here = site(current_app)
    problem = None
    try:
        stored = _stored_hash(here.state_dir)
    except StateDirError as exc:
        stored, problem = None, str(exc)
    page = render_template(
        "login.html",
        error=error,
        problem=problem,
        no_password=stored is None and problem is None,
        open_controls=here.config.web.open_controls,
        next=_safe_next(request.values.get("next")),
    )
    return page, status


@bp.get("/login")
def login() -> ResponseReturnValue:
    return _login_page()


@bp.post("/login")
def login_post() -> ResponseReturnValue:
    try:
        stored = _stored_hash(site(current_app).state_dir)
    except StateDirError:
        stored = None
    if stored is None:
        return _login_page(status=401)
    password = request.form.get("password", "")
    try:
        right = check_password_hash(stored, password)
    except ValueError:  # a hash file edited by hand into an unknown method
        right = False
    if not right:
        return _login_page(error=WRONG_PASSWORD, status=401)
    try:
        login_id = logins.start_login(site(current_app).state_dir, now=time.time())
    except StateDirError as exc:
        return _login_page(error=str(exc), status=503)
    session.clear()  # a fresh session (and CSRF token) for the admin
    session["admin"] = _fingerprint(stored)
    session["login"] = login_id
    flash("Logged in: the controls and settings are yours.", "ok")
    return redirect(_safe_next(request.form.get("next")) or url_for("live.page"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    login_id = session.pop("login", None)
    session.pop("admin", None)
    try:
        # ended on the server too: a copy of this browser's cookie is logged out with it
        logins.end_login(site(current_app).state_dir, login_id, now=time.time())
    except StateDirError as exc:
        flash(f"Logged out of this browser only: {exc}", "error")
    else:
        flash("Logged out.", "ok")
    return redirect(url_for("live.page"))


# ---- wiring into the app ----------------------------------------------------------------


class _SessionCookies(SecureCookieSessionInterface):
    """Marks the session cookie Secure only when the browser came over https. A gym's LAN is
    plain http, where a Secure cookie would never come back and nobody could log in; behind an
    https proxy (with werkzeug's ProxyFix) the cookie is Secure. SESSION_COOKIE_SECURE = True
    forces it."""

    def get_cookie_secure(self, app: Flask) -> bool:
        forced = bool(app.config.get("SESSION_COOKIE_SECURE"))
        return forced or (has_request_context() and request.is_secure)


_FAILED_PAGE = """{% extends "base.html" %}
{% block title %}Try again{% endblock %}
{% block main %}<section class="panel" role="alert"><h1>Try again</h1><p>{{ sentence }}</p>
<p><a href="{{ back }}">Back</a></p></section>{% endblock %}"""


def _csrf_failed(exc: CSRFError) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return problem(FORM_EXPIRED, 400)  # the API's one error shape
    back = _safe_next(request.path) or "/"
    return render_template_string(_FAILED_PAGE, sentence=FORM_EXPIRED, back=back), 400


def _too_many(exc: RateLimitExceeded) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return problem(TOO_MANY, 429)
    return _login_page(error=TOO_MANY, status=429)


def init_app(app: Flask) -> None:
    """Give `app` its session key (from the state dir), CSRF protection and the login rate
    limit. Raises StateDirError, one sentence, when the state dir cannot hold the key."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret_key(site(app).state_dir)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Strict")
    # A live page stays open on a phone for a whole workout; the token is bound to the session
    # cookie anyway, so it lives as long as that instead of expiring after an hour.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.session_interface = _SessionCookies()
    CSRFProtect(app)
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://")
    limiter.limit(
        LOGIN_LIMITS,
        methods=["POST"],
        error_message=TOO_MANY,
        exempt_when=lambda: request.endpoint != "auth.login_post",
    )(bp)
    app.extensions["retrotread_limiter"] = limiter
    app.register_error_handler(CSRFError, _csrf_failed)
    app.register_error_handler(RateLimitExceeded, _too_many)
    app.context_processor(lambda: {"controls_allowed": controls_allowed, "logged_in": logged_in})


# ---- `retrotread set-password` ----------------------------------------------------------


def _read_new_password() -> str:
    if not sys.stdin.isatty():  # a script: one line on stdin
        return sys.stdin.readline().rstrip("\r\n")
    try:
        first = getpass.getpass("New admin password for the dashboard: ")
        if len(first) >= MIN_PASSWORD_CHARS:
            second = getpass.getpass("The same password again: ")
            if first != second:
                raise PasswordError("The two passwords differ; run retrotread set-password again.")
    except (EOFError, KeyboardInterrupt):
        raise PasswordError("No password was given; the admin password is unchanged.") from None
    return first


def set_password_main(*, config_path: str | None, state_dir: str | None) -> int:
    """`retrotread set-password`: 0 when the hash is written, 2 with one sentence on stderr."""
    from device.config.kinds import ConfigError
    from device.config.load import load_config

    try:
        if state_dir is None:
            config, _ = load_config(config_path)
            state_dir = str(Path(config.storage.db).parent)
        path = set_password(state_dir, _read_new_password())
    except (ConfigError, PasswordError, StateDirError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"The admin password is set (its hash is in {path}); anyone logged in to the "
        "dashboard logs in again with it."
    )
    return 0
