"""Wiring of the recording service: LiveKit webhooks and egresses, the encode queue, uploads and the media files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from recording import events
from recording.clients.egress import http_url
from recording.events import encode, recorder, webhooks
from recording.events.livekit_nodes import LiveKitNodes, NodeCredentials
from recording.repository.media import MediaDir
from recording.routes import route_handlers
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import Runtime, ServiceSpec, create_app


class RecordingSettings(CommonSettings, kw_only=True):
    # The media directory (uploads/, video-record/, logo/): the shared volume at /data when deployed.
    record_path: str = "./media"
    # Public base URL of the API, prefixed to the URLs of stored files.
    api_url: str = ""
    # Largest accepted file of POST /upload/file (bytes, per file), and of POST /upload/video.
    file_size_limit: int = 50 * 1024 * 1024
    video_size_limit: int = 600 * 1024 * 1024
    # The env default LiveKit node (rooms on node_livekit nodes record on their own node, asked of conference).
    livekit_host: str = ""
    # Most egresses running at once (auto-record and /record/request alike).
    egress_limit: int = 10
    # Base URL of the encode API (POST <ENCODE_API>/record/encode after a recording or upload); "" = none.
    encode_api: str = ""


settings = load_settings(RecordingSettings, service_name="recording")


async def on_startup(runtime: Runtime) -> None:
    media = MediaDir(settings.record_path)
    media.ensure()
    runtime.extras["media"] = media
    runtime.extras["api_url"] = settings.api_url.rstrip("/")
    # Egress calls go to each room's node; webhooks are checked with the secret of the key that signed them.
    default = NodeCredentials(
        http_url(settings.livekit_host.strip()), settings.livekit_api_key, settings.livekit_api_secret
    )
    runtime.extras["livekit_nodes"] = LiveKitNodes(runtime.bus, default)
    await events.start(runtime)
    await encode.start(runtime)
    await encode.requeue_stale(runtime)
    # LiveKit may be slow or down at start-up: reconcile in the background, never delay serving
    runtime.extras["reconcile"] = asyncio.create_task(recorder.reconcile(runtime))


async def on_shutdown(runtime: Runtime) -> None:
    reconcile: asyncio.Task | None = runtime.extras.pop("reconcile", None)
    if reconcile is not None and not reconcile.done():
        reconcile.cancel()
    await encode.stop(runtime)
    nodes: LiveKitNodes | None = runtime.extras.pop("livekit_nodes", None)
    if nodes is not None:
        await nodes.close()


handlers = route_handlers(file_size_limit=settings.file_size_limit, video_size_limit=settings.video_size_limit)
MIGRATIONS = Path(__file__).parent / "migrations"
app = create_app(
    ServiceSpec(
        settings, handlers, MIGRATIONS, on_startup=on_startup, on_shutdown=on_shutdown,
        writers=lambda runtime: {"webhook_writer": webhooks.webhook_writer(runtime)},
        on_scrape=recorder.count_egresses,
    )
)  # fmt: skip
