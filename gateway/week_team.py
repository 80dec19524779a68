"""What the gateway adds to the team's week: who the team is (its active members are the attendees), the
team's time zone until an admin sets one (the VP's: the first admin's), and the meeting's minutes as
Markdown."""

from __future__ import annotations

from collections import defaultdict

from fastapi import Request
from sqlalchemy import select

from contracts import week as w
from gateway import people
from gateway.auth import Role
from gateway.models import User
from gateway.state import bus, sessions
from runtime.commands import send

TEAM_ROLES = (Role.admin.value, Role.manager.value, Role.member.value)
STATUS_LABELS = {"on_track": "on track", "at_risk": "at risk", "blocked": "blocked", "done": "done"}


async def team(request: Request) -> tuple[list[w.Attendee], str]:
    """The active members (viewers do not attend) and the VP's time zone."""
    async with sessions(request)() as session:
        rows = (await session.execute(
            select(User.id, User.name, User.role, User.time_zone).where(User.active, User.role.in_(TEAM_ROLES))
            .order_by(User.created_at, User.id))).all()
    admins = [r for r in rows if r.role == Role.admin.value]
    vp_zone = admins[0].time_zone if admins else "UTC"
    return [w.Attendee(user_id=str(r.id), name=r.name[:200]) for r in rows], vp_zone or "UTC"


async def open_current_week(request: Request, actor: str) -> w.Meeting:
    """This week's meeting, made on first use (idempotent in the service), with today's team as attendees."""
    attendees, zone = await team(request)
    return await send(bus(request), w.OpenWeek(default_time_zone=zone, attendees=attendees, actor=actor))


def said_something(line: w.UpdateLine) -> bool:
    """A line the member filled in (a pre-filled line left as it was tells the meeting nothing new)."""
    return bool(line.status or line.note or line.next_step or line.kind == w.LineKind.free)


def _md(text: str) -> str:
    """One line of Markdown that cannot break the document's structure (no headings, tables, HTML)."""
    flat = " ".join(text.split())
    for char in "\\`*_[]<>#|":
        flat = flat.replace(char, "\\" + char)
    return flat


def minutes_markdown(request: Request | None, view: w.MeetingView) -> str:
    m = view.meeting
    name = (lambda owner: people.name_for(request, owner)) if request is not None else (lambda owner: owner or "")
    out = [f"# Team meeting — week of {m.week.isoformat()}", "",
           f"Time zone {m.time_zone}; status {m.status.value}"
           + (f", closed {m.closed_at:%Y-%m-%d %H:%M} UTC" if m.closed_at else ""), ""]
    submitted = [u for u in view.updates if u.status == w.UpdateStatus.submitted]
    out += [f"## Updates ({len(submitted)} of {len(view.updates)} submitted)", ""]
    for u in view.updates:
        state = "not started" if u.status is None else u.status.value
        if u.status == w.UpdateStatus.submitted:
            state += " on time" if u.on_time else " late"
        out += [f"### {_md(u.name)} — {state}", ""]
        groups: dict[str, list[w.UpdateLine]] = defaultdict(list)
        for ln in filter(said_something, u.lines):
            groups[ln.partner_name or "Other"].append(ln)
        for partner, lines in groups.items():
            out.append(f"- **{_md(partner)}**")
            for ln in lines:
                status = STATUS_LABELS.get(ln.status.value, "") if ln.status else "no status"
                text = f"  - {_md(ln.label or ln.key)} — {status}"
                if ln.note:
                    text += f": {_md(ln.note)}"
                if ln.next_step:
                    text += f" → next: {_md(ln.next_step)}" + (f" (due {ln.next_step_due})" if ln.next_step_due else "")
                out.append(text)
        if u.anything_else:
            out.append(f"- Anything else: {_md(u.anything_else)}")
        out.append("")
    out += ["## What changed since last week", ""]
    out += [f"- {c.kind}: {_md(c.name)}" + (f" ({_md(c.partner_name)})" if c.partner_name else "")
            + (f", {_md(c.from_stage or '')} → {_md(c.to_stage or '')}" if c.kind == "moved" else "")
            + f", {c.amount} {c.currency}" for c in view.changes] or ["- No deal was created, moved, won or lost."]
    out += ["", "## Decisions", ""]
    out += [f"- {_md(d.text)} ({_md(name(d.recorded_by))})" for d in m.decisions] or ["- None recorded."]
    out += ["", "## Tasks", ""]
    for title, tasks in (("New", view.tasks_new), ("Carried", view.tasks_carried), ("Overdue", view.tasks_overdue),
                         ("Done", view.tasks_done)):
        out.append(f"### {title} ({len(tasks)})")
        out += [f"- {_md(t.title)} — {_md(name(t.owner))}, due {t.due_date}"
                + (f", carried {t.carried} times" if t.carried else "")
                + (" **(flagged)**" if t.carried >= view.carried_flag_at else "") for t in tasks] or ["- None."]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
