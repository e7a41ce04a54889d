"""Positions of a room's users, free of I/O: the ``positionUser`` list, the ``accuracy`` column's text."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


def _decimal_text(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def position_users(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The room's user links, newest first (rows come ordered by id DESC), one per userName; missing
    coordinates become 0; share links only when they have a position."""
    seen: set[Any] = set()
    result: list[dict[str, Any]] = []
    for row in rows:
        if row["userName"] in seen:
            continue
        seen.add(row["userName"])
        has_position = row["latitude"] is not None and row["longitude"] is not None
        if row["share"] == 1 and not has_position:
            continue
        result.append(
            {
                "id": row["id"],
                "mobile": row["mobile"],
                "share": row["share"],
                "userName": row["userName"],
                "accuracy": row["accuracy"],
                "latitude": _decimal_text(row["latitude"]) if row["latitude"] is not None else 0,
                "longitude": _decimal_text(row["longitude"]) if row["longitude"] is not None else 0,
                "errorLocation": row["errorLocation"],
            }
        )
    return result


def number_text(value: float | None) -> str:
    """A coordinate-ish number as text (``accuracy`` is a VARCHAR column)."""
    if value is None:
        return "0"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True, slots=True)
class PositionReport:
    """One POST /link/update/latlng as the position writer applies it; ``room`` / ``user_type`` empty when the
    request left them out (the link's own are used)."""

    link_id: str
    room: str
    user_type: str
    latitude: float
    longitude: float
    accuracy: float | None
    position: Any  # the published contracts.link.Position
    timestamp: int  # ms, when the request arrived


def last_report_per_link(stored_ids: dict[int, str], reports: list[PositionReport]) -> list[tuple[str, PositionReport]]:
    """(stored linkID, report) for each link of a batch, the last report of a link winning (submission order) as
    one UPDATE after another would leave it."""
    latest: dict[str, PositionReport] = {}
    for index, report in enumerate(reports):
        stored = stored_ids.get(index)
        if stored is not None:
            latest.pop(stored, None)
            latest[stored] = report
    return list(latest.items())
