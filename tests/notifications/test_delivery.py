"""Email delivery against a real SMTP server: a server that refuses and then accepts gets the email
once, with the attempts visible; one that never accepts leaves a failed email with its last error that
an admin can retry; two service processes send each alert's email once."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contracts import notifications as n
from runtime.commands import send
from runtime.errors import CommandFailed
from runtime.mailbox import LocalMailbox
from runtime.service import shutdown, start
from runtime.testing import eventually
from services.notifications.handlers import definition
from tests.notifications.conftest import (
    ADMIN,
    deliveries,
    feed,
    mails_about,
    publish,
    settings_for,
    settled,
    won,
)


async def _delivery(nc, text: str, status: n.DeliveryStatus | None = None) -> n.Delivery | None:
    found = [d for d in await deliveries(nc) if text in d.subject and d.to == "vp@example.test"]
    if found and (status is None or found[0].status == status):
        return found[0]
    return None


class TestRefusedThenAccepted:
    async def test_delivered_once_after_two_refusals(self, service, bus_client, mailbox):
        mailbox.sink.refuse_next = 2
        refused_before = mailbox.sink.refused
        tag = f"Refused {uuid.uuid4().hex[:6]}"
        await publish(bus_client, won(uuid.uuid4(), "60000.00", owner=None, customer=tag))
        await settled(bus_client, service)
        # The VP and the manager each get one; the two refusals fell on one or both of them.
        sent = await eventually(lambda: _all_sent(bus_client, tag), "every copy sent")
        assert mailbox.sink.refused - refused_before == 2
        assert sum(d.attempts for d in sent) == len(sent) + 2
        assert all(d.last_error is None and d.sent_at is not None for d in sent)
        got = mails_about(mailbox, tag)
        assert sorted(str(m["To"]) for m in got) == ["manager@example.test", "vp@example.test"]


async def _all_sent(nc, tag):
    mine = [d for d in await deliveries(nc) if tag in d.subject]
    return mine if mine and all(d.status == n.DeliveryStatus.sent for d in mine) else None


class TestNeverAccepted:
    async def test_failed_with_its_error_then_retried_by_an_admin_and_sent_once(self, service, bus_client, mailbox):
        mailbox.sink.refuse_next = 10_000
        try:
            tag = f"Busy {uuid.uuid4().hex[:6]}"
            await publish(bus_client, won(uuid.uuid4(), "61000.00", owner=None, customer=tag))
            await settled(bus_client, service)
            failed = await eventually(lambda: _delivery(bus_client, tag, n.DeliveryStatus.failed), "marked failed")
            assert failed.attempts == 4  # SMTP_MAX_ATTEMPTS in these tests
            assert "451" in (failed.last_error or "")
            listed = await send(bus_client, n.ListDeliveries(status=n.DeliveryStatus.failed, limit=200))
            assert failed.id in [d.id for d in listed.items]
        finally:
            mailbox.sink.refuse_next = 0
        assert not [m for m in mails_about(mailbox, tag) if str(m["To"]) == "vp@example.test"]
        retried = await send(bus_client, n.RetryDelivery(delivery_id=failed.id))
        assert retried.status == n.DeliveryStatus.pending
        sent = await eventually(lambda: _delivery(bus_client, tag, n.DeliveryStatus.sent), "sent after the retry")
        assert sent.attempts == 5
        assert [str(m["To"]) for m in mails_about(mailbox, tag)].count("vp@example.test") == 1
        with pytest.raises(CommandFailed) as err:
            await send(bus_client, n.RetryDelivery(delivery_id=failed.id))
        assert err.value.error.kind == "conflict"

    async def test_retry_of_an_unknown_delivery_is_not_found(self, service, bus_client):
        with pytest.raises(CommandFailed) as err:
            await send(bus_client, n.RetryDelivery(delivery_id=uuid.uuid4()))
        assert err.value.error.kind == "not_found"


async def _settled_delivery(nc, tag):
    d = await _delivery(nc, tag)
    return d if d is not None and d.status != n.DeliveryStatus.pending else None


class TestTwoProcesses:
    async def test_each_alert_and_email_once_with_two_service_processes(self, private_db, private_bus, service,
                                                                      bus_client, mailbox):
        stop = asyncio.Event()
        second = await start(definition, settings_for(private_db, private_bus, mailbox.url), stop)
        try:
            tags = [f"Twice {uuid.uuid4().hex[:6]}" for _ in range(12)]
            events = [won(uuid.uuid4(), "75000.00", owner=None, customer=t) for t in tags]
            for e in events:
                await publish(bus_client, e)
                await publish(bus_client, e)
            await settled(bus_client, service)
            alerts = [a for a in (await feed(bus_client, ADMIN)).items if any(t in a.title for t in tags)]
            assert len(alerts) == len(tags)
            await eventually(lambda: _all_sent_many(bus_client, tags), "every email sent")
            for t in tags:
                assert sorted(str(m["To"]) for m in mails_about(mailbox, t)) == ["manager@example.test",
                                                                                  "vp@example.test"], t
            # Both processes took part (the consumer is shared): not a test of one process alone.
            assert second.consumers[0].stats.applied + service.consumers[0].stats.applied > 0
        finally:
            stop.set()
            await shutdown(second)


async def _all_sent_many(nc, tags):
    mine = [d for d in await deliveries(nc) if any(t in d.subject for t in tags)]
    return len(mine) == 2 * len(tags) and all(d.status == n.DeliveryStatus.sent for d in mine)


async def test_a_local_mailbox_keeps_mail_in_a_maildir(tmp_path):
    import aiosmtplib

    from runtime.mailbox import read

    box = await LocalMailbox(tmp_path / "mail").start()
    try:
        await aiosmtplib.send("Subject: hello\r\nFrom: a@x.test\r\nTo: b@x.test\r\n\r\nbody\r\n",
                              sender="a@x.test", recipients=["b@x.test"], hostname=box.host, port=box.port)
    finally:
        await box.stop()
    kept = read(tmp_path / "mail")
    assert [(m["subject"], m["text"].strip()) for m in kept] == [("hello", "body")]
