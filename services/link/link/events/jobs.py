"""Link's periodic job (servicekit.schedule: once per slot across replicas, Asia/Bangkok slots).

* ``expire-links`` (every 30 minutes): links still enabled whose ``dtmExpired`` has passed are disabled
  (``enabled`` = 0) and ``link.link.expired`` (+ ``link.link.fields_changed`` {enabled: 0} for telemetry) is
  published for each, in the same transaction. Idempotent: a link
  is expired by the transaction that still finds it enabled (rows locked), so a second run, or a replica
  racing on the same rows, changes and publishes nothing. Getdetail already refuses an expired link by its date;
  the sweep makes the expiry a fact other services hear about.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from contracts.link import LINK_EXPIRED, LinkExpired
from link import repository
from link.events import link_fields_changed
from servicekit.bus import add_event
from servicekit.clock import now_local
from servicekit.db import Database
from servicekit.schedule import Scheduler

log = logging.getLogger(__name__)

EXPIRE_EVERY = timedelta(minutes=30)
EXPIRE_BATCH = 500


async def expire_links(db: Database, now: datetime | None = None) -> list[str]:
    """Disable every expired enabled link (batches of :data:`EXPIRE_BATCH`); returns the IDs this run expired."""
    moment = now or now_local()
    expired: list[str] = []
    while True:
        async with db.transaction() as conn:
            rows = await repository.links.lock_expired_links(conn, moment, EXPIRE_BATCH)
            if rows:
                await repository.links.disable_links(conn, [row["id"] for row in rows])
            for row in rows:
                await link_fields_changed(conn, row["linkID"] or "", {"enabled": 0})
                await add_event(
                    conn,
                    LINK_EXPIRED,
                    LinkExpired(
                        linkID=row["linkID"] or "",
                        room=row["room"] or "",
                        linkType=row["linkType"] or "",
                        dtmExpired=row["dtmExpired"].strftime("%Y-%m-%d %H:%M:%S"),
                    ),
                )
        expired.extend(row["linkID"] for row in rows)
        if len(rows) < EXPIRE_BATCH:
            break
    if expired:
        log.info("expired links disabled", extra={"count": len(expired)})
    return expired


def schedule(scheduler: Scheduler, db: Database) -> None:
    """Register the jobs on ``scheduler`` (the caller starts and stops it)."""

    async def expire() -> None:
        await expire_links(db)

    scheduler.every("expire-links", EXPIRE_EVERY, expire)
