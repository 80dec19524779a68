"""What the notifications service answers on the bus. For now: its schema, outbox relay and health check."""

from runtime.service import ServiceDefinition

definition = ServiceDefinition(name="notifications")
