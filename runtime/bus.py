"""NATS connection and JetStream stream setup, and the one FastStream broker of a process."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import nats
from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from contracts.base import StreamSpec
from runtime import bus_auth
from runtime.settings import get_settings

logger = logging.getLogger(__name__)

# Broker-side de-duplication by Nats-Msg-Id holds for this long; the inboxes cover anything older.
DUPLICATE_WINDOW_SECONDS = 120.0


def redact(url: str) -> str:
    """The URL (or comma-separated URLs) with any password replaced by `***`: the only form of a
    server URL that may be logged or shown."""
    out = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if "@" not in parts.netloc:
            out.append(one.strip())
            continue
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        out.append(urlunsplit((parts.scheme, f"{user}:***@{host}" if user else f"***@{host}",
                               parts.path, parts.query, parts.fragment)))
    return ",".join(out)


def servers(url: str) -> list[str]:
    """The server URLs in `url`, which may list several (a cluster: `nats://u:p@a:4222,nats://u:p@b:4222`).
    nats-py takes a list; given the comma-separated string whole, it would try one mangled address."""
    return [one.strip() for one in url.split(",") if one.strip()]


def inbox_prefix(url: str) -> str:
    """The reply-subject prefix of a connection to `url`: `_INBOX_<user>` for the NATS user in it.
    The server lets each user subscribe only to its own prefix (runtime/bus_auth.py), so replies to
    one component's requests (command answers, JetStream acks, pulled messages) cannot be read by
    another. Every connection of ours takes its prefix from here."""
    user = urlsplit(url.split(",")[0].strip()).username
    return bus_auth.inbox_prefix(unquote(user)) if user else bus_auth.DEFAULT_INBOX


def _callbacks(url: str, name: str, client: list[NATS] | None = None) -> dict[str, Callable[..., Awaitable[None]]]:
    """error_cb and disconnected_cb for nats-py. nats-py retries a refused login forever when
    reconnecting is on; the error callback raising ends the first connect instead, with a clear
    message. Once connected (a disconnect has been seen), a refusal (say, a rotated password) is only
    logged and the client keeps trying, as for any other outage. `client`, once it holds the connection,
    tells a deliberate close (silent: the supervisor closing its set-up connection mid-start read as a
    failure) from an outage."""
    was_connected = False

    async def on_error(exc: Exception) -> None:
        if not was_connected and _refused(exc):
            raise PermissionError(f"NATS at {redact(url)} refused the login of {name!r}: {exc}")
        await _log_error(exc)

    async def on_disconnected() -> None:
        nonlocal was_connected
        was_connected = True
        if client and client[0].is_closed:
            return
        logger.info("%s: disconnected from NATS", name)

    return {"error_cb": on_error, "disconnected_cb": on_disconnected}


def _refused(exc: Exception) -> bool:
    text = str(exc).lower()
    return isinstance(exc, nats.errors.AuthorizationError) or "authorization violation" in text


async def connect(url: str, name: str, *, attempts: int = 60) -> NATS:
    """Connect, retrying while the server comes up; once connected, reconnect forever. A refused
    login (wrong or missing credentials) raises PermissionError at once: it will not get better."""
    delay = 0.2
    client: list[NATS] = []
    for attempt in range(1, attempts + 1):
        try:
            nc = await nats.connect(
                servers(url),
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=2,
                inbox_prefix=inbox_prefix(url),
                reconnected_cb=_log_event(f"{name}: reconnected to NATS"),
                **_callbacks(url, name, client),
            )
            client.append(nc)
            return nc
        except (OSError, nats.errors.NoServersError, TimeoutError) as exc:
            if attempt == attempts:
                raise
            logger.info("waiting for NATS at %s (%s)", redact(url), exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def broker(url: str, name: str, *, on_closed: Callable[[], Awaitable[None]] | None = None) -> NatsBroker:
    """The process's FastStream broker: reconnects forever; `on_closed` runs if the connection is
    closed for good (the process should then exit so its supervisor restarts it)."""

    async def closed() -> None:
        # Also called when we close the connection ourselves on the way out: the callback decides.
        if on_closed is not None:
            await on_closed()

    # FastStream's supervisor logs "callback for Task-N is being executed" at INFO for every task it ends.
    logging.getLogger("faststream.access").setLevel(logging.WARNING)
    return NatsBroker(
        servers(url), name=name, allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,  # type: ignore[arg-type]
        connect_timeout=2, inbox_prefix=inbox_prefix(url),
        reconnected_cb=_log_event(f"{name}: reconnected to NATS"), closed_cb=closed,
        **_callbacks(url, name),  # type: ignore[arg-type]
        # FastStream logs every message at INFO by default; the consumers log what matters themselves.
        log_level=logging.DEBUG, graceful_timeout=10.0,
    )


async def raw_body(message: Any) -> None:
    """A FastStream decoder that decodes nothing. FastStream's default decoder runs `json.loads` on every
    body before the handler sees it (a deep body raises RecursionError there, outside our handling); our
    handlers read `message.raw_message` and check the bounds before decoding anything themselves."""
    return None


def url_of(nc: NATS) -> str:
    """The URL (with its credentials) a client is connected to, for a second connection. Never log it."""
    return nc._current_server.uri.geturl()  # type: ignore[union-attr]


async def connect_broker(b: NatsBroker, *, attempts: int = 60) -> NATS:
    """Connect the broker, retrying while the server comes up (FastStream tries once)."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            return await b.connect()
        except (OSError, nats.errors.NoServersError, TimeoutError) as exc:
            if attempt == attempts:
                raise
            logger.info("waiting for NATS (%s)", exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


async def _log_error(exc: Exception) -> None:
    logger.warning("nats: %s", exc)


def _log_event(text: str):  # type: ignore[no-untyped-def]
    async def cb() -> None:
        logger.info(text)

    return cb


def stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    # Limits retention with no age limit: the event history is kept so read models can be rebuilt.
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        description=spec.description or None,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
        allow_msg_schedules=True if spec.schedules else None,
    )


