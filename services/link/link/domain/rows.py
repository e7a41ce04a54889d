"""How stored rows show in the original's JSON, free of I/O."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from servicekit.clock import js_iso


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the original's JSON showed it: dates as UTC ISO strings, DECIMAL as text."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = js_iso(value)
        elif isinstance(value, Decimal):
            out[key] = str(value)
        else:
            out[key] = value
    return out
