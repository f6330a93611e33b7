"""`retrotread device`: the realtime daemon.

It alone owns the pins, the serial port, the safety rules and the writes to the database.
Adapters (sensor, buttons, socket) run on their own threads and only put timestamped inputs
on one queue; the tick loop, on the main thread, applies them in order, ticks the Controller
at 10 Hz, plays the outputs and hands the result to the history writer's thread. So the core
never sees two threads, nothing the web does can delay a safety decision by more than one
tick, and nothing the disk does can delay it at all.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import sdnotify

from device.config.kinds import ConfigError
from device.config.load import load_config
from device.config.model import Config
from device.core.console import ConsoleState, SpeedAnswer
from device.core.controller import CommandRefused, Controller
from device.core.events import EventKind
from device.core.modes import ButtonName
from device.core.tick import Output, TickResult
from device.fleet.publisher import FleetError, Publisher
from device.hardware.buttons import ButtonPanel
from device.hardware.outputs import Outputs
from device.hardware.pins import PinError
from device.hardware.source import SourceError
from device.health import health_status
from device.history.outbox import Outbox
from device.history.recorder import Entry, Recorder, load_controller
from device.history.store import Store, StoreError
from device.history.writer import HistoryWriter
from device.inputs import Input, InputKind, InputQueue
from device.ipc.protocol import (
    Command,
    ControllerStatus,
    DeviceStatus,
    IpcError,
    Request,
    device_status,
)
from device.ipc.server import DeviceSocket
from device.sources import Sensors, open_sensors

# What a user can get wrong at start-up (a pin, a port, a path): one sentence, no traceback.
STARTUP_ERRORS = (ConfigError, FleetError, IpcError, PinError, SourceError, StoreError)
__all__ = ["Daemon", "Input", "run_device"]

log = logging.getLogger("retrotread.device")

TICK_S = 0.1
WATCHDOG_EVERY_S = 1.0
# shorter than the socket client's 2 s, so the client hears this answer rather than a timeout
COMMAND_TIMEOUT_S = 1.5


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        socket_path: str,
        db_path: str,
        config_path: str | None = None,
        pin_factory=None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.config_path = config_path
        self.socket_path = socket_path
        self.db_path = db_path
        self.pin_factory = pin_factory
        self.clock = clock
        self.inputs = InputQueue()
        self.stopping = threading.Event()
        self.ready = threading.Event()  # set once the socket answers (the demo waits on it)
        self._status: ControllerStatus | None = None  # the last tick's
        self._writer: HistoryWriter | None = None
        self._sensors: Sensors | None = None  # for their counts, and the console's SetSpeed
        self._dropped_seen, self._flooding = 0, False
        self._fleet: Publisher | None = None  # None while [fleet] broker is empty
        self._wall_offset = 0.0  # epoch minus monotonic, for the fleet's event times
        self._notifier = sdnotify.SystemdNotifier()
        self.controller: Controller | None = None

    # -- called from other threads ----------------------------------------------------------

    def stop(self, *_args: Any) -> None:
        self.stopping.set()

    def status(self) -> DeviceStatus | None:
        """The tick's status and the adapters' health (None until the daemon has its
        controller: the socket does not answer before then); any thread."""
        status = self._status
        if status is None:
            return None
        writer = self._writer
        history = None if writer is None else writer.health()
        sensors = self._sensors
        history_error = history.error if history else None
        health = health_status(
            history,
            sensor_rejected=sensors.rejected(status["sensor"]["bounces"]) if sensors else 0,
            sensor_error=sensors.error if sensors else None,
            inputs_dropped=self._inputs_dropped(),
            fleet=None if self._fleet is None else self._fleet.health(),
            console=sensors.console_health() if sensors else None,
        )
        return device_status(status, history_error=history_error, health=health)

    def handle(self, request: Request) -> dict[str, Any]:
        """A socket command (status and subscribe never get here: the socket answers them
        from status()): run it on the tick thread and wait for its reply."""
        reply: Future = Future()
        self.inputs.put(Input(InputKind.COMMAND, self.clock(), request, reply))
        try:
            return reply.result(timeout=COMMAND_TIMEOUT_S)
        except FutureTimeout:
            return {"ok": False, "error": "The device did not answer in time; try again."}

    # -- the main thread ----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def serve(self) -> int:
        """Run as a command: stop on SIGTERM or Ctrl-C; a start-up error a user can fix is
        one sentence in the log and exit code 1."""
        self.install_signal_handlers()
        try:
            self.run()
        except STARTUP_ERRORS as exc:
            log.error("%s", exc)
            # exit 2, which systemd does not restart: a history file that is not ours, damaged
            # or read-only stays so until someone moves it; a busy pin or an unplugged adapter
            # may come back
            return 2 if isinstance(exc, StoreError) else 1
        return 0

    def run(self) -> None:
        """Run until stop(). Every output is in its safe state before this returns."""
        now = self.clock()
        wall0 = time.time()
        with contextlib.ExitStack() as opened:
            store = Store(self.db_path)
            opened.callback(self._close_store, store)
            controller = self.controller = load_controller(store, self.config, t=now, wall0=wall0)
            self._status = controller.status(now)
            # The socket before anything is written: it is the lock that keeps a second daemon
            # away from the first one's pins and from closing its session as "interrupted".
            socket = DeviceSocket(self.socket_path, handle=self.handle, status=self.status)
            socket.start()
            opened.callback(socket.close)
            self._wall_offset = wall0 - now
            self._fleet = self._open_fleet(opened)
            recorder = Recorder(store, self.config, wall0=wall0, mono0=now)
            for session_id in store.recover_interrupted():
                log.warning(
                    "session %s was left open by a crash or power cut: closed as interrupted",
                    session_id,
                )
            writer = self._writer = HistoryWriter(
                recorder, clock=self.clock, on_written=self._session_saved
            )
            writer.start()
            opened.callback(writer.close)  # after the last tick below, before the store closes
            outputs = Outputs(self.config.outputs, pin_factory=self.pin_factory)
            opened.callback(outputs.close)
            opened.callback(self._shut_down, controller, writer, outputs)
            sensors = self._sensors = open_sensors(
                self.config.sensor, self.inputs, pin_factory=self.pin_factory, clock=self.clock
            )
            opened.callback(sensors.close)
            buttons = ButtonPanel(
                start_pin=self.config.buttons.start_pin,
                direction_pin=self.config.buttons.direction_pin,
                on_press=lambda name, t: self.inputs.put(Input(InputKind.PRESS, t, name)),
                on_release=lambda name, t: self.inputs.put(Input(InputKind.RELEASE, t, name)),
                pin_factory=self.pin_factory,
                clock=self.clock,
            )
            opened.callback(buttons.close)
            self._loop(controller, writer, outputs)

    def _close_store(self, store: Store) -> None:
        """The last flush, then close: a disk that still refuses it is said, and the daemon
        still stops cleanly (its outputs are already safe)."""
        try:
            store.close()
        except StoreError as exc:
            log.error("history not saved at shutdown: %s", exc)

    def _shut_down(self, controller: Controller, writer: HistoryWriter, outputs: Outputs) -> None:
        """The last tick: inputs still queued, then the session ended as shutdown and every
        output put in its safe state, recorded before the store closes."""
        t = self.clock()
        self._notifier.notify("STOPPING=1")
        self._drain(controller, t)
        self._play(controller.shutdown(t), writer, outputs)
        log.info("stopped; outputs safe")

    def _open_fleet(self, opened: contextlib.ExitStack) -> Publisher | None:
        """The MQTT publisher when [fleet] broker is set: it connects on its own threads, so
        a broker that is down or slow changes nothing here. Closed after the last tick."""
        fleet = self.config.fleet
        if not fleet.broker:
            return None
        outbox = Outbox(self.db_path)
        opened.callback(outbox.close)
        publisher = Publisher(
            fleet,
            machine_id=self.config.machine.id,
            machine_name=self.config.machine.name,
            outbox=outbox,
        )
        opened.callback(publisher.close)
        return publisher.start()

    def _loop(self, controller: Controller, writer: HistoryWriter, outputs: Outputs) -> None:
        next_tick = self.clock()
        next_watchdog = next_tick
        self._status = controller.status(next_tick)
        self.ready.set()
        self._notifier.notify("READY=1")
        log.info(
            "ready: %s, %s sensor, socket %s",
            self.config.machine.name,
            self.config.sensor.kind,
            self.socket_path,
        )
        while not self.stopping.is_set():
            t = self.clock()
            self._drain(controller, t)
            self._play(controller.tick(t), writer, outputs)
            self._status = controller.status(t)
            if self._fleet is not None:  # returns at once: a flag and a reference
                self._fleet.publish_status(self._status, t)
            if t >= next_watchdog:
                self._notifier.notify("WATCHDOG=1")
                next_watchdog = t + WATCHDOG_EVERY_S
                self._say_flood()
            if t >= next_tick - 0.001:  # the regular tick, not an early wake for a deadline
                next_tick += TICK_S
                if next_tick < t:  # fell behind (a slow SD card): skip, do not burst
                    next_tick = t + TICK_S
            # A grace running out between two ticks is acted on when it runs out.
            deadline = controller.next_deadline()
            wake = next_tick if deadline is None or deadline <= t else min(next_tick, deadline)
            self.stopping.wait(max(0.0, wake - self.clock()))

    def _inputs_dropped(self) -> int:
        """Readings let go in a flood: by the inbox, and by a serial source before matching."""
        skipped = self._sensors.skipped if self._sensors is not None else 0
        return self.inputs.dropped + skipped

    def _say_flood(self) -> None:
        """Once a second: a flood of readings beginning or ending, said once each."""
        dropped = self._inputs_dropped()
        flooding = dropped > self._dropped_seen
        if flooding and not self._flooding:
            log.warning(
                "the speed sensor sends readings faster than the tick can take them: keeping "
                "the newest, letting the rest go (a bridge or a wire gone wrong?)"
            )
        elif self._flooding and not flooding:
            log.info("the flood of sensor readings is over; %d let go so far", dropped)
        self._flooding, self._dropped_seen = flooding, dropped

    def _drain(self, controller: Controller, now: float) -> None:
        for item in self.inputs.drain():
            self._apply(controller, item, now)

    def _apply(self, controller: Controller, item: Input, now: float) -> None:
        # == rather than is: an InputKind is its string, and tests put the strings
        if item.kind == InputKind.PULSE:
            controller.pulse(item.t)
        elif item.kind == InputKind.CHECK_PULSE:
            controller.check_pulse(item.t)
        elif item.kind == InputKind.SPEED and isinstance(item.value, int | float):
            controller.speed_reading(item.t, item.value)
        elif item.kind == InputKind.CHECK_SPEED and isinstance(item.value, int | float):
            controller.console_reading(item.t, item.value)
        elif item.kind == InputKind.CONSOLE_STATE and isinstance(item.value, ConsoleState):
            controller.console_changed(item.t, item.value)
        elif item.kind == InputKind.CONSOLE_ANSWER and isinstance(item.value, SpeedAnswer):
            controller.console_answered(item.t, item.value)
        elif item.kind == InputKind.PRESS:
            if item.value == ButtonName.START:
                controller.start_down(item.t)
            else:
                controller.direction_pressed(item.t)
        elif item.kind == InputKind.RELEASE and item.value == ButtonName.START:
            controller.start_up(item.t)
        elif item.kind == InputKind.COMMAND and isinstance(item.value, Request):
            assert item.reply is not None
            item.reply.set_result(self._command(controller, item.value, now))
            self._status = controller.status(now)  # a status read next shows what it did

    def _command(self, controller: Controller, request: Request, t: float) -> dict[str, Any]:
        note = ""
        try:
            if request.cmd is Command.RELOAD:
                note = self._reload(controller, t)
            else:
                controller.command(t, request.cmd, request.mode)
        except (CommandRefused, ConfigError) as exc:
            return {"ok": False, "error": str(exc)}
        reply = {"ok": True, "status": controller.status(t)}
        return {**reply, "note": note} if note else reply

    def _reload(self, controller: Controller, t: float) -> str:
        """Read the config file again; returns what still needs a restart ("" for nothing)."""
        config, _ = load_config(self.config_path)
        self.config = config
        note = controller.reconfigure(t, config)
        log.info("config reloaded%s", f" ({note})" if note else "")
        return note

    def _play(self, result: TickResult, writer: HistoryWriter, outputs: Outputs) -> None:
        """The outputs first, then the history, on the writer's thread: a disk that is full,
        locked or slow must never keep the relay from opening, nor end the daemon."""
        for change in result.outputs:
            console = self._sensors.console if self._sensors else None
            if change.name is Output.CONSOLE_SPEED and isinstance(change.state, float):
                if console is not None:  # SetSpeed goes out on the poller's thread
                    console.set_speed(change.state)
            elif not isinstance(change.state, float):
                outputs.apply(change.name, change.state)
        writer.submit(result)
        fleet = self._fleet
        if fleet is not None and result.events:
            for event in result.events:
                fleet.publish_event(event, event.t + self._wall_offset)

    def _session_saved(self, entry: Entry) -> None:
        """The writer's thread wrote `entry`: an ended session's outbox row is in the file
        now (at the tick it was not yet, and the publisher found it 10 s later)."""
        fleet = self._fleet
        if fleet is not None and any(e.kind == EventKind.SESSION_ENDED for e in entry.events):
            fleet.session_finished()


def run_device(config_path: str | None, *, socket_path: str, db_path: str | None) -> int:
    """The `retrotread device` command. Returns the process exit code."""
    try:
        config, _ = load_config(config_path)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    daemon = Daemon(
        config,
        socket_path=str(socket_path),
        db_path=db_path or config.storage.db,
        config_path=config_path,
    )
    return daemon.serve()
