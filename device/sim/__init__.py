"""Simulation: scenario files (scenario), a belt with inertia and true speed (belt), the
virtual-time scenario runner behind `retrotread simulate` (simulate), and `retrotread demo`,
the real daemon on mock pins with a simulated walker and the dashboard (demo).

May import: everything below it, and `web` (the demo serves the dashboard: a documented
exception to "device never imports web").
"""
