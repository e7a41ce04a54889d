"""The encode API: after a recording or an upload, ``POST <ENCODE_API>/record/encode`` ``{"recordId": id,
"hls": true}`` asks it to encode a record_media row (sent and retried by recording.events.encode)."""

from __future__ import annotations

import httpx

from servicekit.jobs import NotConfigured


def encode_request(client: httpx.AsyncClient, encode_api: str, record_id: int) -> httpx.Request:
    base = encode_api.rstrip("/")
    if not base:
        raise NotConfigured("ENCODE_API is not set")
    return client.build_request("POST", f"{base}/record/encode", json={"recordId": record_id, "hls": True})
