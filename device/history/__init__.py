"""The history file in SQLite: its tables and migrations (schema), opening only files that
are ours (sqlite_file), the read side the web uses (reader), the daemon's buffered writer
(store), the thread that writes it off the tick (writer), and what a tick means for it
(recorder).

May import: device.core, device.config, sqlite3.
"""
