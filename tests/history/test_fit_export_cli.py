"""`retrotread export --fit ID|--all --out DIR [--db P] [--config P]` on a real history file:
a FIT file per session in DIR, a line per file, running sessions skipped in one sentence, and
one sentence (exit 2), never a traceback, for a history file it cannot read."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.fit_sessions import (
    T0,
    WALK_PAUSE_TURN,
    Stretch,
    close_to,
    read_both,
    record_walk,
    simulate_into,
)

from device.cli import main
from device.core.modes import Mode
from device.history.reader import History
from device.history.store import Store

REPO = Path(__file__).resolve().parents[2]
FILE_NAME = re.compile(r"retrotread-treadmill-1-(\d+)-\d{8}-\d{4}\.fit")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "retrotread.db"


@pytest.fixture
def history(db_path: Path) -> dict[str, int]:
    """Three sessions: one walked through the simulator, one written by the Store, and one
    still running."""
    (walked,) = simulate_into(db_path, WALK_PAUSE_TURN)
    with Store(db_path) as store:
        stored = record_walk(store, [Stretch(Mode.BACKWARD, 60)], start=T0 + 3600)
        running = record_walk(store, [Stretch(Mode.FORWARD, 20)], start=T0 + 7200, ended=False)
    return {"walked": walked, "stored": stored, "running": running}


def session_id_in(path: Path) -> int:
    named = FILE_NAME.fullmatch(path.name)
    assert named, f"{path.name} is not named retrotread-<machine>-<id>-<YYYYMMDD-HHMM>.fit"
    return int(named.group(1))


def assert_one_sentence(text: str) -> None:
    assert text.count("\n") == 1 and text.endswith(".\n"), text
    assert "Traceback" not in text


def test_all_writes_a_file_per_ended_session_and_skips_the_running_one(
    db_path: Path, history: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exports" / "fit"  # made, parents and all
    assert main(["export", "--all", "--out", str(out), "--db", str(db_path)]) == 0
    printed = capsys.readouterr()
    files = sorted(out.iterdir())
    ids = sorted(session_id_in(f) for f in files)
    assert ids == sorted([history["walked"], history["stored"]])
    assert len(printed.out.splitlines()) == 2
    for path in files:
        assert f"{path}: session " in printed.out
    assert printed.err == (
        f"Session {history['running']} is still running; export it once it ends.\n"
    )
    with History(db_path) as stored:
        for path in files:
            row = stored.session(session_id_in(path))
            assert row is not None
            session, other = read_both(path.read_bytes()).one("session")
            for found in (session, other):
                assert close_to(found["total_distance"], row.distance_m, floor=0.01)
                assert close_to(found["total_timer_time"], row.active_s, floor=0.001)


def test_one_session_by_its_id(
    db_path: Path, history: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = history["walked"]
    assert main(["export", "--fit", str(sid), "--out", str(tmp_path), "--db", str(db_path)]) == 0
    (path,) = tmp_path.glob("*.fit")
    assert session_id_in(path) == sid
    assert capsys.readouterr().out.startswith(f"{path}: session {sid}, ")
    assert len(read_both(path.read_bytes()).fitdecode["lap"]) == 2


def test_a_running_session_asked_for_by_id_is_skipped_with_the_sentence(
    db_path: Path, history: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["export", "--fit", str(history["running"]), "--out", str(out), "--db",
                 str(db_path)])  # fmt: skip
    assert code == 1
    printed = capsys.readouterr()
    assert printed.err == (
        f"Session {history['running']} is still running; export it once it ends.\n"
    )
    assert printed.out == "" and list(out.iterdir()) == []


def test_an_unknown_session_is_one_sentence(
    db_path: Path, history: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["export", "--fit", "999", "--out", str(out), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert_one_sentence(err)
    assert err.startswith(f"There is no session 999 in {db_path};")
    assert not out.exists()


@pytest.mark.parametrize("problem", ["missing", "not a database", "a directory"])
def test_a_history_file_it_cannot_read_is_one_sentence_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    db = tmp_path / "retrotread.db"
    if problem == "not a database":
        db.write_bytes(b"these are not the sessions you are looking for" * 20)
    elif problem == "a directory":
        db.mkdir()
    out = tmp_path / "out"
    assert main(["export", "--all", "--out", str(out), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert_one_sentence(err)
    assert str(db) in err
    assert not out.exists()  # nothing to write: no folder either


def test_a_folder_it_cannot_make_is_one_sentence(
    db_path: Path, history: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "fit"
    assert main(["export", "--all", "--out", str(out), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert_one_sentence(err)
    assert err.startswith(f"Cannot create the folder {out}")


def test_the_db_defaults_to_the_configs_storage_db(
    db_path: Path, history: dict[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndb = "{db_path}"\n')
    out = tmp_path / "out"
    assert main(["export", "--fit", str(history["stored"]), "--out", str(out), "--config",
                 str(config)]) == 0  # fmt: skip
    assert len(list(out.glob("*.fit"))) == 1


def test_a_bad_config_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[storage]\ndb = 5\n")
    assert main(["export", "--all", "--out", str(tmp_path / "o"), "--config", str(config)]) == 2
    assert_one_sentence(capsys.readouterr().err)


def test_the_command_as_a_walker_types_it(
    db_path: Path, history: dict[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "fit"
    done = subprocess.run(
        [sys.executable, "-m", "device.cli", "export", "--all", "--out", str(out), "--db",
         str(db_path)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 == len(list(out.glob("*.fit")))
    running = history["running"]
    assert done.stderr == f"Session {running} is still running; export it once it ends.\n"
    for path in out.glob("*.fit"):
        read_both(path.read_bytes())


def test_an_empty_history_says_so_and_writes_nothing(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Store(db_path).close()  # the daemon ran once; nobody walked yet
    out = tmp_path / "out"
    assert main(["export", "--all", "--out", str(out), "--db", str(db_path)]) == 0
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err == f"There are no sessions in {db_path} yet; walk one first.\n"
    assert out.is_dir() and list(out.iterdir()) == []
