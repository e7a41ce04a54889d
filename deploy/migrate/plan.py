"""What moves where: every table of the original's `conference` database, the service that owns it now
(../shared/DESIGN.md, "Services and what each owns"), its key and what the target refuses that the source allowed.

Columns are not listed here: a table keeps every source column its owner's migrations also have (read from both
schemas at run time), so a column added to a service's table later is carried without touching this file, and a
source column the suite dropped is named in the summary and the report instead of vanishing silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Orphans:
    """Rows whose reference points at no row of the parent table (the original had no or a disabled FK).
    They are carried (ids are facts frontends hold), and listed in the report."""

    column: str
    parent_table: str
    parent_key: str = "id"


@dataclass(frozen=True)
class TablePlan:
    name: str
    service: str
    key: str = "id"
    # Columns the target keeps UNIQUE that the source did not: of rows sharing a value the lowest key is carried
    # (the row the original's `WHERE col = ?` found first), the others are reported, never merged into it.
    unique: tuple[str, ...] = ()
    orphans: tuple[Orphans, ...] = ()
    # The original's update-time columns; listed for the report and runbook. Catch-up does not trust them alone
    # (the original changed rows without touching them): it compares every chunk (see engine.py).
    updated_by: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


# Order matters within a service only where a target FK exists (node_livekit before room_conference).
TABLES: tuple[TablePlan, ...] = (
    # conference
    TablePlan("node_livekit", "conference", updated_by=("lastHealthCheck",)),
    TablePlan(
        "room_conference",
        "conference",
        updated_by=("dtmUpdated", "sync_at"),
        orphans=(Orphans("nodeLivekitId", "node_livekit"),),
    ),  # fmt: skip
    TablePlan("room_user", "conference", updated_by=("dtmupdated",)),
    TablePlan("color_scheme", "conference"),
    TablePlan("case_data", "conference", orphans=(Orphans("roomId", "room_conference"),)),
    TablePlan("chat_message", "conference"),
    TablePlan("notification", "conference", key="notificationId", updated_by=("dtmRead",)),
    # link
    TablePlan("services", "link"),
    TablePlan(
        "link_connect",
        "link",
        unique=("linkID",),
        updated_by=("sync_at", "patientUpdated", "dtmDisconnect"),
        orphans=(Orphans("roomUserId", "room_user"),),
    ),  # fmt: skip
    TablePlan("usage_status_log", "link"),
    # telemetry
    TablePlan("car_track", "telemetry", updated_by=("dtmUpdated",)),
    TablePlan("radio_devices", "telemetry", updated_by=("dtmUpdated",)),
    TablePlan("radio_locations", "telemetry", updated_by=("dtmUpdated",)),
    TablePlan("data_log", "telemetry"),
    # recording
    TablePlan("record_media", "recording", updated_by=("dtmUpdated",)),
    TablePlan("files", "recording", updated_by=("updatedAt",)),
)

SERVICES: tuple[str, ...] = tuple(dict.fromkeys(plan.service for plan in TABLES))


def tables_of(service: str) -> list[TablePlan]:
    return [plan for plan in TABLES if plan.service == service]
