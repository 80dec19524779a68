"""The dead-letter stream every consumer feeds with messages it can never process."""

from contracts.base import StreamSpec

STREAM = StreamSpec(
    name="DEADLETTERS",
    subjects=("deadletter.>",),
    description="Messages a consumer gave up on: the original body and headers, the consumer and why.",
)

# Header names on a dead letter; the original message's own headers are kept beside them.
H_SUBJECT = "PO-Original-Subject"
H_STREAM = "PO-Original-Stream"
H_SEQ = "PO-Original-Seq"
H_CONSUMER = "PO-Consumer"
H_REASON = "PO-Reason"
H_DELIVERIES = "PO-Deliveries"
H_FAILED_AT = "PO-Failed-At"
H_SIZE = "PO-Original-Size"
H_SHA256 = "PO-Original-Sha256"
# Set when the original body was too large to keep beside the headers: replay reads it from its stream.
H_OMITTED = "PO-Body-Omitted"


def consumer_of(key: str) -> str:
    """The consumer a dead-letter key belongs to: a subscription's inbox key is
    `<consumer>__<subject>` and a durable's `<consumer>__<stream>` (runtime/inbox.py)."""
    return key.split("__", 1)[0]


def subject_for(key: str) -> str:
    """Where the dead letters of `key` (an inbox key or a durable) are parked:
    `deadletter.<consumer>.<key>`. The consumer's own token lets the NATS server confine each
    component to its own consumers' letters (runtime/bus_auth.py)."""
    return f"deadletter.{consumer_of(key)}.{key}"


def subjects_of(consumer: str) -> str:
    """Every dead letter of one consumer (all its keys)."""
    return f"deadletter.{consumer}.>"


def legacy_subject_for(key: str) -> str:
    """Where letters were parked before the consumer token was added; still listed and replayed."""
    return f"deadletter.{key}"
