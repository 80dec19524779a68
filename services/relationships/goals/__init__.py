"""Hyperscaler goal commitments with progress counted from the service's copy of the pipeline."""

from services.relationships.goals.handlers import COMMANDS

__all__ = ["COMMANDS"]
