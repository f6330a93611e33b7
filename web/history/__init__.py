"""The dashboard's history: the blueprint and its routes (blueprint), the pages (views), the
JSON and CSV API (api) and the read-only SQLite reads they share (queries).

May import: web, device.history, device.core, device.config.
"""
