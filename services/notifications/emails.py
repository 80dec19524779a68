"""Emails rendered from templates (HTML and plain text), when an alert or digest is decided. Links are
absolute (PUBLIC_URL); images are inline parts (cid:), never fetched from elsewhere."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from runtime.formatting import day, when
from services.notifications.domain import Fired, Recipient
from services.notifications.rules import Rule

_env = Environment(loader=PackageLoader("services.notifications", "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
_env.filters.update(day=day, when=when)


class Links:
    """Where the links in emails point (set from the PUBLIC_URL setting when the service starts)."""

    base = "http://127.0.0.1:8000"


def configure(public_url: str) -> None:
    Links.base = public_url.rstrip("/")


def _one_line(value: str, limit: int = 200) -> str:
    # A subject is a header: no line breaks may reach it, whatever a deal's name holds.
    return " ".join(value.split())[:limit]


def alert_email(rule: Rule, verdict: Fired, person: Recipient) -> dict[str, Any]:
    ctx = {"rule": rule, "alert": verdict, "person": person, "url": Links.base + verdict.link,
           "feed": Links.base + "/alerts", "preferences": Links.base + "/alerts/preferences"}
    return {"subject": _one_line(f"[PartnerOps] {verdict.title}"),
            "body_text": _env.get_template("alert.txt").render(ctx),
            "body_html": _env.get_template("alert.html").render(ctx), "images": {}}


def digest_email(content: dict[str, Any], person: Recipient, week: str) -> dict[str, Any]:
    ctx = {**content, "person": person, "week": week, "base": Links.base, "tz": person.time_zone,
           "preferences": Links.base + "/alerts/preferences"}
    return {"subject": _one_line(f"[PartnerOps] Your week {week}: where the team's time goes"),
            "body_text": _env.get_template("digest.txt").render(ctx),
            "body_html": _env.get_template("digest.html").render(ctx), "images": content["images"]}
