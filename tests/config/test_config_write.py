"""Writing settings back into config.toml: the operator's comments, order and file mode stay,
and a failure at any point leaves the old file whole."""

from __future__ import annotations

import os
import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from device.config import write as config_write
from device.config.kinds import ConfigError
from device.config.load import config_from_mapping, load_config
from device.config.model import BackwardConfig, Config, MachineConfig
from device.config.write import ConfigWriteError, write_config_changes

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    shutil.copy(EXAMPLE, path)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_only_the_changed_lines_differ_and_every_comment_stays(config_file: Path) -> None:
    before = config_file.read_text().splitlines()
    config = write_config_changes(
        config_file,
        {"backward": {"grace_s": 4.0, "start_cap_kmh": 1.5}, "machine": {"name": "Lane 2"}},
        base=load_config(config_file)[0],
    )
    after = config_file.read_text().splitlines()
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ('name = "Treadmill 1"', 'name = "Lane 2"'),
        ("start_cap_kmh = 2.0", "start_cap_kmh = 1.5"),
        ("grace_s = 5.0", "grace_s = 4.0"),
    ]
    assert config.backward.grace_s == 4.0 and config.machine.name == "Lane 2"
    assert load_config(config_file)[0] == config


def test_a_trailing_comment_on_a_changed_key_stays(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[backward]\n# why two minutes\nhold_s = 120  # learn the movement first\n")
    write_config_changes(path, {"backward": {"hold_s": 60.0}}, base=Config())
    assert path.read_text() == (
        "[backward]\n# why two minutes\nhold_s = 60.0  # learn the movement first\n"
    )


def test_keys_and_tables_missing_from_the_file_are_added_at_their_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# my treadmill\n[machine]\nname = "Home"\n\n[enforce]\naction = "relay"\n')
    write_config_changes(
        path,
        {"machine": {"id": "home-1"}, "sensor": {"meters_per_pulse": 0.2}},
        base=Config(),
    )
    text = path.read_text()
    assert text.startswith('# my treadmill\n[machine]\nname = "Home"\nid = "home-1"\n')
    assert text.endswith('action = "relay"\n\n[sensor]\nmeters_per_pulse = 0.2\n')
    assert tomllib.loads(text)["sensor"] == {"meters_per_pulse": 0.2}


def test_a_missing_file_is_created_from_the_running_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    base = Config(machine=MachineConfig(name="Demo"))
    config = write_config_changes(path, {"backward": {"hold_s": 30.0}}, base=base)
    assert config == Config(
        machine=MachineConfig(name="Demo"), backward=BackwardConfig(hold_s=30.0)
    )
    assert load_config(path)[0] == config
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_files_mode_is_kept(config_file: Path) -> None:
    config_file.chmod(0o600)
    write_config_changes(config_file, {"backward": {"hold_s": 30.0}}, base=Config())
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_a_symlinked_config_stays_a_link_and_its_target_is_written(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text("[backward]\nhold_s = 120.0\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    write_config_changes(link, {"backward": {"hold_s": 30.0}}, base=Config())
    assert link.is_symlink()
    assert real.read_text() == "[backward]\nhold_s = 30.0\n"


def test_a_failed_rename_leaves_the_old_file_whole_and_no_temp_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = config_file.read_bytes()

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(config_write.os, "replace", disk_full)
    with pytest.raises(ConfigWriteError) as caught:
        write_config_changes(config_file, {"backward": {"hold_s": 30.0}}, base=Config())
    assert str(config_file) in str(caught.value)
    assert "no space left on device" in str(caught.value)
    assert config_file.read_bytes() == before
    assert leftovers(config_file.parent) == []


def test_a_failed_fsync_leaves_the_old_file_whole(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = config_file.read_bytes()

    def io_error(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(config_write.os, "fsync", io_error)
    with pytest.raises(ConfigWriteError, match="the old file is unchanged"):
        write_config_changes(config_file, {"backward": {"hold_s": 30.0}}, base=Config())
    assert config_file.read_bytes() == before
    assert leftovers(config_file.parent) == []


def test_changes_the_device_would_refuse_are_never_written(config_file: Path) -> None:
    before = config_file.read_bytes()
    with pytest.raises(ConfigError, match="grace_s"):
        write_config_changes(config_file, {"backward": {"grace_s": 0}}, base=Config())
    assert config_file.read_bytes() == before
    assert leftovers(config_file.parent) == []


def test_a_folder_that_is_not_there_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "config.toml"
    with pytest.raises(ConfigWriteError) as caught:
        write_config_changes(path, {"backward": {"hold_s": 30.0}}, base=Config())
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)
    assert "cannot write into" in str(caught.value)
    assert not path.parent.exists()


def test_a_file_broken_by_hand_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[backward\nhold_s = 1\n")
    with pytest.raises(ConfigWriteError, match="not valid TOML"):
        write_config_changes(path, {"backward": {"hold_s": 30.0}}, base=Config())
    assert path.read_text() == "[backward\nhold_s = 1\n"


def test_written_text_loads_back_through_check_configs_code(config_file: Path) -> None:
    write_config_changes(
        config_file,
        {"backward": {"level_caps_kmh": [2.5, 3.5]}, "enforce": {"action": "none"}},
        base=Config(),
    )
    with open(config_file, "rb") as fh:
        loaded = config_from_mapping(tomllib.load(fh), source=os.fspath(config_file))
    assert loaded.backward.level_caps_kmh == (2.5, 3.5)
    assert loaded.enforce.action == "none"
