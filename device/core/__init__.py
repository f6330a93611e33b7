"""The pure core: the treadmill's rules with time as an argument and no I/O.

Domain enums (modes), events, signals (LED and buzzer patterns), the speed models behind one
`BeltSpeed` protocol (speed, readings), sensor trust, the overspeed budget, the start gate,
session, governor, guard, program, progression, energy, and the controller that ties them
into one tick and builds the status value.

May import: device.config.model only (and the standard library). Never gpiozero, serial,
sqlite3, flask or any other device subpackage.
"""
