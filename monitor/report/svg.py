"""Coordinates for the report's inline SVG pictures; the templates draw them.

Two pictures: a document's timeline (one lane per version, the current version's lane marked for
each stretch of time, a marker per change coloured by its most severe flag, reverts drawn as
diamonds on dashed connectors) and a platform's changes per month over the last 12 months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

TIMELINE_WIDTH = 760
_LEFT, _RIGHT, _TOP = 56, 16, 12
_AXIS_HEIGHT = 28
_MAX_LANES_HEIGHT = 260
_LANE_MAX, _LANE_MIN = 22, 5


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    kind: str  # "new" or "revert"
    severity: str  # deal-breaker / review / info / none
    href: str
    title: str


@dataclass
class Timeline:
    width: int
    height: int
    axis_y: float
    left: float = _LEFT  # x of the drawing area's edges (lanes and axis span them)
    right: float = TIMELINE_WIDTH - _RIGHT
    lanes: list[tuple[float, str]] = field(default_factory=list)  # (y, label); "" = no label
    segments: list[tuple[float, float, float, bool]] = field(default_factory=list)  # x1,x2,y,cur
    connectors: list[tuple[float, float, float, bool]] = field(default_factory=list)  # x,y1,y2,rev
    markers: list[Marker] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    start_label: str = ""
    end_label: str = ""


@dataclass(frozen=True)
class TimelineEvent:
    """The document's version became `lane` (0-based version ordinal) at `at`."""

    at: datetime
    lane: int
    kind: str  # "baseline", "new" or "revert"
    severity: str = "none"
    href: str = ""
    title: str = ""


def timeline(events: list[TimelineEvent], lanes: int, end: datetime) -> Timeline:
    """Lay out a document's history from its first version until `end` (the page's time)."""
    spacing = max(_LANE_MIN, min(_LANE_MAX, _MAX_LANES_HEIGHT / max(lanes, 1)))
    axis_y = _TOP + spacing * max(lanes, 1)
    pic = Timeline(TIMELINE_WIDTH, round(axis_y + _AXIS_HEIGHT), axis_y)
    if not events:
        return pic
    start = events[0].at
    end = max(end, events[-1].at + timedelta(hours=1))
    span = (end - start).total_seconds()

    def x_of(moment: datetime) -> float:
        width = TIMELINE_WIDTH - _LEFT - _RIGHT
        return round(_LEFT + width * (moment - start).total_seconds() / span, 1)

    def y_of(lane: int) -> float:
        return round(_TOP + spacing * (lane + 0.5), 1)

    label_every = 1 if spacing >= 12 else max(1, round(12 / spacing))
    pic.lanes = [
        (y_of(n), f"v{n + 1}" if n % label_every == 0 or n == lanes - 1 else "")
        for n in range(lanes)
    ]
    for i, event in enumerate(events):
        until = events[i + 1].at if i + 1 < len(events) else end
        last = i + 1 == len(events)
        pic.segments.append((x_of(event.at), x_of(until), y_of(event.lane), last))
        if i == 0:
            continue
        x, previous = x_of(event.at), events[i - 1].lane
        pic.connectors.append((x, y_of(previous), y_of(event.lane), event.kind == "revert"))
        pic.markers.append(
            Marker(x, y_of(event.lane), event.kind, event.severity, event.href, event.title)
        )
    pic.ticks = [(x_of(t), label) for t, label in time_ticks(start, end)]
    pic.start_label, pic.end_label = start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")
    return pic


def time_ticks(start: datetime, end: datetime, most: int = 8) -> list[tuple[datetime, str]]:
    """Round moments between start and end to label an axis: days, months or years."""
    days = (end - start).total_seconds() / 86400
    if days <= 60:
        step = max(1, round(days / most + 0.5))
        first = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        ticks = [first + timedelta(days=step * k) for k in range(most + 1)]
        return [(t, t.strftime("%b %d")) for t in ticks if t < end]
    starts = _month_starts(start, end)
    if days <= 365 * 4:
        step = max(1, round(days / 30.4 / most + 0.5))
        return [(t, t.strftime("%b %Y")) for t in starts if (t.year * 12 + t.month - 1) % step == 0]
    step = max(1, round(days / 365.25 / most + 0.5))
    return [(t, t.strftime("%Y")) for t in starts if t.month == 1 and t.year % step == 0]


def _month_starts(start: datetime, end: datetime) -> list[datetime]:
    """The first moment of each month after `start` and before `end`."""
    year, month = start.year, start.month
    out: list[datetime] = []
    while True:
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
        moment = datetime(year, month, 1, tzinfo=UTC)
        if moment >= end:
            return out
        out.append(moment)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    count: int
    label: str  # "Mar 2026"


@dataclass
class Sparkline:
    width: int
    height: int
    bars: list[Bar]
    total: int


SPARK_BAR, SPARK_GAP, SPARK_HEIGHT = 9, 3, 28


def last_months(now: datetime, count: int = 12) -> list[tuple[int, int]]:
    """(year, month) of the last `count` months, oldest first, ending with now's month."""
    months = []
    year, month = now.year, now.month
    for _ in range(count):
        months.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def sparkline(times: list[datetime], now: datetime) -> Sparkline:
    """Changes per month over the last 12 months, as bars scaled to the busiest month."""
    months = last_months(now)
    counts = {m: 0 for m in months}
    for moment in times:
        key = (moment.year, moment.month)
        if key in counts:
            counts[key] += 1
    top = max(counts.values()) or 1
    bars = []
    for n, (year, month) in enumerate(months):
        count = counts[(year, month)]
        height = round((SPARK_HEIGHT - 4) * count / top, 1) if count else 1.0
        label = datetime(year, month, 1, tzinfo=UTC).strftime("%b %Y")
        x = n * (SPARK_BAR + SPARK_GAP)
        bars.append(Bar(x, SPARK_HEIGHT - height, height, count, label))
    width = len(months) * (SPARK_BAR + SPARK_GAP) - SPARK_GAP
    return Sparkline(width, SPARK_HEIGHT, bars, sum(counts.values()))
