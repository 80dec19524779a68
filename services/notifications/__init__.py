"""The notifications service: alert rules and their delivery (its domain lands with its issue)."""
