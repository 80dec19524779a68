"""Geometry of the relationship charts (templates/relationship_charts.html draws them): the heatmap of
strength against value at stake, and a contact's strength over the year. Plain functions of the
figures, tested without a browser, like gateway/web/charts.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from contracts import contacts as c

ROW_H = 30
LABEL_W = 200
VALUE_W = 90
MIN_CELL = 10.0
MAX_CELL = 56.0


def heat_class(score: int, band: c.Band) -> str:
    """heat-none for never touched, else heat-0 (0-19) ... heat-4 (80-100)."""
    return "heat-none" if band == c.Band.none else f"heat-{min(score // 20, 4)}"


@dataclass(frozen=True)
class Cell:
    x: float
    width: float
    cell: c.HeatCell
    css: str


@dataclass(frozen=True)
class MapRow:
    y: float
    row: c.HeatRow
    cells: list[Cell]
    more: int


@dataclass(frozen=True)
class HeatmapGeometry:
    width: int
    height: int
    rows: list[MapRow]
    label_w: int = LABEL_W
    value_w: int = VALUE_W

    @property
    def empty(self) -> bool:
        return not self.rows


def heatmap(data: c.Heatmap, *, width: int = 1100) -> HeatmapGeometry:
    """A row per group (largest value at stake first); in each, a cell per contact, ordered by value
    at stake, its width growing with the square root of it (so $1M is not 100 times $10K wide), its
    colour the strength band. A row wider than the plot is scaled down to fit."""
    plot_w = width - LABEL_W - VALUE_W
    top = max((float(cell.value_at_stake) for r in data.rows for cell in r.cells), default=0.0)
    rows: list[MapRow] = []
    for i, r in enumerate(data.rows):
        widths = [MIN_CELL + (MAX_CELL - MIN_CELL) * (math.sqrt(float(x.value_at_stake) / top) if top > 0 else 0)
                  for x in r.cells]
        gap = 2.0
        total = sum(widths) + gap * max(len(widths) - 1, 0)
        scale = min(1.0, plot_w / total) if total else 1.0
        x = float(LABEL_W)
        cells = []
        for w, cell in zip(widths, r.cells, strict=True):
            cells.append(Cell(x=round(x, 1), width=round(max(w * scale, 2.0), 1), cell=cell,
                              css=heat_class(cell.score, cell.band)))
            x += w * scale + gap * scale
        rows.append(MapRow(y=i * ROW_H, row=r, cells=cells, more=max(r.contacts - len(r.cells), 0)))
    return HeatmapGeometry(width=width, height=max(len(rows), 1) * ROW_H, rows=rows)


@dataclass(frozen=True)
class StrengthLine:
    width: int
    height: int
    path: str
    points: list[tuple[float, float, date, int]]
    threshold_y: float
    left: float
    right: float
    bottom: float
    ticks: list[tuple[int, float]]
    months: list[tuple[float, str]]


def strength_line(points: list[tuple[date, int]], threshold: int, *, width: int = 560,
                  height: int = 180) -> StrengthLine:
    left, top, bottom, right = 34.0, 8.0, 24.0, 8.0
    plot_w, plot_h = width - left - right, height - top - bottom
    if not points:
        points = [(date.today(), 0)]
    start, end = points[0][0], points[-1][0]
    span = max((end - start).days, 1)

    def xy(d: date, v: float) -> tuple[float, float]:
        return round(left + plot_w * (d - start).days / span, 1), round(top + plot_h - plot_h * v / 100, 1)

    out = [(*xy(d, s), d, s) for d, s in points]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y, _, _) in enumerate(out))
    months = []
    d = date(start.year, start.month, 1)
    while d <= end:
        if d >= start:
            months.append((xy(d, 0)[0], d.strftime("%b")))
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return StrengthLine(width=width, height=height, path=path, points=out, threshold_y=xy(start, threshold)[1],
                        left=left, right=width - right, bottom=top + plot_h,
                        ticks=[(v, xy(start, v)[1]) for v in (0, 50, 100)], months=months)


def share(part: Decimal, whole: Decimal) -> float:
    return float(part / whole) if whole else 0.0
