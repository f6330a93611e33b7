"""`retrotread calibrate`: the arithmetic of metres per pulse and serial scale (arithmetic),
counting a real belt on a pin, against a CSAFE console, or reading a bridge (rig), the command
with its prompts (command) and its options (options).

May import: device.hardware, device.history, device.ipc, device.core, device.config.
"""
