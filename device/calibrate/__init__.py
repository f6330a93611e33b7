"""`retrotread calibrate`: the arithmetic of metres per pulse and serial scale (arithmetic),
counting a real belt on a pin or a bridge (rig), and the command with its prompts (command).

May import: device.hardware, device.history, device.ipc, device.core, device.config.
"""
