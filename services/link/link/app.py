"""Wiring of the link service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from link import domain, events
from link.events import jobs, positions, readmodels, rebuild, sms, tasks
from link.repository.usage import usage_writer
from link.routes import CONTROLLERS, links
from servicekit.batching import GroupCommit
from servicekit.schedule import Scheduler
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import Runtime, ServiceSpec, create_app


class LinkSettings(CommonSettings, kw_only=True):
    # Alphabet of link IDs and random room names (the original's sample: Latin letters without N/n).
    custom_charset: str = domain.links.DEFAULT_CHARSET
    # Default lifetime of a link: days (`1`) or hours (`24H`).
    room_day_default_timeout: str = "1"
    # Domain(s) of link types without a tenant domain (comma-separated; the first is used).
    my_webui_video_domain: str = ""
    # SMS gateway: sending switched on (off: messages are recorded as `disabled`), its URL and API key.
    sms_enable: bool = False
    sms_api_url: str = ""
    sms_api_key: str = ""
    # Public base URL of the API: tenant logos are answered as <API_URL>/logo/<file>.
    api_url: str = ""


async def on_startup(runtime: Runtime) -> None:
    await events.serve(runtime)
    runtime.extras["palette"] = await readmodels.start(runtime)
    await rebuild.serve(runtime)
    assert runtime.db is not None
    await sms.start(runtime)
    await sms.requeue_stale(runtime)
    await tasks.start(runtime)


def writers(runtime: Runtime) -> dict[str, GroupCommit[Any, Any]]:
    """The group commits of the hot writes: getdetail's usage rows and POST /link/update/latlng."""
    assert runtime.db is not None
    return {"usage": usage_writer(runtime.db), "positions": positions.position_writer(runtime.db)}


def schedule(scheduler: Scheduler, runtime: Runtime) -> None:
    assert runtime.db is not None
    jobs.schedule(scheduler, runtime.db)


async def on_shutdown(runtime: Runtime) -> None:
    await sms.stop(runtime)


settings = load_settings(LinkSettings, service_name="link")
app = create_app(
    ServiceSpec(
        settings, CONTROLLERS, Path(__file__).parent / "migrations", on_startup=on_startup, on_shutdown=on_shutdown,
        schedule=schedule, writers=writers, openapi_paths=links.DETAIL_OPENAPI,
    )
)  # fmt: skip
