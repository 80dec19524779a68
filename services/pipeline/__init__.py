"""The pipeline service: partners and opportunities."""
