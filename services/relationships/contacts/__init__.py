"""Contacts at partner organisations, interactions with them, relationship strength, value at stake,
the cooling alert and the ranked attention list (docs/contacts.md)."""
