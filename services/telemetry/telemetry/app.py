"""Wiring of the telemetry service: the radio proxy routes, the car task routes (GET /car/list, POST/GET/PUT
/car/task) with their NATS requests and link read model, the data_log consumer (issue 6) and the statistics
read model (/stats/*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servicekit.settings import CommonSettings, load_settings
from servicekit.web import Runtime, ServiceSpec, create_app
from telemetry import events
from telemetry.clients import RadioClient
from telemetry.events import requests
from telemetry.routes import CONTROLLERS


class TelemetrySettings(CommonSettings, kw_only=True):
    # The third-party radio location API (GET /radio/*): base URL without trailing slash, HTTP Basic auth.
    radio_location_api_url: str = ""
    radio_location_api_credentials_username: str = ""
    radio_location_api_credentials_password: str = ""
    radio_location_api_timeout_seconds: float = 10.0
    # GET /car/task answers the crew app's socket URL: API_URL with http -> ws, + /mobile?task=<uid>.
    api_url: str = "http://localhost:5500"
    # Alphabet of task uids (the original's CUSTOM_CHARSET).
    custom_charset: str = ""


settings = load_settings(TelemetrySettings, service_name="telemetry")


async def on_startup(runtime: Runtime) -> None:
    runtime.extras["radio"] = RadioClient(
        settings.radio_location_api_url,
        settings.radio_location_api_credentials_username,
        settings.radio_location_api_credentials_password,
        settings.radio_location_api_timeout_seconds,
    )
    await events.start(runtime)


async def on_shutdown(runtime: Runtime) -> None:
    client = runtime.extras.pop("radio", None)
    if client is not None:
        await client.close()


MIGRATIONS = Path(__file__).parent / "migrations"


def writers(runtime: Runtime) -> dict[str, Any]:
    """The group commit of the crews' positions (RPC_TASK_LOCATION)."""
    assert runtime.db is not None
    return {"task_positions": requests.task_position_writer(runtime.db)}


app = create_app(
    ServiceSpec(settings, CONTROLLERS, MIGRATIONS, on_startup=on_startup, on_shutdown=on_shutdown, writers=writers)
)
