"""Positions of a room's users, free of I/O: the ``positionUser`` list, the ``accuracy`` column's text."""

from __future__ import annotations

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
