"""The AsyncAPI document of the event contracts, so a producer written elsewhere can publish to them."""

from __future__ import annotations

from functools import cache
from typing import Any

from contracts.registry import EVENTS, STREAMS


@cache
def document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for event in EVENTS:
        name = event.__name__
        schema = event.model_json_schema(ref_template="#/components/schemas/{model}")
        for sub_name, sub in schema.pop("$defs", {}).items():
            schemas[sub_name] = sub
        schemas[name] = schema
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (event.__doc__ or "").strip(),
            "contentType": "application/json",
            "headers": {"type": "object", "properties": {
                "Nats-Msg-Id": {"type": "string", "description": "= event_id; broker-side de-duplication"},
                "traceparent": {"type": "string", "description": "W3C trace context"},
            }},
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        channel_id = event.subject.replace(".", "_")
        channels[channel_id] = {
            "address": event.subject,
            "description": f"JetStream stream {event.stream.name}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": (event.__doc__ or "").strip(),
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "PartnerOps events",
            "version": "0.1.0",
            "description": "Facts the services publish on NATS JetStream. Every event carries event_id, "
            "occurred_at (UTC), correlation_id and schema_version. Streams: "
            + ", ".join(f"{s.name} ({', '.join(s.subjects)})" for s in STREAMS),
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "localhost:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
