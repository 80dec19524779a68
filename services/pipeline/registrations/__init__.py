"""Deal registration: partners register deals, their owners decide (contracts/registrations.py)."""
