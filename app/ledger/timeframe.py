"""The window a report covers, and how it splits between rollups and the raw live tail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.ledger.rollup import watermark


class Period(StrEnum):
    HOUR = "1h"
    DAY = "24h"
    WEEK = "7d"
    MONTH = "30d"


PERIODS = {
    Period.HOUR: timedelta(hours=1),
    Period.DAY: timedelta(hours=24),
    Period.WEEK: timedelta(days=7),
    Period.MONTH: timedelta(days=30),
}


@dataclass(frozen=True, slots=True)
class Timeframe:
    """Jobs finished in ``[start, end)``."""

    start: datetime
    end: datetime

    @classmethod
    def resolve(
        cls,
        *,
        start: datetime | None,
        end: datetime | None,
        period: Period | None,
        now: datetime | None = None,
    ) -> Timeframe:
        """``start``/``end`` if given, else ``period`` (default 24h) ending at ``end`` or now."""
        end = _aware(end, "end") if end is not None else (now or datetime.now(UTC))
        if start is not None:
            if period is not None:
                raise InvalidInput(
                    "give start (and end) or period, not both", code="invalid_timeframe"
                )
            start = _aware(start, "start")
        else:
            start = end - PERIODS[period or Period.DAY]
        if start >= end:
            raise InvalidInput("start must be before end", code="invalid_timeframe", param="start")
        return cls(start, end)


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """Whole days ``[days_from, days_to)`` come from the daily rollups, the other whole hours
    of ``[rollup_from, rollup_to)`` from the hourly ones, and the rest of the window (its
    ragged edges and everything past the watermark) from the raw tables."""

    start: datetime
    end: datetime
    rollup_from: datetime
    rollup_to: datetime
    days_from: datetime
    days_to: datetime

    def params(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "r_lo": self.rollup_from,
            "r_hi": self.rollup_to,
            "d_lo": self.days_from,
            "d_hi": self.days_to,
        }


def plan(session: Session | Connection, frame: Timeframe, *, use_rollups: bool = True) -> ReadPlan:
    mark = watermark(session.connection() if isinstance(session, Session) else session)
    lo = _ceil(frame.start, HOUR)
    hi = min(_floor(frame.end, HOUR), mark) if mark is not None else lo
    if not use_rollups or lo >= hi:
        lo = hi = frame.start  # nothing from the rollups: the whole window raw
    days_lo, days_hi = _ceil(lo, DAY), _floor(hi, DAY)
    if days_lo >= days_hi:
        days_lo = days_hi = hi  # no whole day: hours only
    return ReadPlan(frame.start, frame.end, lo, hi, days_lo, days_hi)


# Which raw rows the plan leaves to the tail, and which rollup rows it takes.
RAW_RANGE = (
    "((finished_at >= :start AND finished_at < :r_lo) "
    "OR (finished_at >= :r_hi AND finished_at < :end))"
)
ROLLUP_RANGE = (
    "((span = 'hour' AND ((starts_at >= :r_lo AND starts_at < :d_lo) "
    "OR (starts_at >= :d_hi AND starts_at < :r_hi))) "
    "OR (span = 'day' AND starts_at >= :d_lo AND starts_at < :d_hi))"
)
TENANT = "(CAST(:tenant AS text) IS NULL OR tenant_id = :tenant)"


def parse_moment(value: str | None, name: str) -> datetime | None:
    """An ISO-8601 instant (``Z`` or an offset) from a query parameter."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} is not an ISO-8601 time: {value[:40]!r}", code="invalid_timeframe", param=name
        ) from None


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput(
            f"{name} needs a UTC offset, e.g. 2026-11-22T00:00:00Z",
            code="invalid_timeframe",
            param=name,
        )
    return moment.astimezone(UTC)


HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def _floor(moment: datetime, unit: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    if unit == DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil(moment: datetime, unit: timedelta) -> datetime:
    floor = _floor(moment, unit)
    return floor if floor == moment else floor + unit


def run(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    return list(session.execute(text(sql), params))
