"""What the tests share: the daemon as a subprocess (device_process), a virtual clock, the
attack and legit stories with the invariant they are judged by, the calibrate terminal, and
one wait_until and one free_port."""
