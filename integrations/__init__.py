"""Sync workers: outside users of the bus that bring external systems' opportunities in (and send ours
out) with their own credentials. Each imports `contracts` and `runtime` only, like a service."""
