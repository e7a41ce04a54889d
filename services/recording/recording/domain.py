"""Rules of the recording service, free of I/O: upload classification and names, webhook event mapping, egress
names and auto-record rules, room settings from conference's events, encode job states."""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from typing import Any

from servicekit.clock import js_iso

IMAGE_TYPES = frozenset(
    {"image/apng", "image/avif", "image/gif", "image/jpeg", "image/png", "image/svg+xml", "image/webp"}
)
VIDEO_TYPES = frozenset(
    t.lower()
    for t in (
        "video/x-flv",
        "video/mp4",
        "application/x-mpegURL",
        "video/MP2T",
        "video/3gpp",
        "video/quicktime",
        "video/x-msvideo",
        "video/x-ms-wmv",
        "video/webm",
        "video/x-m4v",
    )
)
PDF_TYPES = frozenset({"application/pdf"})
# ISO base media files (mp4, mov, m4v, 3gp): the duration is read from their `mvhd` box.
ISO_MEDIA_TYPES = frozenset({"video/mp4", "video/quicktime", "video/x-m4v", "video/3gpp"})

MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"|?*\\/]")


class ContentMismatch(ValueError):
    """A stored file's bytes are not of its declared type (found while making its thumbnail)."""

    def __init__(self, mimetype: str) -> None:
        super().__init__(f"File content does not match its type: {mimetype}")
        self.mimetype = mimetype


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the original's JSON: dates as JS ISO strings."""
    return {k: (js_iso(v) if hasattr(v, "year") else v) for k, v in row.items()}


def file_type(mimetype: str) -> str:
    """The original's classification: image, video, pdf or file."""
    mime = (mimetype or "").lower()
    if mime in IMAGE_TYPES:
        return "image"
    if mime in VIDEO_TYPES:
        return "video"
    if mime in PDF_TYPES:
        return "pdf"
    return "file"


def safe_filename(client_name: str | None, default: str = "file") -> str:
    """A stored name from the client's: its last path component only, no control or reserved characters, no
    leading dots, at most MAX_NAME_BYTES bytes (the extension kept); ``.json`` becomes ``.txt`` as before."""
    name = unicodedata.normalize("NFC", client_name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if not name:
        name = default
    if name.lower().endswith(".json"):
        name = name[: -len(".json")] + ".txt"
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode()) > 16:
        stem, ext = name, ""
    budget = MAX_NAME_BYTES - (len(ext.encode()) + 1 if ext else 0)
    encoded = stem.encode()[:budget]
    stem = encoded.decode("utf-8", errors="ignore") or default
    return f"{stem}.{ext}" if ext else stem


def content_matches(mimetype: str, head: bytes) -> bool:
    """Whether the first bytes of a file agree with its declared type (images, pdf, ISO media); other types
    are stored as plain files and served as downloads."""
    mime = (mimetype or "").lower()
    if mime == "image/png" or mime == "image/apng":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if mime == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if mime == "image/gif":
        return head[:6] in (b"GIF87a", b"GIF89a")
    if mime == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if mime == "image/avif":
        return head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis")
    if mime == "image/svg+xml":
        text = head.lstrip(b"\xef\xbb\xbf").lstrip().lower()
        return text.startswith((b"<svg", b"<?xml")) and b"<svg" in text
    if mime in PDF_TYPES:
        return head.startswith(b"%PDF-")
    if mime in ISO_MEDIA_TYPES:
        return head[4:8] == b"ftyp"
    if mime == "video/webm":
        return head.startswith(b"\x1a\x45\xdf\xa3")
    return True


def mp4_duration(data: bytes) -> int:
    """Seconds from an ISO media file's `mvhd` box (0 when absent or malformed)."""
    at = data.find(b"mvhd")
    if at < 4:
        return 0
    body = data[at + 4 :]
    try:
        version = body[0]
        if version == 1:
            timescale, duration = struct.unpack(">IQ", body[20:32])
        else:
            timescale, duration = struct.unpack(">II", body[12:20])
    except (IndexError, struct.error):
        return 0
    if not timescale:
        return 0
    return round(duration / timescale)


# ---- webhooks -------------------------------------------------------------------------------------------
EGRESS_EVENTS = frozenset({"egress_started", "egress_updated", "egress_ended"})
TRACK_KINDS = {"CAMERA": "video", "MICROPHONE": "audio"}  # track_published sources remembered for TrackComposite


def webhook_event_id(event_id: str, raw: str) -> str:
    """The receipt key of a webhook: LiveKit's id, or a digest of the body when the id is missing or too long."""
    return event_id if 0 < len(event_id) <= 64 else "sha-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def egress_room(egress: dict[str, Any]) -> str:
    """The room of an EgressInfo (JSON, camelCase), as the original read it."""
    for key in ("roomComposite", "trackComposite", "participant", "track", "web"):
        value = egress.get(key)
        if isinstance(value, dict) and value.get("roomName"):
            return str(value["roomName"])
    return str(egress.get("roomName") or "")


