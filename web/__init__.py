"""retrotread's dashboard (Flask). It reads history from SQLite and live status from the
daemon's socket; it never touches pins or the serial port."""
