"""Recording's contract: the events recording publishes (``recording.*``) and the requests it serves
(``rpc.recording.*``)."""

from __future__ import annotations

from typing import Any

import msgspec

# ---- recording: LiveKit's live participant list (read models of /link/getdetail, issue 5) ----------------
# LiveKit's live participant list, from LiveKit webhooks (participant_joined / participant_left) received by
# recording. ``participant`` is LiveKit's ParticipantInfo as JSON (camelCase, every field, as
# ListParticipants returned it to the original); ``timestamp`` = the webhook's createdAt in milliseconds
# (readers ignore an event older than what they hold for that identity).
RECORDING_PARTICIPANT_JOINED = "recording.participant.joined"
RECORDING_PARTICIPANT_LEFT = "recording.participant.left"


class ParticipantPresence(msgspec.Struct, kw_only=True):
    room: str
    identity: str
    participant: dict[str, Any] = {}
    timestamp: int = 0


# ---- recording: LiveKit webhooks (issue 7) ---------------------------------------------------------------
# Recording verifies LiveKit's webhooks and applies each event id once. Egress events carry what the original's
# webhook controller wrote to room_conference and emitted as ``room-record`` on /{room}: conference sets
# recordId/dtmStartRecord/recordStatus 1 on started (recordId "" / dtmStopRecord / recordStatus 2 on ended),
# realtime emits ``room-record`` with ``egressInfo`` (+ dtmStartRecord / dtmStopRecord) on started.
RECORDING_EGRESS_STARTED = "recording.egress.started"  # EgressChanged
RECORDING_EGRESS_UPDATED = "recording.egress.updated"  # EgressChanged (status change while running)
RECORDING_EGRESS_ENDED = "recording.egress.ended"  # EgressChanged
RECORDING_ROOM_STARTED = "recording.room.started"  # LiveKitRoomEvent
RECORDING_ROOM_FINISHED = "recording.room.finished"  # LiveKitRoomEvent (the original stopped the room's egress)
# Every accepted webhook, raw, for telemetry's data_log (the original stored each one before handling it).
RECORDING_WEBHOOK_RECEIVED = "recording.webhook.received"  # WebhookReceived
# An uploaded video was stored (POST /upload/video): the encoder picks it up (the original's ENCODE_API call).
RECORDING_MEDIA_UPLOADED = "recording.media.uploaded"  # MediaUploaded


class EgressChanged(msgspec.Struct, kw_only=True):
    room: str  # egressInfo.roomComposite.roomName / trackComposite.roomName / roomName
    recordId: str  # the egress id ("" is never sent)
    status: str  # LiveKit's EgressStatus name, e.g. "EGRESS_ACTIVE"
    dtmStartRecord: str | None = None  # local "YYYY-MM-DD HH:mm:ss" (started)
    dtmStopRecord: str | None = None  # local "YYYY-MM-DD HH:mm:ss" (ended)
    egressInfo: dict[str, Any] = {}  # LiveKit's EgressInfo as JSON (camelCase)
    timestamp: int = 0  # the webhook's createdAt in milliseconds


class LiveKitRoomEvent(msgspec.Struct, kw_only=True):
    room: str
    roomInfo: dict[str, Any] = {}  # LiveKit's Room as JSON (camelCase)
    timestamp: int = 0


class WebhookReceived(msgspec.Struct, kw_only=True):
    eventId: str
    event: str
    room: str = ""
    data: str  # the webhook body as received (JSON text): data_log.data
    createdAt: int = 0  # seconds, as LiveKit sent it


class MediaUploaded(msgspec.Struct, kw_only=True):
    recordId: int  # record_media.id
    fileName: str
    filePath: str
    recordType: str = ""


# Files uploaded through a link (POST /upload/file?linkID=), for GET /room/picture. RECORDING must publish
# RECORDING_FILE_STORED (FileStored) for every `files` row it inserts, in the inserting transaction. Conference
# keeps a read model of them (with LINK_CREATED's linkID -> room) and answers GET /room/picture from it.
RECORDING_FILE_STORED = "recording.file.stored"


class FileStored(msgspec.Struct, kw_only=True):
    fileId: int  # files.id
    linkId: str  # files.linkId ("" when uploaded without one)
    filename: str
    url: str  # files.url, relative ("/images/<folder>/<name>"); readers prefix API_URL
    width: int | None = None
    height: int | None = None
    createdAt: str  # local "YYYY-MM-DD HH:mm:ss" (files.createdAt)