def event_room(event: dict[str, Any]) -> str:
    """The room a webhook event is about ("" when none)."""
    room = event.get("room")
    if isinstance(room, dict) and room.get("name"):
        return str(room["name"])
    egress = event.get("egressInfo")
    if isinstance(egress, dict):
        return egress_room(egress)
    return ""


# ---- egress (recording) ---------------------------------------------------------------------------------
ROOM_COMPOSITE_TYPES = frozenset({"RoomCompositeVideoAudio", "RoomCompositeAudio"})
TRACK_COMPOSITE = "TrackComposite"
DEFAULT_RECORD_TYPE = "RoomCompositeVideoAudio"
DEFAULT_PRESET = "H264_720P_30"
PRESETS = frozenset(
    {
        "H264_720P_30",
        "H264_720P_60",
        "H264_1080P_30",
        "H264_1080P_60",
        "PORTRAIT_H264_720P_30",
        "PORTRAIT_H264_720P_60",
        "PORTRAIT_H264_1080P_30",
        "PORTRAIT_H264_1080P_60",
    }
)
EGRESS_BOT_PREFIX = "EG_"  # identities of LiveKit's egress recorders


def preset_or_default(preset: str | None) -> str:
    return preset if preset in PRESETS else DEFAULT_PRESET


def record_file_name(record_type: str, room: str, identity: str, at_ms: int) -> str:
    """The original's names: ``<ms>_RoomComposite_<room>.<mp4|ogg>`` or ``<ms>_TrackComposite_<identity>.mp4``."""
    if record_type == TRACK_COMPOSITE:
        return f"{at_ms}_TrackComposite_{identity}.mp4"
    ext = "ogg" if record_type == "RoomCompositeAudio" else "mp4"
    return f"{at_ms}_RoomComposite_{room}.{ext}"


def record_file_path(service: int, file_name: str) -> str:
    return f"livekit-record/{service}/{file_name}"


def auto_records_on_join(setting: dict[str, Any] | None, participant: dict[str, Any]) -> bool:
    """The intended rule of the original: a participant with metadata (agents, patients; not egress bots) joins
    a room with autoRecord 1 and a RoomComposite record type."""
    if not setting or not participant.get("metadata"):
        return False
    return int(setting.get("autoRecord") or 0) == 1 and setting.get("recordType") in ROOM_COMPOSITE_TYPES


def tracks_composite(setting: dict[str, Any] | None, identity: str) -> bool:
    """Whether a joining identity's camera + microphone are remembered for a TrackComposite egress."""
    if not setting or setting.get("recordType") != TRACK_COMPOSITE:
        return False
    return bool(identity) and not identity.startswith(EGRESS_BOT_PREFIX)


def media_status(egress_status: str) -> str:
    """record_media.status for an ended egress: the original's ``completed`` when a file was written."""
    if egress_status in ("EGRESS_COMPLETE", "EGRESS_LIMIT_REACHED"):
        return "completed"
    return egress_status.removeprefix("EGRESS_").lower() or "completed"


def produced_file(egress_status: str) -> bool:
    return egress_status in ("EGRESS_COMPLETE", "EGRESS_LIMIT_REACHED")


# ---- room settings (conference's room events) -----------------------------------------------------------
def setting_from_event(data: dict[str, Any]) -> dict[str, Any] | None:
    detail = data.get("detail")
    room = data.get("room")
    if not isinstance(detail, dict) or not isinstance(room, str) or not room:
        return None
    setting = dict(detail)
    if setting.get("service") is None and data.get("service") is not None:
        setting["service"] = data["service"]
    setting["status"] = data.get("status") or detail.get("status") or ""
    return setting


# ---- encode jobs ----------------------------------------------------------------------------------------
QUEUED, SENT, FAILED, REMOVED = "queued", "sent", "failed", "removed"  # encode_job.status
ENCODE_FAILED = 2  # record_media.encode


# ---- snapshots (rebuilding other services' read models) ------------------------------------------------------------
def egress_status_of_media(status: str | None, ended: bool) -> str:
    """LiveKit's EgressStatus name for a record_media row: the inverse of media_status (a row not ended yet is
    still active)."""
    if not ended:
        return "EGRESS_ACTIVE"
    if not status or status == "completed":
        return "EGRESS_COMPLETE"
    return "EGRESS_" + status.upper()


def egress_info_of_media(
    egress_id: str, room: str, file_name: str | None, record_type: str | None, service: int | None
) -> dict[str, Any]:
    """The parts of LiveKit's EgressInfo that readers of EgressChanged take: the file as LiveKit names it (the path
    the egress was asked to write, record_file_path, when the room's tenant is known) and the composite kind."""
    info: dict[str, Any] = {"egressId": egress_id, "roomName": room}
    if file_name:
        path = record_file_path(service, file_name) if service is not None and "/" not in file_name else file_name
        info["fileResults"] = [{"filename": path}]
    if record_type in ("RoomCompositeAudio", "RoomCompositeVideoAudio"):
        info["roomComposite"] = {"roomName": room, "audioOnly": record_type == "RoomCompositeAudio"}
    elif record_type == "TrackComposite":
        info["trackComposite"] = {"roomName": room}
    return info
