"""The blueprint `guide`: `/guide`, the first-session guide with this treadmill's numbers, and
`/plan`, the 4-week plan with the walker's progress.

Neither page needs the daemon: the guide reads the web's config, the plan the history file
(read-only, through web.history.queries.reader). Without a usable history file the plan page
still shows the weeks and what counts, with the one sentence that says why progress is not
shown (the history pages answer 503 there; this page has something to say without it).
"""

from __future__ import annotations

import logging
import sqlite3
import time

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue

from device.history.reader import StoreError
from web.guide.plan import MEMBERS_ONLY, plan_for, plan_rules
from web.guide.rules import device_rules
from web.history.queries import reader
from web.site import site

log = logging.getLogger("retrotread.web.guide")

bp = Blueprint("guide", __name__)

UNREADABLE = (
    "The history file could not be read just now, so progress is not shown; reload in a "
    "moment (journalctl -u retrotread-web has the details)."
)


@bp.get("/guide")
def guide() -> ResponseReturnValue:
    config = site(current_app).config
    return render_template(
        "guide.html",
        rules=device_rules(config),
        plan=plan_rules(config),
    )


@bp.get("/plan")
def plan() -> ResponseReturnValue:
    config = site(current_app).config
    now = time.time()
    if not config.program.single_user:  # a guest's plan reads no history
        shown = plan_for(config, None, now_epoch=now)
    else:
        try:
            shown = plan_for(config, reader(), now_epoch=now)
        except StoreError as exc:
            shown = plan_for(config, None, now_epoch=now, unavailable=str(exc))
        except sqlite3.Error:
            log.exception("the plan page could not read the history")
            shown = plan_for(config, None, now_epoch=now, unavailable=UNREADABLE)
    return render_template("plan.html", plan=shown, members_only=MEMBERS_ONLY)
