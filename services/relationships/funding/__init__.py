"""Funding programs and fund requests on AWS Partner Central's stages, with the deadlines that cost money."""

from services.relationships.funding.handlers import COMMANDS

__all__ = ["COMMANDS"]
