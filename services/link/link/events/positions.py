"""The position writer: POST /link/update/latlng's writes, group-committed (servicekit.batching).

Per batch, in one transaction: one read of the batch's links, one UPDATE of their positions, one multi-row insert
of the usage rows and one of the ``LINK_LOCATION_UPDATED`` outbox rows; a request is answered once its batch
committed. A report for an unknown link changes nothing and answers FAIL, as the original did.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.link import LINK_LOCATION_UPDATED, LinkLocationUpdated
from link import domain, repository
from link.domain.positions import PositionReport
from servicekit.batching import GroupCommit
from servicekit.bus import add_events
from servicekit.db import Connection, Database


def position_writer(db: Database) -> GroupCommit[PositionReport, bool]:
    return GroupCommit(db, "link-positions", record_positions)


async def record_positions(conn: Connection, reports: Sequence[PositionReport]) -> list[bool]:
    """Apply a batch of position reports; True for each whose link exists."""
    batch = list(reports)
    links = await repository.links.links_for_positions(conn, [report.link_id for report in batch])
    stored = {index: row["linkID"] for index, row in links.items()}
    await repository.links.set_positions(
        conn,
        [
            (link_id, report.latitude, report.longitude, domain.positions.number_text(report.accuracy))
            for link_id, report in domain.positions.last_report_per_link(stored, batch)
        ],
    )
    usage, published = [], []
    for index, report in enumerate(batch):
        row = links.get(index)
        if row is None:
            continue
        room = report.room or row["room"] or ""
        user_type = report.user_type or row["userType"] or ""
        usage.append(
            repository.usage.usage_row(
                status=domain.links.STATUS_UPDATE_LATLNG,
                link_id=report.link_id,
                room=room,
                user_type=user_type,
                latitude=report.latitude,
                longitude=report.longitude,
            )
        )
        published.append(
            (
                LINK_LOCATION_UPDATED,
                LinkLocationUpdated(
                    linkID=report.link_id,
                    room=room,
                    userType=user_type,
                    position=report.position,
                    timestamp=report.timestamp,
                ),
            )
        )
    if usage:
        await repository.usage.insert_usage_rows(conn, usage)
        await add_events(conn, published)
    return [index in links for index in range(len(batch))]
