"""The AsyncAPI document lists every event contract with its subject and payload schema."""

from contracts.registry import EVENTS
from gateway.asyncapi import document


def test_every_event_is_documented_with_subject_and_schema():
    doc = document()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    for event in EVENTS:
        assert event.subject in addresses
        schema = doc["components"]["schemas"][event.__name__]
        assert {"event_id", "occurred_at", "schema_version"} <= set(schema["properties"])
