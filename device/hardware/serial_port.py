"""What the serial sources share about opening a port: one sentence for why it did not open.

The serial speed bridge and the CSAFE console both open their port with pyserial's
`serial_for_url` (a device path, a pty, `socket://host:port`), so a missing cable, a missing
dialout group or an unreachable converter reads the same way on the dashboard for both.
"""

from __future__ import annotations

import errno

# URL schemes that reach the port over the network (ser2net, an RS-232-to-Ethernet box)
_NETWORK_SCHEMES = ("socket://", "rfc2217://")


def explain_open_error(url: str, exc: BaseException, *, table: str = "[sensor]") -> str:
    """One sentence: why the port at `url` did not open and what the user can do about it;
    `table` is the config table whose url and baud name the port ("[sensor]",
    "[sensor.check]")."""
    if isinstance(exc, ValueError):
        return f"cannot open serial port {url} ({exc}); fix {table} url or {table} baud."
    if url.startswith(_NETWORK_SCHEMES):
        # pyserial wraps the socket's error without its errno: the text is all there is
        return (
            f"cannot reach serial port {url} ({exc}); check that the serial-to-network "
            f"converter is on and {table} url names its host and port."
        )
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"no permission to open serial port {url}; add the user running retrotread to "
            "the dialout group (sudo usermod -aG dialout USER) and restart it."
        )
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return (
            f"serial port {url} does not exist; plug in the treadmill's cable or fix "
            f"{table} url (ls /dev/serial/by-id/ lists the ports)."
        )
    if code == errno.EBUSY:
        return (
            f"serial port {url} is busy; stop the other program using it (a serial console, "
            "ModemManager or a second retrotread)."
        )
    return f"cannot open serial port {url} ({exc}); check the cable and {table} url."
