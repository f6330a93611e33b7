"""retrotread's device side: belt speed, sessions, the safety rules and the history store.

The subpackages are the layers, each importing only those below it (import-linter checks it
in `make lint`; the contracts are in pyproject.toml):

    device.cli                        the `retrotread` command; may start the web (exception)
    device.sim                        scenarios, the simulated belt, simulate, the demo (may
                                      start the web: the second documented exception)
    device.daemon, device.calibrate   the long-running service; the calibration wizard
    device.hardware, device.history,  gpiozero and pyserial adapters; SQLite; the socket;
    device.ipc, device.fleet          MQTT to the gym's broker
    device.core                       the pure rules: time is an argument, no I/O
    device.config                     the config values (model), their rules, load and write

`web` sits beside device.daemon: it may import device.ipc, device.history, device.core and
device.config, and nothing in device imports it but the two exceptions above.
"""
