"""Chart geometry for the server-rendered SVG charts in templates/charts.html.

The maths lives here, as plain functions of the figures, so the templates only draw and the
geometry is tested without a browser. Every chart keeps its own figures beside the shapes so the
page can offer them as a table too (for screen readers and for people who would rather read).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

Number = int | float | Decimal


def nice_ceiling(value: Number) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^n) at or above `value`:
    a quarter of each is round too, so the four axis ticks read well."""
    v = float(value)
    if v <= 0:
        return 1.0
    exponent = math.floor(math.log10(v))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        candidate = step * 10**exponent
        if candidate >= v * (1 - 1e-9):
            return float(candidate)
    return float(10 ** (exponent + 1))


def _round_step(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))


def _ticks(top: float, count: int = 4) -> list[float]:
    """Evenly spaced ticks from 0 to `top` whose step is round (50K, not 62.5K; so no label reads
    $188K): the first of 4, 5, 3, 6 or 2 intervals that gives one, else `count`."""
    if top > 0:
        count = next((n for n in (count, 5, 3, 6, 2) if _round_step(top / n)), count)
    return [top * i / count for i in range(count + 1)]


@dataclass(frozen=True)
class Bar:
    label: str
    value: Number
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    value: float
    pos: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    baseline: float
    left: float

    @property
    def empty(self) -> bool:
        return not self.bars


def bars(items: Sequence[tuple[str, Number]], *, width: int = 480, height: int = 220) -> BarChart:
    """Vertical bars, one per (label, value), on a zero baseline with round ticks."""
    left, top, bottom, right = 56.0, 12.0, 36.0, 8.0
    plot_h = height - top - bottom
    peak = nice_ceiling(max((float(v) for _, v in items), default=0))
    if items and all(isinstance(v, int) for _, v in items) and peak % 4:
        # Counts: whole-number ticks (0, 1, 2, 3, 4 rather than 0, 0.75, 1.5 ...).
        peak = float(max(4, math.ceil(max(v for _, v in items) / 4) * 4))
    slot = (width - left - right) / max(len(items), 1)
    bar_w = min(56.0, slot * 0.62)
    out = []
    for i, (label, value) in enumerate(items):
        h = plot_h * max(float(value), 0.0) / peak
        x = left + slot * i + (slot - bar_w) / 2
        out.append(Bar(label=label, value=value, x=round(x, 1), y=round(top + plot_h - h, 1),
                       width=round(bar_w, 1), height=round(h, 1)))
    ticks = [Tick(value=t, pos=round(top + plot_h - plot_h * t / peak, 1)) for t in _ticks(peak)]
    return BarChart(width=width, height=height, bars=out, ticks=ticks, baseline=top + plot_h, left=left)


@dataclass(frozen=True)
class FunnelStage:
    label: str
    amount: Number
    weighted: Number
    count: int
    y: float
    x: float
    width: float
    weighted_x: float
    weighted_width: float


@dataclass(frozen=True)
class Funnel:
    width: int
    height: int
    row: float
    stages: list[FunnelStage]
    center: float
    label_width: float


def funnel(stages: Sequence[tuple[str, Number, Number, int]], *, width: int = 560) -> Funnel:
    """A stage funnel: each row's width is the stage's open amount, the darker inner band its
    weighted amount (amount x stage probability); rows are centred so the narrowing shows."""
    label_w, value_w, row = 150.0, 120.0, 34.0
    plot_w = width - label_w - value_w
    peak = max((float(a) for _, a, _, _ in stages), default=0.0) or 1.0
    center = label_w + plot_w / 2
    out = []
    for i, (label, amount, weighted, count) in enumerate(stages):
        w = max(plot_w * float(amount) / peak, 2.0 if float(amount) > 0 else 0.0)
        ww = plot_w * float(weighted) / peak
        out.append(FunnelStage(label=label, amount=amount, weighted=weighted, count=count, y=i * row + 4,
                               x=round(center - w / 2, 1), width=round(w, 1),
                               weighted_x=round(center - ww / 2, 1), weighted_width=round(ww, 1)))
    return Funnel(width=width, height=int(len(stages) * row + 8), row=row, stages=out, center=center,
                  label_width=label_w)


@dataclass(frozen=True)
class Bullet:
    width: int
    height: int
    closed: Number
    projected: Number
    target: Number
    closed_w: float
    projected_w: float
    target_x: float
    bands: list[tuple[float, float, str]]
    ticks: list[Tick]
    left: float

    @property
    def attainment(self) -> float:
        return float(self.closed) / float(self.target) if float(self.target) else 0.0

    @property
    def projected_attainment(self) -> float:
        return float(self.projected) / float(self.target) if float(self.target) else 0.0


