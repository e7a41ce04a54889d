"""rpc.link.snapshot's ``liveLinks`` (realtime's namespace registry rebuild) pages exactly the links with a linkID a
``links`` page marks ``live`` (not expired), in the same order, paging through every one once; ``links`` pages every
link_connect row, share links and rows without a linkID (an original's installation holds some) included."""

from __future__ import annotations

import uuid
from typing import Any

from contracts.link import RPC_LINK_SNAPSHOT, LinkSnapshot, LinkState, LiveLink
from servicekit.bus import Bus
from servicekit.rebuild import pages


async def test_live_links_are_the_live_links_of_the_links_pages(suite: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    for n, expired in enumerate(["NULL", "NOW() - INTERVAL 1 DAY", "NOW() + INTERVAL 1 DAY", "NULL"]):
        await suite.execute(
            "link",
            f"INSERT INTO link_connect (linkID, room, mobile, dtmExpired) VALUES (%s, %s, '', {expired})",  # noqa: S608
            (f"live{tag}{n}", f"r{tag}"),
        )
    await suite.execute(
        "link", "INSERT INTO link_connect (linkID, room, mobile, share, userName) VALUES (%s, %s, '', 1, 'Guest')",
        (f"share{tag}", f"r{tag}"),
    )  # fmt: skip
    await suite.execute(
        "link", "INSERT INTO link_connect (linkID, room, mobile, crmSender) VALUES (NULL, %s, '0811111111', %s)",
        (f"r{tag}", tag),
    )  # fmt: skip
    bus = await Bus.connect(suite.nats_url, "kittest-live-links")
    try:
        every = [
            link async for _, page in pages(bus, RPC_LINK_SNAPSHOT, LinkSnapshot.LINKS, LinkState) for link in page
        ]
        live_pages = pages(bus, RPC_LINK_SNAPSHOT, LinkSnapshot.LIVE_LINKS, LiveLink, limit=3)
        live = [link.linkID async for _, page in live_pages for link in page]
    finally:
        await bus.close()
    assert live == [link.linkID for link in every if link.live and link.linkID]
    assert [name for name in live if tag in name] == [f"live{tag}0", f"live{tag}2", f"live{tag}3", f"share{tag}"]
    mine = [(link.linkID, link.share) for link in every if link.room == f"r{tag}"]
    assert mine == [*((f"live{tag}{n}", 0) for n in range(4)), (f"share{tag}", 1), (None, 0)], mine
    (nameless,) = [link for link in every if link.room == f"r{tag}" and link.linkID is None]
    assert nameless.crmSender == tag and nameless.mobile == "0811111111" and nameless.linkRowId
