"""Wiring of the link service."""

from __future__ import annotations

from pathlib import Path

from link import domain, events
from link.routes import CONTROLLERS
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import Runtime, ServiceSpec, create_app


class LinkSettings(CommonSettings, kw_only=True):
    # Alphabet of link IDs and random room names (the original's sample: Latin letters without N/n).
    custom_charset: str = domain.DEFAULT_CHARSET
    # Default lifetime of a link: days (`1`) or hours (`24H`).
    room_day_default_timeout: str = "1"
    # Domain(s) of link types without a tenant domain (comma-separated; the first is used).
    my_webui_video_domain: str = ""


async def on_startup(runtime: Runtime) -> None:
    await events.serve(runtime)


settings = load_settings(LinkSettings, service_name="link")
app = create_app(
    ServiceSpec(
        settings=settings,
        route_handlers=CONTROLLERS,
        migrations=Path(__file__).parent / "migrations",
        on_startup=on_startup,
        title="link",
    )
)
