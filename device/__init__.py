"""retrotread's realtime daemon: belt speed, sessions, safety rules and the history store.

The modules split into a pure core that takes time as an argument (speed, session, governor,
controller) and thin adapters that do the I/O (sources, outputs, store, ipc, daemon).
"""
