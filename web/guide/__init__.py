"""The walker's first steps: the first-session guide (`/guide`), the card the live page shows
before a walker's first backward session, and the 4-week plan (`/plan`).

- web.guide.rules: what this treadmill's config makes the device do, in numbers and sentences
  (the start cap, the hold, the ramp, the grace, the stop), and the essentials of the card.
- web.guide.first_steps: whether the walker on the belt still needs the first-session card.
- web.guide.plan: the plan's weeks, the walker's level and what unlocks the next one, from
  the history's profiles table through device.core.program.
- web.guide.chart: the backward minutes per week as inline SVG geometry (server-rendered:
  no script, nothing the Content-Security-Policy would block).
- web.guide.pages: the blueprint `guide` with the two pages.

The advice is the seed's, as /work/shared/reference/backward-walking.md keeps it; the pages
claim no benefit of backward walking and never the "100 steps backward" one.
"""
