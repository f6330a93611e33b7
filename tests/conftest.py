"""Fixtures more than one test file wants: a short directory for Unix sockets and gpiozero's
mock pins."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from support.console import console_emulator  # noqa: F401  (the fixture, for every test file)
from support.device_process import launch  # noqa: F401  (the fixture, for every test file)
from support.mosquitto import broker, gym_broker  # noqa: F401  (fixtures for every test file)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A fresh directory under /tmp for sockets: pytest's tmp_path can be longer than the
    107 bytes a Unix socket path may have."""
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """gpiozero's mock pins, passed to devices as `pin_factory=`; reset afterwards so no pin
    stays reserved for the next test."""
    factory = MockFactory()
    yield factory
    factory.reset()
    factory.close()
