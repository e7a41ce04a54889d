"""Wiring of the recording service: LiveKit webhooks, uploads and the media files (RECORD_PATH)."""

from __future__ import annotations

from pathlib import Path

from recording.media import MediaDir
from recording.uploads import build_controllers
from recording.webhooks import WebhookController
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


settings = load_settings(RecordingSettings, service_name="recording")


async def on_startup(runtime: Runtime) -> None:
    media = MediaDir(settings.record_path)
    media.ensure()
    runtime.extras["media"] = media
    runtime.extras["api_url"] = settings.api_url.rstrip("/")


app = create_app(
    ServiceSpec(
        settings=settings,
        route_handlers=[
            WebhookController,
            *build_controllers(file_size_limit=settings.file_size_limit, video_size_limit=settings.video_size_limit),
        ],
        migrations=Path(__file__).parent / "migrations",
        on_startup=on_startup,
        title="recording",
    )
)
