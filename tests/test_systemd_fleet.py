"""The fleet service's unit, sysusers.d and tmpfiles.d snippets (systemd/retrotread-fleet.*) and
its config template (systemd/fleet.example.toml), checked as test_systemd_units.py checks the
treadmill's (which also runs systemd-analyze verify and security on this unit): against what
`retrotread fleet` actually reads, where it keeps its database, and against a treadmill that
runs the fleet beside it. Run as root with systemd's tools, like that file.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from test_systemd_units import (
    PI_OS_GROUPS,
    PROGRAM,
    SYSTEMD,
    Unit,
    groups,
    make_directories,
    make_users,
    one,
    owner_and_mode,
    passwd,
    put_snippets,
    read_unit,
    words,
)

from device.cli import _parser
from device.config.load import load_config
from web.fleet.serve import run_fleet
from web.fleet.settings import DEFAULT_DB, DEFAULT_LISTEN, fleet_settings

FLEET = "retrotread-fleet.service"
FLEET_CONFIG = "/etc/retrotread/fleet.toml"
FLEET_TEMPLATE = SYSTEMD / "fleet.example.toml"


@pytest.fixture(scope="module")
def fleet() -> Unit:
    return read_unit(SYSTEMD / FLEET)


# ---- the fleet service -------------------------------------------------------------------


def test_fleet_runs_the_installed_command_on_fleet_toml_and_its_own_database(fleet: Unit):
    program, *argv = one(fleet, "Service", "ExecStart").split()
    assert program == "/" + PROGRAM
    args = _parser().parse_args(argv)
    assert (args.command, args.config, args.db) == ("fleet", FLEET_CONFIG, DEFAULT_DB)
    # the database, its session key and admin password live in its state directory
    assert os.path.dirname(DEFAULT_DB) == "/var/lib/" + one(fleet, "Service", "StateDirectory")
    assert one(fleet, "Service", "StateDirectoryMode") == "0750"
    assert ("Service", "ReadWritePaths") not in fleet  # it writes nowhere else
    assert one(fleet, "Service", "Type") == "exec"
    assert one(fleet, "Service", "Restart") == "on-failure"


def test_fleet_is_its_own_user_and_sees_no_device(fleet: Unit):
    assert one(fleet, "Service", "User") == "retrotread-fleet"
    assert one(fleet, "Service", "Group") == "retrotread-fleet"
    assert ("Service", "SupplementaryGroups") not in fleet
    assert one(fleet, "Service", "PrivateDevices") == "yes"
    assert ("Service", "DeviceAllow") not in fleet


def test_fleet_starts_after_the_network_and_a_local_broker_but_needs_neither(fleet: Unit):
    assert {"network-online.target", "mosquitto.service"} <= words(fleet, "Unit", "After")
    assert words(fleet, "Unit", "Wants") == {"network-online.target"}
    # the broker may be on another machine, and the fleet serves its history while it is down
    assert ("Unit", "Requires") not in fleet
    assert ("Unit", "BindsTo") not in fleet


def test_a_fleet_config_error_exits_2_and_systemd_does_not_retry_it(
    fleet: Unit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert one(fleet, "Service", "RestartPreventExitStatus") == "2"
    # the template as installed, before the operator has made the broker password file
    config = tmp_path / "fleet.toml"
    config.write_text(
        FLEET_TEMPLATE.read_text().replace(
            "/etc/retrotread/fleet-broker.secret", str(tmp_path / "fleet-broker.secret")
        )
    )
    assert run_fleet(str(config), db_path=str(tmp_path / "fleet.db")) == 2
    assert "password_file" in capsys.readouterr().err
    assert not (tmp_path / "fleet.db").exists()  # it stopped before touching anything


def test_the_fleet_template_is_a_config_the_fleet_service_accepts(tmp_path: Path):
    config, _ = load_config(str(FLEET_TEMPLATE))
    assert config.fleet.password_file == "/etc/retrotread/fleet-broker.secret"
    assert config.web.listen == DEFAULT_LISTEN
    secret = tmp_path / "fleet-broker.secret"
    secret.write_text("s3cret-of-the-front-desk\n")
    config = replace(config, fleet=replace(config.fleet, password_file=str(secret)))
    settings = fleet_settings(config)
    assert (settings.host, settings.port, settings.tls) == ("localhost", 1883, False)
    assert (settings.site, settings.username) == ("gym", "fleet")
    assert settings.password == "s3cret-of-the-front-desk"
    assert settings.listen == "0.0.0.0:8090"  # the port install.sh prints


@pytest.fixture
def desk_root(tmp_path: Path) -> Path:
    """The front desk's Debian: no gpio, no dialout; the fleet's snippets in place."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/group").write_text("root:x:0:\nusers:x:100:\n")
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    put_snippets(tmp_path, "retrotread-fleet")
    return tmp_path


def test_fleet_user_has_its_own_group_and_no_other(desk_root: Path):
    make_users(desk_root, "retrotread-fleet.conf")
    users, group = passwd(desk_root), groups(desk_root)
    assert users["retrotread-fleet"][3] == group["retrotread-fleet"][2]
    assert users["retrotread-fleet"][6] == "/usr/sbin/nologin"
    assert int(users["retrotread-fleet"][2]) < 1000
    assert set(group) == {"root", "users", "retrotread-fleet"}  # no gpio or dialout made
    assert all(line[3] == "" for line in group.values())


def test_fleet_unit_and_tmpfiles_agree_on_its_state_directory(fleet: Unit, desk_root: Path):
    entries = {}
    for line in (SYSTEMD / "retrotread-fleet.tmpfiles").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            kind, path, mode, user, group, _age = line.split()
            entries[path] = (kind, mode, user, group)
    state = "/var/lib/" + one(fleet, "Service", "StateDirectory")
    assert entries == {
        state: (
            "d",
            one(fleet, "Service", "StateDirectoryMode"),
            one(fleet, "Service", "User"),
            one(fleet, "Service", "Group"),
        )
    }
    make_users(desk_root, "retrotread-fleet.conf")
    make_directories(desk_root, "retrotread-fleet.conf")
    made = owner_and_mode(desk_root / state.lstrip("/"), desk_root)
    assert made == ("retrotread-fleet", "retrotread-fleet", "0o750")


def test_a_treadmill_with_the_fleet_beside_it_boots_without_tmpfiles_complaints(tmp_path: Path):
    # both roles on one Pi: at boot systemd-tmpfiles reads both snippets; a path in both
    # would be a "Duplicate line" notice every time, and one mode would lose
    pi_root = tmp_path
    (pi_root / "etc").mkdir()
    (pi_root / "etc/group").write_text(PI_OS_GROUPS)
    (pi_root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    put_snippets(pi_root, "retrotread")
    put_snippets(pi_root, "retrotread-fleet")
    make_users(pi_root)
    make_users(pi_root, "retrotread-fleet.conf")
    result = make_directories(pi_root, "retrotread.conf", "retrotread-fleet.conf")
    assert result.stdout + result.stderr == ""
    assert owner_and_mode(pi_root / "etc/retrotread", pi_root) == ("root", "retrotread", "0o775")
    fleet_state = owner_and_mode(pi_root / "var/lib/retrotread-fleet", pi_root)
    assert fleet_state == ("retrotread-fleet", "retrotread-fleet", "0o750")
