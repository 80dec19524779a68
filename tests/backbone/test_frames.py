"""Messages written as frames by runtime.bus (the relay's publishes, the consumers' acks) are the bytes
nats-py would have written, and what they cannot carry is refused before anything is written."""

from __future__ import annotations

import asyncio

import nats.errors
import pytest
from nats.aio.client import Client
from nats.protocol import command

from runtime import bus


def test_a_frame_with_headers_is_the_frame_nats_py_writes() -> None:
    headers = {" traceparent ": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=1\r\nb",
               " ": "skipped", "Nats-Msg-Id": "e1"}
    lines = bus.header_lines(headers)
    header = b"NATS/1.0\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n" \
             b"tracestate: a=1  b\r\nNats-Msg-Id: e1\r\n\r\n"
    assert bus.hpub_frame("a.b", "_INBOX.x.7", lines, b'{"k":1}') == \
        command.hpub_cmd("a.b", "_INBOX.x.7", header, b'{"k":1}')


def test_what_a_frame_cannot_carry_is_refused() -> None:
    with pytest.raises(nats.errors.BadHeaderError):
        bus.header_lines({"bad key": "x"})
    for subject in ("", "a b", "a.b\r\nPUB x 0"):
        with pytest.raises(nats.errors.BadSubjectError):
            bus.check_subject(subject)


async def test_frames_written_at_once_reach_a_subscriber_in_order(nc: Client) -> None:
    got: list[tuple[bytes, str | None]] = []
    done = asyncio.Event()

    async def on_msg(msg) -> None:
        got.append((msg.data, (msg.headers or {}).get("n")))
        if len(got) == 3:
            done.set()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_msg)
    await bus.write_frames(nc, [bus.hpub_frame(inbox, "r", bus.header_lines({"n": str(i)}), b"m%d" % i)
                                for i in range(3)])
    await asyncio.wait_for(done.wait(), 10)
    await sub.unsubscribe()
    assert got == [(b"m0", "0"), (b"m1", "1"), (b"m2", "2")]