async def ensure_streams(js: JetStreamContext, specs: tuple[StreamSpec, ...] | list[StreamSpec], *,
                         replicas: int | None = None) -> None:
    if replicas is None:
        replicas = get_settings().bus_stream_replicas
    for spec in specs:
        config = stream_config(spec, replicas)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except Exception:
                # Another process created it in between; that is the same stream.
                await js.stream_info(spec.name)
            continue
        if sorted(info.config.subjects or []) != sorted(spec.subjects) or (info.config.num_replicas or 1) != replicas \
                or bool(info.config.allow_msg_schedules) != spec.schedules:
            await js.update_stream(config)


# ------------------------------------------------------------------------ many messages, one write
# nats-py sends each message through `Client.publish` (and each ack through `Msg.ack`, a publish): the
# subject validated, headers checked and encoded, a frame formatted and a flush requested, per message.
# For a relay window or a batch's acks that per-message work was a tenth of the backbone's CPU
# (docs/benchmarks.md, issue 8 backbone10). Here the frames are made here and handed to the connection as
# one write, through the same buffer `publish` uses (so they wait for a reconnection the same way).

_SUBJECT_RE = re.compile(r"[^\s]+")
_HEADER_KEY_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # nats-py's, an RFC 7230 token
_NO_NEWLINES = str.maketrans({"\r": " ", "\n": " "})


def check_subject(subject: str) -> str:
    """The subject, if it can be written into a frame as it is (not empty, no whitespace)."""
    if not _SUBJECT_RE.fullmatch(subject):
        raise nats.errors.BadSubjectError
    return subject


def header_lines(headers: Mapping[str, str]) -> bytes:
    """Headers as the lines of a frame's header block, as nats-py writes them (keys and values stripped, an
    empty key skipped, a line break in a value made a space); BadHeaderError for a key that is not a token."""
    out = bytearray()
    for k, v in headers.items():
        key = k.strip()
        if not key:
            continue
        if not _HEADER_KEY_RE.fullmatch(key):
            raise nats.errors.BadHeaderError(key)
        out += b"%s: %s\r\n" % (key.encode(), v.strip().translate(_NO_NEWLINES).encode())
    return bytes(out)


def hpub_frame(subject: str, reply: str, lines: bytes, payload: bytes) -> bytes:
    """A message with headers (`lines`, from `header_lines`) as the HPUB frame nats-py would write; the
    subjects must have passed `check_subject`."""
    header = b"NATS/1.0\r\n" + lines + b"\r\n"
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (subject.encode(), reply.encode(), len(header),
                                                len(header) + len(payload), header, payload)


async def write_frames(nc: NATS, frames: Sequence[bytes]) -> None:
    """Hand `frames` (one message each) to the connection as one write; raises, having written none, what
    `publish` raises for a closed or draining connection or a full reconnection buffer."""
    if not frames:
        return
    if nc.is_closed:
        raise nats.errors.ConnectionClosedError
    if nc.is_draining_pubs:
        raise nats.errors.ConnectionDrainingError
    data = b"".join(frames)
    if not nc.is_connected and (nc._max_pending_size <= 0
                                or len(data) + nc._pending_data_size > nc._max_pending_size):
        raise nats.errors.OutboundBufferLimitError
    nc.stats["out_msgs"] += len(frames)
    await nc._send_command(data)
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()


async def ack_all(msgs: Sequence[Msg]) -> None:
    """`msg.ack()` for each JetStream message not answered yet, in order, as one write."""
    todo = [m for m in msgs if m.reply and not m._ackd]
    if not todo:
        return
    await write_frames(todo[0]._client, [b"PUB %s 0\r\n\r\n" % check_subject(m.reply).encode() for m in todo])
    for m in todo:
        m._ackd = True
