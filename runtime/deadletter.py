"""The dead-letter stream: park a message a consumer can never process, list them, replay them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts import deadletters as dl


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    consumer: str
    subject: str
    reason: str
    deliveries: int
    failed_at: str
    headers: dict[str, str]
    data: bytes


async def park(js: JetStreamContext, msg: Msg, *, consumer: str, reason: str) -> None:
    """Copy the original message to the dead letters with its consumer and the reason."""
    meta = msg.metadata
    original = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("PO-")}
    headers = {
        **original,
        dl.H_SUBJECT: msg.subject,
        dl.H_STREAM: meta.stream,
        dl.H_SEQ: str(meta.sequence.stream),
        dl.H_CONSUMER: consumer,
        dl.H_REASON: reason[:2000].replace("\r", " ").replace("\n", " "),
        dl.H_DELIVERIES: str(meta.num_delivered),
        dl.H_FAILED_AT: datetime.now(UTC).isoformat(),
        # One dead letter per (consumer, stream message), however often this is retried.
        "Nats-Msg-Id": f"dl:{consumer}:{meta.stream}:{meta.sequence.stream}",
    }
    await js.publish(dl.subject_for(consumer), msg.data, headers=headers)


async def park_raw(
    js: JetStreamContext,
    *,
    consumer: str,
    subject: str,
    stream: str,
    seq: int,
    data: bytes,
    headers: dict[str, str] | None,
    reason: str,
    deliveries: int,
) -> None:
    original = {k: v for k, v in (headers or {}).items() if not k.startswith("PO-")}
    await js.publish(
        dl.subject_for(consumer),
        data,
        headers={
            **original,
            dl.H_SUBJECT: subject,
            dl.H_STREAM: stream,
            dl.H_SEQ: str(seq),
            dl.H_CONSUMER: consumer,
            dl.H_REASON: reason[:2000],
            dl.H_DELIVERIES: str(deliveries),
            dl.H_FAILED_AT: datetime.now(UTC).isoformat(),
            "Nats-Msg-Id": f"dl:{consumer}:{stream}:{seq}",
        },
    )


async def list_all(js: JetStreamContext, *, consumer: str | None = None, limit: int = 1000) -> list[DeadLetter]:
    try:
        info = await js.stream_info(dl.STREAM.name)
    except NotFoundError:
        return []
    out: list[DeadLetter] = []
    # "Next message at or after seq on this subject" skips deleted (replayed) sequence numbers.
    subject = dl.subject_for(consumer) if consumer else "deadletter.>"
    seq = info.state.first_seq
    while seq and seq <= info.state.last_seq and len(out) < limit:
        try:
            raw = await js.get_msg(dl.STREAM.name, seq=seq, subject=subject, next=True)
        except NotFoundError:
            break
        out.append(_to_letter(raw.seq or seq, raw.headers or {}, raw.data or b""))
        seq = (raw.seq or seq) + 1
    return out


async def get(js: JetStreamContext, seq: int) -> DeadLetter:
    raw = await js.get_msg(dl.STREAM.name, seq=seq)
    return _to_letter(seq, raw.headers or {}, raw.data or b"")


async def replay(js: JetStreamContext, seq: int) -> DeadLetter:
    """Publish the original message again to its subject and remove the dead letter.

    Every consumer of that subject sees it again; those that already applied it skip it by their
    inbox. A fresh Nats-Msg-Id keeps the broker's duplicate window from swallowing the replay."""
    letter = await get(js, seq)
    headers = {k: v for k, v in letter.headers.items() if not k.startswith("PO-") and k != "Nats-Msg-Id"}
    headers["Nats-Msg-Id"] = f"replay:{seq}:{uuid.uuid4()}"
    headers["PO-Replayed-From"] = str(seq)
    await js.publish(letter.subject, letter.data, headers=headers)
    await js.delete_msg(dl.STREAM.name, seq)
    return letter


async def replay_all(js: JetStreamContext, *, consumer: str | None = None) -> int:
    count = 0
    for letter in await list_all(js, consumer=consumer, limit=1_000_000):
        await replay(js, letter.seq)
        count += 1
    return count


def _to_letter(seq: int, headers: dict[str, str], data: bytes) -> DeadLetter:
    return DeadLetter(
        seq=seq,
        consumer=headers.get(dl.H_CONSUMER, "?"),
        subject=headers.get(dl.H_SUBJECT, "?"),
        reason=headers.get(dl.H_REASON, ""),
        deliveries=int(headers.get(dl.H_DELIVERIES, "0") or 0),
        failed_at=headers.get(dl.H_FAILED_AT, ""),
        headers=dict(headers),
        data=data,
    )
