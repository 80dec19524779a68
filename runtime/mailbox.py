"""A local mailbox: an SMTP server (aiosmtpd) that accepts every message and keeps it in a Maildir.

`partnerops up` runs it so a new installation sees its alerts and digests without a mail server (the
admin page /admin/mailbox lists them); tests run it as the real SMTP server the notifications service
talks to. It can be told to refuse the next N messages with a temporary error (451), to show that a
refused email is retried and delivered once.

    python -m runtime.mailbox --dir .data/mailbox --port 8025
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import mailbox
import signal
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger(__name__)

# A message larger than this is refused (552): a digest with its charts is well below.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class Sink:
    """The aiosmtpd handler: every accepted message goes to the Maildir (or the in-memory list)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.box: mailbox.Maildir | None = None
        if directory is not None:
            for sub in ("tmp", "new", "cur"):  # Maildir(create=True) skips them when the directory exists
                (directory / sub).mkdir(parents=True, exist_ok=True)
            self.box = mailbox.Maildir(directory, create=False)
        self.messages: list[EmailMessage] = []
        self.refuse_next = 0
        self.refused = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused += 1
            return "451 4.3.0 Mailbox busy, try again later"
        data = envelope.original_content or b""
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.box is not None:
            self.box.add(data)
        return "250 2.0.0 Message accepted"


class LocalMailbox:
    """The sink on a port of 127.0.0.1, in the running event loop."""

    def __init__(self, directory: Path | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sink = Sink(directory)
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def start(self) -> LocalMailbox:
        # Imported here, not at the top: the gateway imports this module only to `read` the Maildir, and
        # aiosmtpd (with attrs) was a quarter of a second of every gateway process's start.
        from aiosmtpd.smtp import SMTP

        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            return SMTP(self.sink, data_size_limit=MAX_MESSAGE_BYTES, hostname="partnerops-mailbox",
                        ident="PartnerOps local mailbox")

        self._server = await loop.create_server(factory, host=self.host, port=self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def read(directory: Path, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest messages of a Maildir, for the admin page: headers, the text part and the HTML part."""
    if not directory.is_dir():
        return []
    box = mailbox.Maildir(directory, create=False)
    found = []
    for key in box.iterkeys():
        path = directory / ("new" if (directory / "new" / key).exists() else "cur") / key
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        found.append((mtime, key))
    out = []
    for mtime, key in sorted(found, reverse=True)[:limit]:
        raw = box.get_bytes(key)
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        out.append({"key": key, "received": mtime, "from": str(msg["From"] or ""), "to": str(msg["To"] or ""),
                    "subject": str(msg["Subject"] or ""), "text": text.get_content() if text else "",
                    "html": html.get_content() if html else "", "size": len(raw)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    async def run() -> None:
        box = await LocalMailbox(args.dir, host=args.host, port=args.port).start()
        logger.info("local mailbox listening on %s, keeping mail in %s", box.url, args.dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await box.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
