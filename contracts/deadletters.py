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


def subject_for(consumer: str) -> str:
    return f"deadletter.{consumer}"
