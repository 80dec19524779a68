"""What goals answer on the bus (thin: the command server parses, the service acts)."""

from __future__ import annotations

from contracts import goals as g
from services.relationships.goals import service

COMMANDS = (
    (g.CreateGoal, service.create_goal),
    (g.UpdateGoal, service.update_goal),
    (g.GetGoal, service.get_goal),
    (g.ListGoals, service.list_goals),
)
