"""Competencies with renewal dates and requirement checklists; renewals and items are deadlines."""

from services.relationships.competencies.handlers import COMMANDS

__all__ = ["COMMANDS"]