def bullet(closed: Number, projected: Number, target: Number, *, width: int = 560) -> Bullet:
    """Closed-won as the bar, the projection as a lighter bar behind it, the target as a line;
    the background bands mark poor (<70 %), fair (70-100 %) and beyond target."""
    left, right = 8.0, 16.0
    plot_w = width - left - right
    top_value = nice_ceiling(max(float(target) * 1.2, float(projected), float(closed), 1.0))

    def scale(v: float) -> float:
        return plot_w * v / top_value

    t = float(target)
    bands = [(left, scale(min(0.7 * t, top_value)), "poor"),
             (left + scale(0.7 * t), scale(0.3 * t), "fair"),
             (left + scale(t), max(plot_w - scale(t), 0.0), "good")]
    ticks = [Tick(value=v, pos=round(left + scale(v), 1)) for v in _ticks(top_value)]
    return Bullet(width=width, height=70, closed=closed, projected=projected, target=target,
                  closed_w=round(scale(max(float(closed), 0.0)), 1),
                  projected_w=round(scale(max(float(projected), 0.0)), 1),
                  target_x=round(left + scale(t), 1), bands=[(round(x, 1), round(w, 1), c) for x, w, c in bands],
                  ticks=ticks, left=left)


@dataclass(frozen=True)
class TrendPoint:
    day: date
    value: Number
    x: float
    y: float


@dataclass(frozen=True)
class Trend:
    width: int
    height: int
    points: list[TrendPoint]
    path: str
    target_path: str
    ticks: list[Tick]
    x_labels: list[tuple[float, str]]
    left: float
    baseline: float
    right: float
    target: Number
    # Where the pace to the target stands on the last point's day (today): the value and its place on the
    # dashed line, so the chart reads "you should be here" beside "you are here".
    pace_today: Number = 0
    pace_x: float = 0.0
    pace_y: float = 0.0
    # The end of the dashed line (the target at the quarter's end), where its label sits.
    target_x: float = 0.0
    target_y: float = 0.0

    @property
    def behind_by(self) -> Number:
        """How far the last point is under the pace (negative: ahead of it)."""
        return Decimal(str(self.pace_today)) - Decimal(str(self.points[-1].value if self.points else 0))


def pace_at(day: date, *, start: date, end: date, target: Number) -> Decimal:
    """The target's straight-line pace on `day` (the dashed line where that day's point is drawn): nothing
    at the quarter's start, all of it at its end (`end` is the day after the quarter), to the cent."""
    days = max((end - start).days, 1)
    elapsed = min(max((day - start).days, 0), days)  # where the dashed line is at `day`'s point
    return (Decimal(str(target)) * elapsed / days).quantize(Decimal("0.01"))


def trend(points: Sequence[tuple[date, Number]], *, start: date, end: date, target: Number,
          width: int = 560, height: int = 200) -> Trend:
    """Cumulative closed-won over the quarter against a straight line from zero to the target,
    so "behind pace" shows as the line running under the dashed one."""
    left, top, bottom, right = 56.0, 10.0, 28.0, 12.0
    plot_w, plot_h = width - left - right, height - top - bottom
    days = max((end - start).days, 1)
    peak = nice_ceiling(max([float(target), *(float(v) for _, v in points)]) or 1.0)

    def xy(d: date, v: Number) -> tuple[float, float]:
        return (round(left + plot_w * min(max((d - start).days, 0), days) / days, 1),
                round(top + plot_h - plot_h * float(v) / peak, 1))

    out = [TrendPoint(day=d, value=v, x=xy(d, v)[0], y=xy(d, v)[1]) for d, v in points]
    path = " ".join(f"{'M' if i == 0 else 'L'}{p.x},{p.y}" for i, p in enumerate(out))
    (x0, y0), (x1, y1) = xy(start, 0), xy(end, target)
    month_starts = []
    d = date(start.year, start.month, 1)
    while d < end:
        if d >= start:
            month_starts.append((xy(d, 0)[0], d.strftime("%b")))
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    ticks = [Tick(value=t, pos=round(top + plot_h - plot_h * t / peak, 1)) for t in _ticks(peak)]
    today = out[-1].day if out else start
    pace = pace_at(today, start=start, end=end, target=target)
    pace_x, pace_y = xy(today, pace)
    return Trend(width=width, height=height, points=out, path=path, target_path=f"M{x0},{y0} L{x1},{y1}",
                 ticks=ticks, x_labels=month_starts, left=left, baseline=top + plot_h, right=width - right,
                 target=target, pace_today=pace, pace_x=pace_x, pace_y=pace_y, target_x=x1, target_y=y1)


@dataclass(frozen=True)
class Meter:
    """A horizontal 0-100 meter (win rate, relationship strength)."""

    value: float
    width: float = field(default=0.0)


def meter(fraction: float, *, width: int = 200) -> Meter:
    f = min(max(fraction, 0.0), 1.0)
    return Meter(value=f, width=round(width * f, 1))
