"""Benchmarks: `python -m benchmarks` (or `make bench`) prints one table of figures against
their targets, section by section, and exits non-zero when one of our own figures misses.

A section is a function returning `Row`s (see `benchmarks.table`); add it to `SECTIONS` in
`benchmarks/__main__.py`.
"""
