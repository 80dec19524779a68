"""The dead-letter stream: park a message a consumer can never process, list them, replay them."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
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


# Room kept below the server's max payload for the protocol line and anything we did not count.
_PAYLOAD_MARGIN = 512


async def park(js: JetStreamContext, msg: Msg, *, consumer: str, reason: str, deliveries: int | None = None,
               max_payload: int | None = None) -> None:
    """Copy the original message to the dead letters with its consumer and the reason."""
    meta = msg.metadata
    await park_raw(js, consumer=consumer, subject=msg.subject, stream=meta.stream, seq=meta.sequence.stream,
                   data=msg.data or b"", headers=msg.headers, reason=reason,
                   deliveries=deliveries if deliveries is not None else meta.num_delivered,
                   max_payload=max_payload)


def _header_safe(value: str, limit: int) -> str:
    # Header values are one line of printable text; a reason may quote hostile input.
    return "".join(ch if ch.isprintable() else " " for ch in value)[:limit]


def build(*, consumer: str, subject: str, stream: str, seq: int, data: bytes, headers: dict[str, str] | None,
          reason: str, deliveries: int, max_payload: int | None) -> tuple[bytes, dict[str, str]]:
    """The dead letter's body and headers. It always fits under the server's max payload: when the
    original (with its headers) does not, the body is left out and the letter carries a reference to
    the original (stream + sequence) and its sha256 digest instead."""
    original = {k: v for k, v in (headers or {}).items() if not k.startswith("PO-") and k != "Nats-Msg-Id"}
    out = {
        dl.H_SUBJECT: subject,
        dl.H_STREAM: stream,
        dl.H_SEQ: str(seq),
        dl.H_CONSUMER: consumer,
        dl.H_REASON: _header_safe(reason, 2000),
        dl.H_DELIVERIES: str(deliveries),
        dl.H_FAILED_AT: datetime.now(UTC).isoformat(),
        dl.H_SIZE: str(len(data)),
        dl.H_SHA256: hashlib.sha256(data).hexdigest(),
        # One dead letter per (consumer, stream message), however often this is retried.
        "Nats-Msg-Id": f"dl:{consumer}:{stream}:{seq}",
    }
    if max_payload is None:
        return data, {**original, **out}

    def size(hdrs: dict[str, str], body: bytes) -> int:
        return len(body) + sum(len(k) + len(v) + 4 for k, v in hdrs.items()) + 16

    budget = max_payload - _PAYLOAD_MARGIN
    if size({**original, **out}, data) <= budget:
        return data, {**original, **out}
    # Keep the original's headers if they fit without the body (they carry the trace context).
    kept = {**original, **out} if size({**original, **out}, b"") <= budget // 2 else dict(out)
    kept[dl.H_OMITTED] = f"body of {len(data)} bytes left out to fit the dead-letter stream; see {stream} seq {seq}"
    return b"", kept


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
    max_payload: int | None = None,
) -> None:
    body, hdrs = build(consumer=consumer, subject=subject, stream=stream, seq=seq, data=data, headers=headers,
                       reason=reason, deliveries=deliveries, max_payload=max_payload)
    await js.publish(dl.subject_for(consumer), body, headers=hdrs)


async def list_all(js: JetStreamContext, *, consumer: str | None = None, limit: int = 1000) -> list[DeadLetter]:
    try:
        info = await js.stream_info(dl.STREAM.name)
    except NotFoundError:
        return []
    out: list[DeadLetter] = []
    for subject in _subjects(consumer):
        # "Next message at or after seq on this subject" skips deleted (replayed) sequence numbers.
        seq = info.state.first_seq
        while seq and seq <= info.state.last_seq and len(out) < limit:
            try:
                raw = await js.get_msg(dl.STREAM.name, seq=seq, subject=subject, next=True)
            except NotFoundError:
                break
            out.append(_to_letter(raw.seq or seq, raw.headers or {}, raw.data or b""))
            seq = (raw.seq or seq) + 1
    return sorted(out, key=lambda d: d.seq)[:limit]


def _subjects(consumer: str | None) -> list[str]:
    """The subjects holding `consumer`'s letters: a consumer name (`commissions`) or one of its keys
    (`commissions__pipeline_opportunity_created_v1`, also under the subject used before the
    consumer token was added); None: all."""
    if not consumer:
        return [dl.STREAM.subjects[0]]
    if dl.consumer_of(consumer) == consumer:
        return [dl.subjects_of(consumer)]
    return [dl.subject_for(consumer), dl.legacy_subject_for(consumer)]


async def get(js: JetStreamContext, seq: int) -> DeadLetter:
    raw = await js.get_msg(dl.STREAM.name, seq=seq)
    return _to_letter(seq, raw.headers or {}, raw.data or b"")


async def replay(js: JetStreamContext, seq: int) -> DeadLetter:
    """Publish the original message again to its subject and remove the dead letter.

    Every consumer of that subject sees it again; those that already applied it skip it by their
    inbox. A fresh Nats-Msg-Id keeps the broker's duplicate window from swallowing the replay.

    What is published is the original as its stream holds it (body and headers), never the
    letter's copy: a dead letter is written by a consumer, not by the producer the server
    authenticated, so a letter naming a subject, stream or sequence that does not hold exactly
    the parked body (a forged letter, or one whose original was purged) is refused, not replayed
    with the operator's rights."""
    letter = await get(js, seq)
    original = await _original(js, seq, letter)
    headers = {k: v for k, v in (original.headers or {}).items() if not k.startswith("PO-") and k != "Nats-Msg-Id"}
    data = original.data or b""
    headers["Nats-Msg-Id"] = f"replay:{seq}:{uuid.uuid4()}"
    headers["PO-Replayed-From"] = str(seq)
    await js.publish(letter.subject, data, headers=headers)
    await js.delete_msg(dl.STREAM.name, seq)
    return letter


async def _original(js: JetStreamContext, seq: int, letter: DeadLetter) -> RawStreamMsg:
    stream, original_seq = letter.headers.get(dl.H_STREAM, ""), letter.headers.get(dl.H_SEQ, "")
    if not stream or not original_seq.isdigit() or stream == dl.STREAM.name:
        raise ValueError(f"dead letter {seq}: it names no original stream and sequence; not replayed")
    try:
        raw = await js.get_msg(stream, seq=int(original_seq))
    except NotFoundError:
        raise ValueError(f"dead letter {seq}: {stream} seq {original_seq} is gone; not replayed") from None
    if raw.subject != letter.subject or hashlib.sha256(raw.data or b"").hexdigest() != letter.headers.get(dl.H_SHA256):
        raise ValueError(f"dead letter {seq}: {stream} seq {original_seq} is not the message it names "
                         f"({letter.subject}); not replayed")
    return raw


async def replay_all(js: JetStreamContext, *, consumer: str | None = None, refused: list[str] | None = None) -> int:
    """Replay every letter (of `consumer`). A letter `replay` refuses is kept, and its reason added to
    `refused` when given (else the refusal is raised)."""
    count = 0
    for letter in await list_all(js, consumer=consumer, limit=1_000_000):
        try:
            await replay(js, letter.seq)
        except ValueError as exc:
            if refused is None:
                raise
            refused.append(str(exc))
            continue
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
