"""The treadmill's hardware, behind thin adapters: gpiozero pins (pins), the START and
DIRECTION buttons (buttons), the LED, buzzer and safety relay (outputs), the hall sensor
(hall) and the serial speed bridge (serial_speed), with one error for a source that cannot
start (source).

Adapters report upward through callbacks with monotonic times; they decide nothing.
May import: device.core, device.config, gpiozero, pyserial.
"""
