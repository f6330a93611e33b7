"""The journal reads like the story of a session: every event kind has its sentence."""

from __future__ import annotations

from device.core.events import STORY, Event, EventKind


def test_every_event_kind_has_a_sentence_for_the_journal():
    assert set(STORY) == set(EventKind)


def test_an_enforced_stop_says_what_was_cut_at_what_speed_against_which_cap():
    stop = Event(
        65.9,
        EventKind.ENFORCED_STOP,
        {"speed_kmh": 3.0, "cap_kmh": 2.0, "reason": "over the cap", "action": "relay",
         "mode": "pulse"},
    )  # fmt: skip
    line = stop.describe()
    assert line.startswith("enforced stop (over the cap): the relay cut the safety-key loop")
    assert "at 3.0 km/h against the 2.0 km/h cap" in line
    assert line.endswith("[speed_kmh=3.0 cap_kmh=2.0 reason=over the cap action=relay mode=pulse]")


def test_an_event_missing_a_detail_still_reads_as_its_kind():
    # a session closed as interrupted at start-up knows its reason but not its distance
    line = Event(0.0, EventKind.SESSION_ENDED, {"reason": "interrupted"}).describe()
    assert line == "session ended [reason=interrupted]"
