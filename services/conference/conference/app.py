"""Wiring of the conference service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from conference import events
from conference.clients import LiveKitNodes
from conference.events.rooms import Conference
from conference.routes import CONTROLLERS
from servicekit.schedule import Scheduler
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import Runtime, ServiceSpec, create_app


class ConferenceSettings(CommonSettings, kw_only=True):
    # The default LiveKit node (used when node_livekit is empty); "" = no LiveKit server calls, tokens only.
    livekit_host: str = ""
    # Room lifetime: days ("1") or hours ("24H").
    room_day_default_timeout: str = "1"
    # How long the node_livekit table is cached: changes to it are seen within this many seconds.
    livekit_node_cache_seconds: float = 30.0
    # The expiry sweep (every 30 min, GET /room/checkexpired): "false" or "" turns it off, as in the original.
    auto_close_room: str = "true"
    # GET /room/verifytoken's secret when it differs from LIVEKIT_API_SECRET (the original's SECRET_KEY).
    secret_key: str = ""
    # Public base URL of the API: GET /room/picture answers file URLs as <API_URL><files.url>.
    api_url: str = ""


def load_conference_settings(environ: dict[str, str] | None = None) -> ConferenceSettings:
    env = os.environ if environ is None else environ
    settings = load_settings(ConferenceSettings, env, service_name="conference")
    if not settings.livekit_host.strip() and env.get("LIVEKIT_URL", "").strip():
        settings = load_settings(ConferenceSettings, env, service_name="conference", livekit_host=env["LIVEKIT_URL"])
    return settings


settings = load_conference_settings()
MIGRATIONS = Path(__file__).parent / "migrations"


async def on_startup(runtime: Runtime) -> None:
    assert runtime.db is not None
    nodes = LiveKitNodes(
        runtime.db,
        settings.livekit_host,
        settings.livekit_api_key,
        settings.livekit_api_secret,
        cache_seconds=settings.livekit_node_cache_seconds,
    )
    conference = Conference(runtime.db, nodes, settings.room_day_default_timeout)
    runtime.extras["conference"] = conference
    await events.serve_requests(runtime, conference)
    events.consumers.start(runtime, nodes)
    await events.rebuild.serve(runtime, nodes)


def schedule(scheduler: Scheduler, runtime: Runtime) -> None:
    assert runtime.db is not None
    events.jobs.schedule(scheduler, runtime.db, runtime.extras["conference"].nodes, settings.auto_close_room)


async def on_shutdown(runtime: Runtime) -> None:
    conference: Conference | None = runtime.extras.get("conference")
    if conference is not None:
        await conference.nodes.close()


def writers(runtime: Runtime) -> dict[str, Any]:
    """The group commit of chat messages (rpc.conference.chat.store)."""
    assert runtime.db is not None
    return {"chat_writer": events.chat.chat_writer(runtime.db)}


app = create_app(
    ServiceSpec(
        settings, CONTROLLERS, MIGRATIONS, on_startup=on_startup, on_shutdown=on_shutdown, schedule=schedule,
        writers=writers,
    )
)  # fmt: skip
