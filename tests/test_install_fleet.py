"""systemd/install.sh --fleet run for real with --root, as test_install_script.py runs the
treadmill's install: the fleet service on the front desk's PC (a Debian without gpio or
dialout), which gets only its own unit, user, state directory and fleet.toml; and a treadmill
that runs the fleet beside it, where installing or removing one role leaves the other alone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from test_install_script import (
    BOOKWORM,
    BULLSEYE,
    CONFIG,
    HISTORY,
    PI_OS_GROUPS,
    REPO,
    UNIT_DIR,
    UNITS,
    WANTS,
    empty_root,
    install,
    installs,
    one_sentence,
    owner_and_mode,
    snapshot,
    table,
)

FLEET_UNIT = "retrotread-fleet.service"
FLEET_CONFIG = "etc/retrotread/fleet.toml"
FLEET_SECRET = "etc/retrotread/fleet-broker.secret"
FLEET_DB = "var/lib/retrotread-fleet/fleet.db"
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'
# A plain Debian server: no gpio or dialout group, nobody but root.
DEBIAN_GROUPS = "root:x:0:\nusers:x:100:\n"


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    """The front desk's PC: an empty Debian Bookworm, as far as install.sh looks at it."""
    return empty_root(tmp_path / "desk", DEBIAN, DEBIAN_GROUPS, "root:x:0:0:root:/root:/bin/bash\n")


@pytest.fixture
def pi(tmp_path: Path) -> Path:
    """A Raspberry Pi OS Bookworm that becomes a treadmill and may run the fleet too."""
    users = "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:\n"
    return empty_root(tmp_path / "pi", BOOKWORM, PI_OS_GROUPS, users)


def test_fleet_install_enables_only_the_fleet_unit(desk: Path):
    installs(desk, "--fleet")
    unit = desk / UNIT_DIR / FLEET_UNIT
    assert unit.read_bytes() == (REPO / "systemd" / FLEET_UNIT).read_bytes()
    assert owner_and_mode(unit, desk) == ("root", "root", "0o644")
    assert sorted(path.name for path in (desk / WANTS).iterdir()) == [FLEET_UNIT]
    assert os.readlink(desk / WANTS / FLEET_UNIT) == f"/{UNIT_DIR}/{FLEET_UNIT}"
    for name in UNITS:  # no treadmill here
        assert not (desk / UNIT_DIR / name).exists()


def test_fleet_install_makes_its_own_user_with_no_device_group(desk: Path):
    installs(desk, "--fleet")
    users, groups = table(desk, "passwd"), table(desk, "group")
    assert users["retrotread-fleet"][3] == groups["retrotread-fleet"][2]
    assert users["retrotread-fleet"][6] == "/usr/sbin/nologin"
    assert "retrotread" not in users and "retrotread-web" not in users
    assert "gpio" not in groups and "dialout" not in groups and "retrotread" not in groups
    state = owner_and_mode(desk / "var/lib/retrotread-fleet", desk)
    assert state == ("retrotread-fleet", "retrotread-fleet", "0o750")
    assert owner_and_mode(desk / "etc/retrotread", desk) == ("root", "root", "0o755")
    for kind, ours in (
        ("sysusers.d", "retrotread-fleet.sysusers"),
        ("tmpfiles.d", "retrotread-fleet.tmpfiles"),
    ):
        snippet = desk / "usr/local/lib" / kind / "retrotread-fleet.conf"
        assert snippet.read_bytes() == (REPO / "systemd" / ours).read_bytes()
        assert not (desk / "usr/local/lib" / kind / "retrotread.conf").exists()


def test_fleet_install_writes_fleet_toml_from_the_template(desk: Path):
    output = installs(desk, "--fleet")
    config = desk / FLEET_CONFIG
    assert config.read_bytes() == (REPO / "systemd/fleet.example.toml").read_bytes()
    assert owner_and_mode(config, desk) == ("root", "root", "0o644")
    assert not (desk / CONFIG).exists()  # no treadmill config on the front desk
    assert "made /etc/retrotread/fleet.toml from fleet.example.toml" in output


def test_an_existing_fleet_toml_is_never_overwritten(desk: Path):
    config = desk / FLEET_CONFIG
    config.parent.mkdir(parents=True)
    config.write_text('[fleet]\nbroker = "mqtt://broker.gym.lan:1883"\nsite = "floor2"\n')
    output = installs(desk, "--fleet")
    assert config.read_text() == '[fleet]\nbroker = "mqtt://broker.gym.lan:1883"\nsite = "floor2"\n'
    assert "kept your /etc/retrotread/fleet.toml" in output


def test_fleet_install_needs_no_lgpio(desk: Path):
    output = installs(desk, "--fleet")
    assert "apt-get install python3 python3-venv avahi-daemon\n" in output
    assert "lgpio" not in output
    assert "pip install --quiet --upgrade " in output and "[pi]" not in output


def test_fleet_installing_twice_changes_nothing(desk: Path):
    installs(desk, "--fleet")
    first = snapshot(desk)
    installs(desk, "--fleet")
    assert snapshot(desk) == first


