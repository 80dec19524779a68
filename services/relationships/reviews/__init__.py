"""Business reviews with partners (contracts/reviews.py)."""

from services.relationships.reviews.handlers import COMMANDS

__all__ = ["COMMANDS"]
