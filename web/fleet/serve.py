"""The `retrotread fleet` command: the receiver on its thread, the dashboard under waitress
(web.serve, the device dashboard's server and sizing), until SIGTERM or Ctrl-C.

It starts with the broker down too: the grid says so, and the receiver keeps trying.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from device.errors import RetrotreadError

log = logging.getLogger("retrotread.fleet")


def run_fleet(
    config_path: str | None, *, port: int | None = None, db_path: str | None = None
) -> int:
    """0 after SIGTERM or Ctrl-C; 2 for a config it cannot use; 1 when it cannot open its
    database, keep its secret key or listen. Errors are one sentence on stderr."""
    from device.config.kinds import ConfigError
    from device.config.load import load_config
    from web.fleet import create_fleet_app
    from web.fleet.board import Board
    from web.fleet.receiver import FleetReceiver
    from web.fleet.settings import FleetConfigError, fleet_settings
    from web.fleet.store import FleetStore
    from web.serve import serve

    try:
        config, _ = load_config(config_path)
        settings = fleet_settings(config, db=db_path)
    except (ConfigError, FleetConfigError) as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        store = FleetStore(settings.db)
    except RetrotreadError as exc:
        print(exc, file=sys.stderr)
        return 1
    board = Board()
    receiver = FleetReceiver(settings, board=board, store=store)
    try:
        app = create_fleet_app(
            settings, store=store, board=board, receiver=receiver, config=config,
            state_dir=Path(settings.db).parent,
        )  # fmt: skip
        server = serve(app, listen=settings.listen, port=port)
    except RetrotreadError as exc:  # the secret key (StateDirError) or the port (WebServeError)
        print(exc, file=sys.stderr)
        store.close()
        return 1

    def stop(signum: int, frame: object) -> None:
        log.info("stopping the fleet (%s)", signal.Signals(signum).name)
        board.close()  # the grid's streams end and free their threads
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    receiver.start()
    following = settings.site or "every site"
    print(
        f"retrotread fleet: serving {server.url}, following {following} on "
        f"{settings.host}:{settings.port}; Ctrl-C stops.",
        flush=True,
    )
    try:
        server.run()
    finally:
        receiver.close()
        store.close()
    return 0
