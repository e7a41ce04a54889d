"""getdetail's fallback for an aggregate too long for the server reads a room's participants row by row: each call
reads the view again (a cached coroutine cannot be awaited twice, and a cached answer would be stale)."""

from __future__ import annotations

from typing import Any

from link.repository import readmodels


class _Rows:
    """A connection answering fetch_all with whatever the view holds at the time of the call."""

    def __init__(self) -> None:
        self.view: list[dict[str, Any]] = []
        self.reads = 0

    async def fetch_all(self, sql: str, args: Any) -> list[dict[str, Any]]:
        self.reads += 1
        return list(self.view)


async def test_each_read_sees_the_view_as_it_is_now() -> None:
    conn = _Rows()
    conn.view = [{"participant": b'{"identity": "a"}'}]
    assert await readmodels.participants(conn, "room-x") == [{"identity": "a"}]  # type: ignore[arg-type]
    conn.view.append({"participant": b'{"identity": "b"}'})
    again = await readmodels.participants(conn, "room-x")  # type: ignore[arg-type]
    assert again == [{"identity": "a"}, {"identity": "b"}]
    assert conn.reads == 2
