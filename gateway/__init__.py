"""The gateway: the only HTTP edge — auth, REST API, web UI and the KPI read models."""
