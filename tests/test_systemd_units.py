"""The systemd units, the sysusers.d and the tmpfiles.d snippets in systemd/, checked by systemd's
own tools (systemd-analyze verify and security, systemd-sysusers, systemd-tmpfiles) inside a
temporary root, and against what the daemon and the dashboard actually do: the watchdog the
daemon pings, the socket path both compute, the database path the config defaults to. (The
fleet service's unit is verified and rated here too; the rest of it: test_systemd_fleet.py.)

systemd-analyze verify checks that ExecStart's program exists, so the temporary root holds a
stub at /opt/retrotread/venv/bin/retrotread, this machine's own units (sysinit.target and the
like, which every service depends on) and byte-for-byte copies of ours where install.sh puts
them. The tests need systemd's tools (Debian package systemd) and run as root (the snippets
chown to the users they create).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.cli import _parser
from device.config.load import DEFAULT_PATH
from device.config.model import StorageConfig
from device.daemon import WATCHDOG_EVERY_S
from device.ipc.protocol import default_socket_path

REPO = Path(__file__).resolve().parent.parent
SYSTEMD = REPO / "systemd"
UNITS = ("retrotread-device.service", "retrotread-web.service")
FLEET = "retrotread-fleet.service"
ALL_UNITS = (*UNITS, FLEET)
HOST_UNITS = Path("/usr/lib/systemd/system")
UNIT_DIR = "usr/local/lib/systemd/system"  # where install.sh puts them
PROGRAM = "opt/retrotread/venv/bin/retrotread"
# Groups as Raspberry Pi OS has them before the install: the user pi is already in gpio.
PI_OS_GROUPS = "root:x:0:\ndialout:x:20:pi\ngpio:x:993:pi\npi:x:1000:\n"

Unit = dict[tuple[str, str], list[str]]


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: install the Debian package systemd (.ci/run does)"
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def read_unit(path: Path) -> Unit:
    """{(section, key): [values in order]}: systemd lets a key repeat (DeviceAllow=), and an
    empty value (CapabilityBoundingSet=) is kept as ""."""
    unit: Unit = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        unit.setdefault((section, key.strip()), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get((section, key), [])
    assert len(values) == 1, f"[{section}] {key}= should be set once, found {values}"
    return values[0]


def words(unit: Unit, section: str, key: str) -> set[str]:
    return {word for value in unit.get((section, key), []) for word in value.split()}


@pytest.fixture(scope="module")
def device() -> Unit:
    return read_unit(SYSTEMD / "retrotread-device.service")


@pytest.fixture(scope="module")
def web() -> Unit:
    return read_unit(SYSTEMD / "retrotread-web.service")


@pytest.fixture(scope="module")
def system_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with this machine's units, a stub program and exact copies of our units."""
    root = tmp_path_factory.mktemp("systemd-root")
    assert HOST_UNITS.is_dir(), f"{HOST_UNITS} is missing: install the Debian package systemd"
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    program = root / PROGRAM
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    (root / UNIT_DIR).mkdir(parents=True)
    for name in ALL_UNITS:
        shutil.copyfile(SYSTEMD / name, root / UNIT_DIR / name)
    return root


@pytest.fixture
def scratch_unit(system_root: Path) -> Iterator[Path]:
    path = system_root / UNIT_DIR / "scratch.service"
    yield path
    path.unlink(missing_ok=True)


