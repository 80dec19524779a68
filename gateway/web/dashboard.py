"""The department dashboard, the VP's landing page. Every figure comes from the gateway's read
models; a figure whose source has not landed yet shows an empty state, never a made-up number."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.read_models import partners as partner_models
from gateway.state import sessions
from gateway.web.common import Viewer, render
from gateway.web.formatting import quarter_bounds, quarter_label, quarter_of

router = APIRouter(include_in_schema=False)


@dataclass
class Attainment:
    currency: str
    target: Decimal
    closed: Decimal
    projected: Decimal
    weighted_open: Decimal
    at_risk: bool
    start: date
    end: date
    trend: list[tuple[date, Decimal]] | None = None

    @property
    def attainment(self) -> float:
        return float(self.closed / self.target) if self.target else 0.0

    @property
    def projected_attainment(self) -> float:
        return float(self.projected / self.target) if self.target else 0.0


@dataclass
class Mover:
    id: str
    name: str
    from_stage: str
    to_stage: str
    amount: Decimal
    currency: str


@dataclass
class Dashboard:
    quarter_label: str
    days_left: int | None
    currency: str = "USD"
    pipeline_ready: bool = False
    attainment: Attainment | None = None
    stages: list[tuple[str, Decimal, Decimal, int]] | None = None
    arr_by_type: list[tuple[str, Decimal]] | None = None
    launches: list[tuple[str, int]] | None = None
    win_rate: float | None = None
    won_count: int = 0
    lost_count: int = 0
    cycle_days: float | None = None
    movers: list[Mover] | None = None
    partners_by_type: list[tuple[str, int]] = field(default_factory=list)
    partners_total: int = 0
    commissions: list[object] | None = None
    relationships: list[tuple[str, int]] | None = None


async def load(request: Request, today: date | None = None) -> Dashboard:
    today = today or datetime.now(UTC).date()
    year, q = quarter_of(today)
    _, end = quarter_bounds(year, q)
    d = Dashboard(quarter_label=quarter_label(year, q), days_left=(end - today).days)
    async with sessions(request)() as session:
        counts = await partner_models.partner_counts(session)
    d.partners_by_type = [(t, n) for t, n in counts.items() if n]
    d.partners_total = sum(counts.values())
    return d


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, _: Viewer) -> Response:
    return render(request, "dashboard.html", {"d": await load(request)})
