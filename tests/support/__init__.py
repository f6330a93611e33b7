"""What the tests share (imported as `support.X`, by the benchmarks too):

- waiting: `wait_until`, the one deadline loop for another thread or process.
- ports: `free_port`, for a dashboard started as a subprocess.
- ticking: tick times at the daemon's 10 Hz and the Treadmill that drives a Controller
  through virtual time.
- virtual_clock: a clock that moves only when the test says (buttons, serial, calibrate).
- device_process: the daemon as a subprocess and readers of the history file it writes.
- daemon_thread: `daemon_running`, the real Daemon on a thread of the test, on mock pins.
- scenarios: the stories in tests/scenarios, `retrotread simulate` on them, readers of its
  report and the status at a moment of a story.
- program_walks: sessions as the program counts them, and a profile walked through them.
- live_page: the live page's elements by id and /api/stream read one message at a time.
- invariant, stories, story_runs: the safety invariant, the attack and legit stories it judges,
  and a story run through the simulator and judged (or printed as TOML for a report).
- calibrating: the calibrate command line and a person at the treadmill answering it.
- fit_sessions: sessions recorded for the FIT export, and a FIT file read by both readers.
"""
