"""Configuration: the values (model), the kinds of value and their ranges (kinds), the rules
per key and across keys (rules), reading and printing a file (load), and writing changes back
keeping the user's comments (write), and the one atomic file write that write and the web's
state files share (files).

The core imports only device.config.model. Inside: model <- kinds <- rules <- load <- write.
May import: the standard library, tomlkit and regex, and of device only device.errors (the
one base of the one-sentence errors).
"""
