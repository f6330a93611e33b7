"""The `retrotread` command line: one program, a subcommand per job."""

from __future__ import annotations

import argparse
import logging
import os
import sys

DESCRIPTION = "A treadmill companion that keeps backward walking slow and safe."


def _setup_logging(verbose: bool) -> None:
    # Under systemd the journal adds its own timestamps; on a terminal we add ours.
    journal = "JOURNAL_STREAM" in os.environ or "INVOCATION_ID" in os.environ
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not journal:
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=fmt, datefmt="%H:%M:%S"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrotread", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    device = commands.add_parser("device", help="run the treadmill daemon (systemd runs this)")
    device.add_argument("--config", help="config file (default /etc/retrotread/config.toml)")
    device.add_argument("--socket", help="Unix socket path for the dashboard and commands")
    device.add_argument("--db", help="SQLite history file (overrides [storage] db)")

    web = commands.add_parser("web", help="serve the dashboard (systemd runs this)")
    web.add_argument("--config", help="config file (default /etc/retrotread/config.toml)")
    web.add_argument("--port", type=int, help="port to listen on (overrides [web] listen)")
    web.add_argument("--socket", help="the device's Unix socket path")
    web.add_argument("--db", help="SQLite history file (overrides [storage] db)")

    check = commands.add_parser("check-config", help="validate a config file and print it")
    check.add_argument("path", nargs="?", help="config file (default /etc/retrotread/config.toml)")

    from device.calibrate.command import add_calibrate_parser  # its options live beside its code

    add_calibrate_parser(commands)

    simulate = commands.add_parser("simulate", help="run a scenario in virtual time")
    simulate.add_argument("scenario", help="scenario TOML file ([config] and [[step]] tables)")
    simulate.add_argument("--db", help="keep the simulated history in this SQLite file")
    simulate.add_argument(
        "--trace",
        action="store_true",
        help="add a row per tick: the belt's true speed beside what the device read and did",
    )

    demo = commands.add_parser("demo", help="a simulated treadmill and walker, no hardware")
    demo.add_argument("--port", type=int, default=8080, help="dashboard port (default 8080)")
    demo.add_argument("--db", help="SQLite history file (default: a demo file in your state dir)")
    demo.add_argument("--socket", help="Unix socket path (default: in a temporary directory)")
    demo.add_argument(
        "--console",
        choices=("hall", "csafe"),
        default="hall",
        help="what the daemon reads the belt from: hall, pulses of a mock hall sensor (the "
        "default), or csafe, an emulated gym console polled over CSAFE on a pty",
    )
    demo.add_argument(
        "--soft",
        action="store_true",
        help='with --console csafe: [enforce] soft = "csafe", and the walker stays over the '
        "cap early on, so you see the console slow the belt before the relay would stop it",
    )
    demo.add_argument("--duration", type=float, default=None, help=argparse.SUPPRESS)

    fleet_demo = commands.add_parser(
        "fleet-demo", help="five simulated treadmills, a Mosquitto and the fleet dashboard"
    )
    fleet_demo.add_argument("--port", type=int, default=8090, help="fleet page port (default 8090)")

    fleet = commands.add_parser("fleet", help="serve the fleet dashboard from the gym's broker")
    fleet.add_argument("--config", help="config file with a [fleet] table (broker, site, ...)")
    fleet.add_argument("--port", type=int, help="port to listen on (default 8090)")
    fleet.add_argument("--db", help="the fleet's SQLite file (default /var/lib/retrotread-fleet)")

    from device.sim.console_serve import add_console_emulator_parser  # beside its code

    add_console_emulator_parser(commands)

    export = commands.add_parser("export", help="sessions as FIT files for Garmin Connect, Strava")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--fit", type=int, metavar="ID", help="export the session with this id")
    which.add_argument("--all", action="store_true", help="export every ended session")
    export.add_argument("--out", required=True, metavar="DIR", help="folder for the .fit files")
    export.add_argument("--config", help="config file (default /etc/retrotread/config.toml)")
    export.add_argument("--db", help="SQLite history file (overrides [storage] db)")

    password = commands.add_parser("set-password", help="set the dashboard's admin password")
    password.add_argument("--config", help="config file (default /etc/retrotread/config.toml)")
    password.add_argument("--state-dir", help="where the hash is kept (default: [storage] db's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    if args.command == "check-config":
        from device.config.load import check_config_main

        return check_config_main(args.path)
    if args.command == "calibrate":
        from device.calibrate.command import calibrate_main

        return calibrate_main(args)
    if args.command == "simulate":
        logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.WARNING)
        from device.sim.simulate import simulate_main

        return simulate_main(args.scenario, db=args.db, trace=args.trace)
    if args.command == "device":
        from device.daemon import run_device
        from device.ipc.protocol import default_socket_path

        return run_device(
            args.config, socket_path=str(args.socket or default_socket_path()), db_path=args.db
        )
    if args.command == "web":
        from web.serve import run_web

        return run_web(args.config, port=args.port, socket_path=args.socket, db_path=args.db)
    if args.command == "demo":
        from device.sim.demo import run_demo

        return run_demo(
            port=args.port,
            db_path=args.db,
            socket_path=args.socket,
            duration_s=args.duration,
            console=args.console,
            soft=args.soft,
        )
    if args.command == "fleet-demo":
        from device.sim.fleet_demo import run_fleet_demo

        return run_fleet_demo(port=args.port)
    if args.command == "fleet":
        from web.fleet.serve import run_fleet

        return run_fleet(args.config, port=args.port, db_path=args.db)
    if args.command == "console-emulator":
        from device.sim.console_serve import console_emulator_main

        return console_emulator_main(args)
    if args.command == "export":
        logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.WARNING)
        from device.history.fit_export import export_main

        return export_main(
            session_id=None if args.all else args.fit,
            out=args.out,
            db_path=args.db,
            config_path=args.config,
        )
    if args.command == "set-password":
        from web.auth import set_password_main

        return set_password_main(config_path=args.config, state_dir=args.state_dir)
    return 2


if __name__ == "__main__":
    sys.exit(main())
