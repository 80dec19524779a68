"""The commissions service: agreements, the commission ledger and statements."""
