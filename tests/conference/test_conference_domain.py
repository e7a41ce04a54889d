"""Pure rules of conference (no suite): the fast date rendering of GET /room/detail matches servicekit's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conference import domain
from servicekit.clock import js_iso


@pytest.mark.parametrize(
    "value",
    [
        None,
        datetime(2024, 1, 1, 3, 0, 0, 123456),
        datetime(1970, 1, 1),
        datetime(2024, 2, 29, 23, 59, 59, 999999),
        datetime(2024, 5, 1, 2, 3, 4, tzinfo=UTC),
        date(2024, 1, 2),
    ],
)
def test_fast_js_iso_matches_js_iso(value):
    assert domain.fast_js_iso(value) == js_iso(value)


@pytest.mark.parametrize("zone", ["Asia/Bangkok", "Europe/Berlin", "America/New_York", "UTC"])
def test_fast_js_iso_in_other_timezones(monkeypatch, zone):
    tz = ZoneInfo(zone)
    monkeypatch.setattr(domain, "LOCAL_TZ", tz)
    start = datetime(2024, 3, 9, 0, 0, 0)
    for hours in range(0, 24 * 270, 7):  # crosses both DST changes of the DST zones
        value = start + timedelta(hours=hours, milliseconds=hours % 1000)
        expected = value.replace(tzinfo=tz).astimezone(UTC)
        assert (
            domain.fast_js_iso(value)
            == expected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expected.microsecond // 1000:03d}Z"
        )


def test_room_detail_keeps_the_original_columns_and_order(monkeypatch):
    monkeypatch.setattr(domain, "LOCAL_TZ", ZoneInfo("Asia/Bangkok"))
    row = {column: None for column in domain.DETAIL_COLUMNS}
    row.update(id=1, status="open", room="r", dtmCreated=datetime(2024, 1, 1, 10, 0, 0))
    row["dtmStartRecord"] = datetime(2024, 1, 1, 10, 0, 0)
    now = datetime(2024, 1, 1, 3, 0, 5, tzinfo=UTC)  # 10:00:05 in Bangkok
    detail = domain.room_detail(row, now)
    assert list(detail) == [*domain.DETAIL_COLUMNS, "recordDuration"]
    assert detail["dtmCreated"] == "2024-01-01T03:00:00.000Z" and detail["dtmStopRecord"] is None
    assert detail["recordDuration"] == 5000
