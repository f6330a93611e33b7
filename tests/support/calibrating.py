"""What the calibrate tests share: the command line parsed as the CLI does, and a person at
the treadmill who answers every prompt."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from device.calibrate.command import add_calibrate_parser

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.toml"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="retrotread")
    add_calibrate_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["calibrate", *argv])


class ScriptedTerminal:
    """The person at the treadmill: presses Enter at each prompt, after `on_ask(kmh)` has set
    the belt to the speed the prompt asks for."""

    def __init__(self, on_ask=None):
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.prompts: list[str] = []
        self._on_ask = on_ask

    def say(self, text: str) -> None:
        self.lines.append(text)

    def error(self, text: str) -> None:
        self.errors.append(text)

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if self._on_ask is not None:
            self._on_ask(float(re.search(r"at ([\d.]+) km/h", prompt).group(1)))
        return ""

    def progress(self, text: str) -> None:
        pass

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
