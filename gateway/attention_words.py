"""Why a line of the attention list ranks where it does, in words, from the figures the relationships
service ranked it by: "$95K at stake; strength 38, cold in 6 days; last touch 41 days ago"."""

from __future__ import annotations

from contracts import contacts as c
from gateway.web.formatting import money_short


def _days(n: int) -> str:
    return "1 day" if abs(n) == 1 else f"{abs(n)} days"


def reason(item: c.AttentionItem, currency: str) -> str:
    parts = [f"{money_short(item.value_at_stake, currency)} at stake" if item.value_at_stake > 0
             else "no open pipeline at stake"]
    if item.kind == c.ActionKind.touch:
        cold = item.days_until_cold
        if item.score is None or item.last_touch_days is None:
            parts.append("never touched")
        elif cold is None or cold < 0:
            parts.append(f"strength {item.score}, cold for {_days(cold or 0)}")
        elif cold == 0:
            parts.append(f"strength {item.score}, cold today")
        else:
            parts.append(f"strength {item.score}, cold in {_days(cold)}")
        if item.last_touch_days is not None:
            parts.append(f"last touch {_days(item.last_touch_days)} ago" if item.last_touch_days
                         else "last touch today")
        if item.crucial:
            parts.append("crucial")
    else:
        due = item.due_in_days or 0
        when = f"overdue by {_days(due)}" if due < 0 else ("due today" if due == 0 else f"due in {_days(due)}")
        parts.insert(0, f"{item.what} {when}")
    return "; ".join(parts)
