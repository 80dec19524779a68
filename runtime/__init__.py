"""What every service runs on: settings, database, bus, outbox, inbox, telemetry, the embedded servers."""