def test_fleet_waits_for_its_broker_password_and_says_how_to_make_it(desk: Path):
    output = installs(desk, "--fleet")
    assert "enabled, not started" in output
    assert "systemctl restart" not in output.split("Next steps:")[0]
    assert f"http://{socket.gethostname()}.local:8090/" in output
    steps = output.split("Next steps:")[1]
    assert "sudo mosquitto_passwd /etc/mosquitto/retrotread.passwd fleet" in steps
    secret = "/" + FLEET_SECRET
    assert f"sudo install -m 0640 -o root -g retrotread-fleet /dev/stdin {secret}" in steps
    assert "readable by the user retrotread-fleet only" in steps
    assert "sudo retrotread set-password --state-dir /var/lib/retrotread-fleet" in steps


def test_fleet_starts_once_its_password_file_is_there(desk: Path):
    installs(desk, "--fleet")
    secret = desk / FLEET_SECRET
    secret.write_text("s3cret-of-the-front-desk\n")
    secret.chmod(0o640)
    output = installs(desk, "--fleet")
    assert f"not run: systemctl daemon-reload; systemctl restart {FLEET_UNIT}" in output
    assert "mosquitto_passwd" not in output  # done already
    secret.chmod(0o644)
    assert "can be read by every user here" in installs(desk, "--fleet")


def test_fleet_uninstall_removes_unit_user_and_program_but_keeps_sessions_and_config(desk: Path):
    installs(desk, "--fleet")
    (desk / FLEET_DB).write_text("sessions of every treadmill")
    output = installs(desk, "--uninstall", "--fleet")
    assert not (desk / UNIT_DIR / FLEET_UNIT).exists()
    assert not (desk / WANTS / FLEET_UNIT).is_symlink()
    assert not (desk / "opt/retrotread").exists()
    assert not (desk / "usr/local/bin/retrotread").is_symlink()
    assert not (desk / "usr/local/lib/sysusers.d/retrotread-fleet.conf").exists()
    assert not (desk / "usr/local/lib/tmpfiles.d/retrotread-fleet.conf").exists()
    assert "retrotread-fleet" not in table(desk, "passwd")
    assert "retrotread-fleet" not in table(desk, "group")
    assert (desk / FLEET_DB).read_text() == "sessions of every treadmill"
    assert (desk / FLEET_CONFIG).is_file()
    assert "Kept: its sessions in /var/lib/retrotread-fleet" in output
    installs(desk, "--uninstall", "--fleet")  # twice is no error


def test_fleet_uninstall_purge_removes_its_sessions_config_and_password(desk: Path):
    installs(desk, "--fleet")
    (desk / FLEET_DB).write_text("sessions of every treadmill")
    (desk / FLEET_SECRET).write_text("s3cret-of-the-front-desk\n")
    installs(desk, "--uninstall", "--fleet", "--purge")
    assert not (desk / "var/lib/retrotread-fleet").exists()
    assert not (desk / "etc/retrotread").exists()


def test_fleet_on_another_os_is_refused_with_one_sentence(desk: Path):
    (desk / "etc/os-release").write_text(BULLSEYE)
    result = install(desk, "--fleet")
    assert result.returncode == 1
    assert "not Debian or Raspberry Pi OS, Bookworm or Trixie" in one_sentence(result.stderr)


# ---- both roles on one machine -------------------------------------------------------------


def test_a_treadmill_may_also_run_the_fleet_and_each_install_leaves_the_other_alone(pi: Path):
    installs(pi)
    treadmills_config = (pi / CONFIG).read_bytes()
    output = installs(pi, "--fleet")
    # never restarted by the fleet's install: someone may be on the belt
    assert "restart them while the belt is stopped" in output
    assert sorted(path.name for path in (pi / WANTS).iterdir()) == sorted([*UNITS, FLEET_UNIT])
    users = table(pi, "passwd")
    assert {"retrotread", "retrotread-web", "retrotread-fleet"} <= users.keys()
    # the treadmill's /etc/retrotread keeps its group and mode
    assert owner_and_mode(pi / "etc/retrotread", pi) == ("root", "retrotread", "0o775")
    assert (pi / CONFIG).read_bytes() == treadmills_config
    # the treadmill's upgrade restarts the fleet too, which runs the program it replaced
    (pi / FLEET_SECRET).write_text("s3cret-of-the-front-desk\n")
    assert f"systemctl restart {' '.join(UNITS)} {FLEET_UNIT}" in installs(pi)


def test_removing_one_role_keeps_the_program_for_the_other(pi: Path):
    installs(pi)
    installs(pi, "--fleet")
    (pi / HISTORY).write_text("sessions")
    installs(pi, "--uninstall", "--fleet", "--purge")
    assert (pi / "opt/retrotread/venv/bin/python").exists()
    assert (pi / UNIT_DIR / UNITS[0]).is_file() and "retrotread" in table(pi, "passwd")
    assert (pi / CONFIG).is_file() and (pi / HISTORY).read_text() == "sessions"
    installs(pi, "--fleet")
    installs(pi, "--uninstall", "--purge")
    assert (pi / "opt/retrotread/venv/bin/python").exists()  # the fleet still runs it
    assert not (pi / CONFIG).exists() and (pi / FLEET_CONFIG).is_file()
    assert "retrotread-fleet" in table(pi, "passwd") and "retrotread" not in table(pi, "passwd")
    # no longer writable by the treadmill's group, whose id is free now
    assert owner_and_mode(pi / "etc/retrotread", pi) == ("root", "root", "0o755")
    installs(pi, "--uninstall", "--fleet")
    assert not (pi / "opt/retrotread").exists()