def verify(root: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return run(tool("systemd-analyze"), "verify", "--man=no", f"--root={root}", *names)


# ---- systemd's own checks --------------------------------------------------------------


def test_every_unit_passes_systemd_analyze_verify_without_a_single_warning(system_root: Path):
    for name in ALL_UNITS:
        assert (system_root / UNIT_DIR / name).read_bytes() == (SYSTEMD / name).read_bytes()
    result = verify(system_root, *ALL_UNITS)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_in_this_root_would_report_a_misspelt_key(system_root: Path, scratch_unit: Path):
    # The check above is only worth something if verify here speaks up about a mere warning.
    text = (SYSTEMD / "retrotread-device.service").read_text()
    scratch_unit.write_text(text.replace("WatchdogSec=", "WatchdogSecs="))
    result = verify(system_root, scratch_unit.name)
    assert "Unknown key" in result.stdout + result.stderr
    assert "WatchdogSecs" in result.stdout + result.stderr


def test_verify_in_this_root_would_report_a_missing_program(system_root: Path, scratch_unit: Path):
    text = (SYSTEMD / "retrotread-web.service").read_text()
    scratch_unit.write_text(text.replace("/opt/retrotread/venv/bin/", "/opt/elsewhere/bin/"))
    result = verify(system_root, scratch_unit.name)
    assert result.returncode != 0
    assert "/opt/elsewhere/bin/retrotread" in result.stdout + result.stderr


@pytest.mark.parametrize(("name", "most"), [(UNITS[0], 1.0), (UNITS[1], 1.5), (FLEET, 1.5)])
def test_systemd_rates_each_unit_well_hardened(system_root: Path, name: str, most: float):
    result = run(
        tool("systemd-analyze"), "security", "--offline=yes", f"--root={system_root}", name
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= most, result.stdout


# ---- what the daemon and the dashboard need from them ------------------------------------


def test_device_tells_systemd_it_is_ready_and_pings_well_inside_the_watchdog(device: Unit):
    assert one(device, "Service", "Type") == "notify"
    assert one(device, "Service", "NotifyAccess") == "main"
    watchdog_s = float(one(device, "Service", "WatchdogSec"))
    # several missed pings in a row, not one slow tick, get the daemon killed
    assert watchdog_s >= 5 * WATCHDOG_EVERY_S
    assert one(device, "Service", "Restart") == "on-failure"


def test_both_run_the_installed_command_on_the_default_config(device: Unit, web: Unit):
    for unit, command in ((device, "device"), (web, "web")):
        program, *argv = one(unit, "Service", "ExecStart").split()
        assert program == "/" + PROGRAM
        args = _parser().parse_args(argv)
        assert (args.command, args.config) == (command, DEFAULT_PATH)


def test_the_socket_the_device_serves_is_the_one_the_dashboard_looks_for(
    device: Unit, web: Unit, monkeypatch: pytest.MonkeyPatch
):
    runtime_dir = "/run/" + one(device, "Service", "RuntimeDirectory")
    monkeypatch.setenv("RUNTIME_DIRECTORY", runtime_dir)  # what systemd gives the device
    served = default_socket_path()
    # the dashboard has no RuntimeDirectory= of its own, so it falls back to the default
    assert ("Service", "RuntimeDirectory") not in web
    monkeypatch.delenv("RUNTIME_DIRECTORY")
    assert default_socket_path() == served
    # kept across restarts, so the dashboard never loses the directory under its feet
    assert one(device, "Service", "RuntimeDirectoryPreserve") == "yes"
    assert one(device, "Service", "RuntimeDirectoryMode") == "0750"


def test_the_default_database_is_in_the_device_state_directory(device: Unit, web: Unit):
    state_dir = "/var/lib/" + one(device, "Service", "StateDirectory")
    assert os.path.dirname(StorageConfig().db) == state_dir
    config_dir = "/etc/" + one(device, "Service", "ConfigurationDirectory")
    assert os.path.dirname(DEFAULT_PATH) == config_dir
    # the dashboard reads the history there, keeps its key there and saves config.toml
    assert words(web, "Service", "ReadWritePaths") == {state_dir, config_dir}
    assert ("Service", "StateDirectory") not in web  # it would take the directory over


def test_device_and_dashboard_share_one_group_and_nothing_else(device: Unit, web: Unit):
    assert one(device, "Service", "User") == "retrotread"
    assert one(device, "Service", "Group") == "retrotread"
    assert words(device, "Service", "SupplementaryGroups") == {"gpio", "dialout"}
    assert one(web, "Service", "User") == "retrotread-web"
    assert one(web, "Service", "Group") == "retrotread"
    assert ("Service", "SupplementaryGroups") not in web
    for unit in (device, web):
        # group-readable history and socket; nothing for other users
        assert one(unit, "Service", "UMask") == "0007"


def test_dashboard_starts_after_the_device_but_outlives_it(web: Unit):
    assert "retrotread-device.service" in words(web, "Unit", "After")
    assert "retrotread-device.service" in words(web, "Unit", "Wants")
    # Requires= or BindsTo= would stop the dashboard with the daemon: no history while down
    assert ("Unit", "Requires") not in web
    assert ("Unit", "BindsTo") not in web


def test_device_reaches_gpio_chips_and_serial_ports_and_no_other_device(device: Unit):
    assert one(device, "Service", "DevicePolicy") == "closed"
    allowed = {value.split()[0] for value in device[("Service", "DeviceAllow")]}
    assert {"char-gpiochip", "char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-ttyS"} <= allowed
    # PrivateDevices= would hide /dev/gpiochip* and the serial ports altogether
    assert ("Service", "PrivateDevices") not in device


def test_dashboard_sees_no_device_at_all(web: Unit):
    assert one(web, "Service", "PrivateDevices") == "yes"


@pytest.mark.parametrize(
    ("unit_name", "families"),
    [
        (UNITS[0], {"AF_UNIX"}),
        (UNITS[1], {"AF_UNIX", "AF_INET", "AF_INET6"}),
        (FLEET, {"AF_UNIX", "AF_INET", "AF_INET6"}),
    ],
)
def test_each_unit_is_confined(unit_name: str, families: set[str]):
    unit = read_unit(SYSTEMD / unit_name)
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
    }.items():
        assert one(unit, "Service", key) == value, key
    assert words(unit, "Service", "RestrictAddressFamilies") == families
    assert "@system-service" in words(unit, "Service", "SystemCallFilter")


# ---- the users and the directories -------------------------------------------------------


def passwd(root: Path) -> dict[str, list[str]]:
    lines = (root / "etc/passwd").read_text().splitlines()
    return {line.split(":")[0]: line.split(":") for line in lines}


def groups(root: Path) -> dict[str, list[str]]:
    lines = (root / "etc/group").read_text().splitlines()
    return {line.split(":")[0]: line.split(":") for line in lines}


def put_snippets(root: Path, role: str) -> None:
    """systemd/ROLE.sysusers and ROLE.tmpfiles where install.sh puts them."""
    for kind, suffix in (("sysusers.d", "sysusers"), ("tmpfiles.d", "tmpfiles")):
        target = root / "usr/local/lib" / kind / f"{role}.conf"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SYSTEMD / f"{role}.{suffix}", target)


