"""`retrotread demo --console csafe`: the demo's treadmill as a gym console with a CSAFE port.

The daemon reads the belt from the console emulator (device/sim/console_serve.py) on a pty,
as it would read a gym treadmill through a USB-serial adapter: [sensor] kind = "csafe". The
walker works the console's speed buttons instead of turning a magnet past the hall sensor,
and presses START and DIRECTION on the mock pins as before. With --soft, [enforce] soft =
"csafe" too, and the walker stays over the cap early in the first session, so a newcomer
sees the console slow the belt when the grace runs out, with the relay left closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from device.config.load import format_config, load_config, merge_overrides
from device.config.model import Config
from device.config.write import write_config_changes
from device.core.console import ConsoleState
from device.sim.console import EmulatedTreadmill
from device.sim.console_serve import ConsoleEmulator

# With --soft, 7 s after START the walker speeds the belt over the start cap (2 km/h, 0.3
# tolerance) and stays there. When the 5 s grace runs out the daemon sends SetSpeed to the
# cap, the emulated console honours it within a second, and the event log says "slowed by
# the console" instead of an enforced stop. The routine's next step, at 30 s, goes on.
SOFT_STOP_STEPS: list[dict[str, Any]] = [{"at": 12, "belt_kmh": 2.8}]
Routine = dict[str, list[dict[str, Any]]]  # scenario steps, as device/sim/scenario.py reads them


def with_soft_stop(routine: Routine) -> Routine:
    """The routine with the walker's moment over the cap that the console slows down."""
    steps = sorted([*routine["step"], *SOFT_STOP_STEPS], key=lambda step: step["at"])
    return {"step": steps}


def open_console() -> ConsoleEmulator:
    """A console at rest on a fresh pty, answering in 0.1 km/h (the emulator's default unit).
    Raises ConsoleEmulatorError (one sentence) when no pty can be had."""
    return ConsoleEmulator(EmulatedTreadmill(), pty=True).start()


def console_demo_config(db_path: str, *, url: str, soft: bool) -> tuple[Config, str]:
    """The CSAFE demo's config and its file, beside the demo's history and apart from the
    hall demo's (`--console hall` stays today's demo): made from the defaults on the first
    run, then [sensor] kind and url (the pty is new every run) and [enforce] soft written
    into it, so the settings page's reloads read what the daemon runs. Raises ConfigError
    (soft = "csafe" with action "none" set on the settings page) and ConfigWriteError."""
    path = Path(db_path).with_name(f"{Path(db_path).stem}-csafe-config.toml")
    if not path.exists():
        text = format_config(Config(), source="the built-in defaults, for the CSAFE demo")
        path.write_text(text)
    config, _ = load_config(str(path))
    changes = {
        "sensor": {"kind": "csafe", "url": url},
        "enforce": {"soft": "csafe" if soft else "none"},
    }
    config = write_config_changes(path, changes, base=config)
    return merge_overrides(config, {"storage": {"db": db_path}}, source=str(path)), str(path)


def banner(console: ConsoleEmulator, *, soft: bool) -> list[str]:
    """What the terminal says about the console, under the dashboard's address."""
    lines = [
        f'  console: an emulated CSAFE treadmill on {console.url} ([sensor] kind = "csafe")',
        "  the walker works its speed buttons; the daemon polls it for speed and state",
    ]
    if soft:
        lines.append(
            '  soft stop ([enforce] soft = "csafe"): at about 12 s the walker stays over the '
            "cap; when the grace runs out the console is asked to slow the belt, the relay "
            "only if it does not"
        )
    return lines


class ConsoleBelt:
    """The emulated console's belt as the demo's walker works it: its speed buttons, and the
    safety key that the relay pulls. Thread-safe through the emulator's lock; the emulator's
    own thread moves the belt on, so `advance` has no pulses to give."""

    def __init__(self, console: ConsoleEmulator) -> None:
        self.console = console
        self.loop_open = False
        self._pending_kmh: float | None = None  # asked for while the key was out

    @property
    def set_kmh(self) -> float:
        """The speed the console is set to: the walker's, or what SetSpeed made it."""
        with self.console.treadmill_now() as treadmill:
            return treadmill.target_kmh

    @property
    def stopped_by_key(self) -> bool:
        return self.loop_open

    def set_speed(self, kmh: float, *, ripple_pct: float = 0.0) -> None:
        """The speed buttons. A console reports its motor's speed, not the foot strikes'
        ripple, so `ripple_pct` changes nothing. With the key out it waits for the key."""
        if self.loop_open:
            self._pending_kmh = kmh
            return
        self.console.set_target_kmh(kmh)

    def key_pulled(self) -> None:
        """The safety-key loop opened: the motor stops at once, and this console ends its
        workout (FINISHED)."""
        self.loop_open = True
        with self.console.treadmill_now() as treadmill:
            treadmill.set_target_kmh(0.0, abrupt=True)
            if treadmill.state is ConsoleState.IN_USE:
                treadmill.finish()

    def key_back(self) -> None:
        """The loop closed again: a speed asked for meanwhile now starts the belt."""
        self.loop_open = False
        pending, self._pending_kmh = self._pending_kmh, None
        if pending is not None:
            self.console.set_target_kmh(pending)

    def advance(self, until: float) -> list[float]:
        return []
