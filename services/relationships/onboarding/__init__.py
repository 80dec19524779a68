"""Partner onboarding plans from an editable template (contracts/onboarding.py)."""

from services.relationships.onboarding.handlers import COMMANDS

__all__ = ["COMMANDS"]