@pytest.fixture
def pi_root(tmp_path: Path) -> Path:
    """A root with Raspberry Pi OS's groups and our two snippets where install.sh puts them."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/group").write_text(PI_OS_GROUPS)
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    put_snippets(tmp_path, "retrotread")
    return tmp_path


def make_users(root: Path, snippet: str = "retrotread.conf") -> None:
    # by name, as install.sh does: systemd finds it in /usr/local/lib/sysusers.d
    result = run(tool("systemd-sysusers"), f"--root={root}", snippet)
    assert result.returncode == 0, result.stderr


def make_directories(root: Path, *snippets: str) -> subprocess.CompletedProcess[str]:
    names = snippets or ("retrotread.conf",)
    result = run(tool("systemd-tmpfiles"), f"--root={root}", "--create", *names)
    assert result.returncode == 0, result.stderr
    return result


def test_daemon_joins_gpio_and_dialout_and_dashboard_only_the_shared_group(pi_root: Path):
    make_users(pi_root)
    users, group = passwd(pi_root), groups(pi_root)
    shared_gid = group["retrotread"][2]
    assert users["retrotread"][3] == shared_gid
    assert users["retrotread-web"][3] == shared_gid
    # Raspberry Pi OS's groups are joined, not made again: same numbers, pi still a member
    assert group["gpio"][2:] == ["993", "pi,retrotread"]
    assert group["dialout"][2:] == ["20", "pi,retrotread"]
    members = {name for line in group.values() for name in line[3].split(",")}
    assert "retrotread-web" not in members
    for name in ("retrotread", "retrotread-web"):
        assert users[name][6] == "/usr/sbin/nologin"
        assert int(users[name][2]) < 1000  # system users


def test_making_the_users_again_changes_nothing(pi_root: Path):
    make_users(pi_root)
    before = {name: (pi_root / "etc" / name).read_bytes() for name in ("passwd", "group")}
    make_users(pi_root)
    assert {name: (pi_root / "etc" / name).read_bytes() for name in before} == before


def owner_and_mode(path: Path, root: Path) -> tuple[str, str, str]:
    info = path.stat()
    uids = {int(line[2]): name for name, line in passwd(root).items()}
    gids = {int(line[2]): name for name, line in groups(root).items()}
    return uids[info.st_uid], gids[info.st_gid], oct(stat.S_IMODE(info.st_mode))


def test_history_is_the_groups_and_the_config_directory_writable_by_it(pi_root: Path):
    make_users(pi_root)
    make_directories(pi_root)
    state = pi_root / "var/lib/retrotread"
    assert owner_and_mode(state, pi_root) == ("retrotread", "retrotread", "0o770")
    config = pi_root / "etc/retrotread"
    assert owner_and_mode(config, pi_root) == ("root", "retrotread", "0o775")


def test_making_the_directories_again_repairs_a_wrong_mode(pi_root: Path):
    make_users(pi_root)
    make_directories(pi_root)
    (pi_root / "var/lib/retrotread").chmod(0o700)  # the dashboard could no longer read
    make_directories(pi_root)
    assert stat.S_IMODE((pi_root / "var/lib/retrotread").stat().st_mode) == 0o770


def test_units_and_tmpfiles_agree_on_the_directories(device: Unit):
    """systemd sets the state directory's mode at every start and only warns about the
    configuration directory's: a difference from tmpfiles.d would flip modes or fill the log."""
    entries = {}
    for line in (SYSTEMD / "retrotread.tmpfiles").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            kind, path, mode, user, group, _age = line.split()
            entries[path] = (kind, mode, user, group)
    state = "/var/lib/" + one(device, "Service", "StateDirectory")
    assert entries[state] == (
        "d",
        one(device, "Service", "StateDirectoryMode"),
        one(device, "Service", "User"),
        one(device, "Service", "Group"),
    )
    config = "/etc/" + one(device, "Service", "ConfigurationDirectory")
    config_mode = one(device, "Service", "ConfigurationDirectoryMode")
    assert entries[config] == ("d", config_mode, "root", one(device, "Service", "Group"))