# ---- recording: egresses and the encode queue (issue 7, continued) ---------------------------------------
# Recording keeps each room's autoRecord / recordType / encodingOptionsPreset / tenant from conference's
# ``conference.room.*`` RoomChanged events (durable consumer "recording-room-settings"), falling back to
# RPC_ROOM_DETAIL for a room it has not seen. The tenant (room_conference.service) is read from
# ``detail["service"]`` (or a top-level ``service`` field of the event data): conference must include it, else
# such rooms cannot record (the original refused rooms without a tenant).
# Recording owns which egress a room has (one at most, EGRESS_LIMIT in all). Consumers of its egress events:
# conference sets room_conference.recordId / dtmStartRecord / recordStatus 1 on RECORDING_EGRESS_STARTED and
# recordId "" / dtmStopRecord / recordStatus 2 on RECORDING_EGRESS_ENDED (EgressChanged.recordId = egress id);
# realtime emits ``room-record`` on /{room} for RECORDING_EGRESS_STARTED (egressInfo + dtmStartRecord/StopRecord).


# ---- realtime asks link, conference, recording: the remaining room socket events (issue 8, realtime.md §4.2) --
# Realtime calls these for client->server socket events and emits the reply; while nobody serves a subject the
# event is ignored (logged), as the original ignored failed handlers. Proposed by realtime; owners serve them.
# RPC_RECORDING_TOGGLE (contracts.conference.RoomQuery), recording: the `room-record` toggle (§4.3): start or
#   stop the room's egress atomically; reply data = the `room-record` payload ({status: startRecord|stopRecord,
#   data} or {status: "egressNotAvailable", message} or {status: "ERROR", message}); admins only.
RPC_RECORDING_TOGGLE = "rpc.recording.room.toggle"


# RECORDING_RECORD_USAGE (RecordUsage): GET /record/request's usage row of the original (status "StartRecord",
# "FailRecord" or "StopRecord"; ``data`` = the egress info or the failure). Link: one usage_status_log row.
# RECORDING_RECORD_USAGE: consumed by link (durable "link-record-usage", replayed, apply_once): one
#   usage_status_log row (linkID "", room, identity, status, userAgent, data JSON or "\"\"", dtmCreated = event time).
RECORDING_RECORD_USAGE = "recording.record.usage"


class RecordUsage(msgspec.Struct, kw_only=True):
    room: str
    identity: str = ""
    status: str  # StartRecord | FailRecord | StopRecord
    userAgent: str = ""
    data: Any = None


# ---- recording serves RPC_RECORDING_TOGGLE (issue 8, realtime.md §4.3) -----------------------------------
# Reply data (realtime broadcasts it as `room-record`): {status: "startRecord"|"stopRecord", data: EgressInfo JSON
# + dtmStartRecord/dtmStopRecord}, {status: "egressNotAvailable", message: "Record service not available"}
# (EGRESS_LIMIT reached; LiveKit not asked), or {status: "ERROR", code, message} with nothing written, ``code`` =
# LiveKit's Twirp code ("unavailable" when unreachable/5xx/slow) or recording's refusal ("starting": a start is
# in flight, "already_recording", "no_service": the room has no tenant, "busy"). RpcError "not_found" for a room
# nobody knows (the original crashed: nothing emitted), "bad_request" for an empty / >50-char room. The toggle
# always records video+audio, grid, H264_720P_30 (as the original; the room's record settings are not used) and
# writes no usage row. The egress events follow from LiveKit's webhooks, as for GET /record/request.
# NOTE: a LiveKit call may take up to 10 s; realtime waits 3 s (RPC_TIMEOUT), so on a slow node it emits nothing
# while the toggle still completes (LiveKit's egress_started webhook then reaches the room).


# ---- snapshots for rebuilding read models (issue 14) -----------------------------------------------------------
# RPC_RECORDING_SNAPSHOT (servicekit.rebuild.SnapshotQuery -> SnapshotPage), served by recording:
#   RecordingSnapshot.EGRESSES -> EgressChanged (record_media rows of LiveKit egresses, by id: status
#                                 "EGRESS_COMPLETE"/"EGRESS_FAILED"/"EGRESS_ACTIVE" from the row's status, egressInfo
#                                 rebuilt with the row's file name and record type, timestamp 0)
#   RecordingSnapshot.FILES    -> FileStored (every `files` row, by id)
RPC_RECORDING_SNAPSHOT = "rpc.recording.snapshot"


class RecordingSnapshot:
    EGRESSES = "egresses"
    FILES = "files"
