"""The commissions service: agreements, the commission ledger and statements (its domain lands with the commissions issue)."""
