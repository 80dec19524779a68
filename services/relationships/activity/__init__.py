"""Partner activity and quality per month (contracts/activity.py)."""

from services.relationships.activity.handlers import COMMANDS

__all__ = ["COMMANDS"]
