"""The history file in SQLite: its tables and migrations (schema), opening only files that
are ours (sqlite_file), the read side the web uses (reader), the daemon's buffered writer
(store), the thread that writes it off the tick (writer), what a tick means for it
(recorder), and a stored session as a FIT activity file (fit, fit_timeline, fit_export).

May import: device.core, device.config, sqlite3, garmin_fit_sdk (the FIT files).
"""
