"""Partner enablement: training modules, certifications per partner person, the enablement score
(contracts/enablement.py)."""

from services.relationships.enablement.handlers import COMMANDS

__all__ = ["COMMANDS"]
