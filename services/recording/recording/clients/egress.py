"""LiveKit's Egress API (livekit-api's egress client): start, stop and list recordings, bounded by timeouts.

Errors: :class:`EgressFailed` when LiveKit answered a Twirp error (``code``/``msg`` kept for the reply) and
when it is unreachable, 5xx or silent past the bound (``code`` "unavailable").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from google.protobuf.json_format import MessageToDict
from livekit import api
from livekit.protocol import egress as egress_pb

log = logging.getLogger(__name__)

CALL_TIMEOUT = 10.0  # an egress start waits for LiveKit to place the job on an egress worker


class EgressFailed(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg = code, msg

    def body(self) -> dict[str, str]:
        return {"code": self.code, "msg": self.msg}


def info_json(info: egress_pb.EgressInfo) -> dict[str, Any]:
    """EgressInfo as LiveKit's JSON (camelCase, defaults included), as the original's SDK returned it."""
    return MessageToDict(info, always_print_fields_with_no_presence=True)


class EgressClient:
    """One livekit-api client for the node recordings run on (LIVEKIT_HOST and the API key/secret)."""

    def __init__(self, host: str, api_key: str, api_secret: str) -> None:
        self.host = http_url(host.strip())
        self.api_key, self.api_secret = api_key, api_secret
        self._client: api.LiveKitAPI | None = None

    def _api(self) -> api.LiveKitAPI:
        if self._client is None:
            self._client = api.LiveKitAPI(
                self.host,
                self.api_key,
                self.api_secret,
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT),
                failover=False,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _call(self, method: str, request: Any) -> Any:
        if not self.host:
            raise EgressFailed("unavailable", "no LiveKit server configured")
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                return await getattr(self._api().egress, method)(request)
        except TimeoutError as exc:
            raise EgressFailed("unavailable", "LiveKit did not answer in time") from exc
        except api.TwirpError as exc:
            status = getattr(exc, "status", 500) or 500
            code = "unavailable" if status >= 500 else str(exc.code)
            log.warning("LiveKit egress call failed", extra={"method": method, "code": exc.code, "error": exc.message})
            raise EgressFailed(code, exc.message) from exc
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("LiveKit unreachable", extra={"method": method, "error": repr(exc)})
            raise EgressFailed("unavailable", "LiveKit unreachable") from exc

    async def start_room_composite(
        self, room: str, filepath: str, preset: str, audio_only: bool
    ) -> egress_pb.EgressInfo:
        request = egress_pb.RoomCompositeEgressRequest(
            room_name=room,
            layout="grid",
            audio_only=audio_only,
            preset=egress_pb.EncodingOptionsPreset.Value(preset),
            file_outputs=[egress_pb.EncodedFileOutput(file_type=egress_pb.EncodedFileType.MP4, filepath=filepath)],
        )
        return await self._call("start_room_composite_egress", request)

    async def start_track_composite(
        self, room: str, filepath: str, audio_track: str, video_track: str
    ) -> egress_pb.EgressInfo:
        request = egress_pb.TrackCompositeEgressRequest(
            room_name=room,
            audio_track_id=audio_track,
            video_track_id=video_track,
            file_outputs=[egress_pb.EncodedFileOutput(file_type=egress_pb.EncodedFileType.MP4, filepath=filepath)],
        )
        return await self._call("start_track_composite_egress", request)

    async def stop(self, egress_id: str) -> egress_pb.EgressInfo:
        return await self._call("stop_egress", egress_pb.StopEgressRequest(egress_id=egress_id))

    async def list(self, room: str = "", active: bool = False) -> list[egress_pb.EgressInfo]:
        reply = await self._call("list_egress", egress_pb.ListEgressRequest(room_name=room, active=active))
        return list(reply.items)


def http_url(host: str) -> str:
    """Egress speaks HTTP(S); accept the ws(s):// form operators often configure."""
    if host.startswith("wss://"):
        return "https://" + host[6:]
    if host.startswith("ws://"):
        return "http://" + host[5:]
    return host
