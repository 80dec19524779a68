"""The relationships service's stream. Each area of the service (the team's week, contacts, funding)
declares its events and commands in its own module (`contracts/week.py`, ...); they all publish here."""

from __future__ import annotations

from contracts.base import StreamSpec

STREAM = StreamSpec(
    name="RELATIONSHIPS",
    subjects=("relationships.>",),
    description="Facts about the team's week (meetings, updates, tasks), contacts and funding.",
)
