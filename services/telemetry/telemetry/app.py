"""Wiring of the telemetry service: the radio proxy routes, GET /car/list and the data_log consumer (issue 6,
first slice). The other car task, stats and log routes (deploy/routes.toml, state "planned") are not served yet."""

from __future__ import annotations

from pathlib import Path

from servicekit.settings import CommonSettings, load_settings
from servicekit.web import Runtime, ServiceSpec, create_app
from telemetry import events
from telemetry.api import CarController, RadioController
from telemetry.radio_client import RadioClient


class TelemetrySettings(CommonSettings, kw_only=True):
    # The third-party radio location API (GET /radio/*): base URL without trailing slash, HTTP Basic auth.
    radio_location_api_url: str = ""
    radio_location_api_credentials_username: str = ""
    radio_location_api_credentials_password: str = ""
    radio_location_api_timeout_seconds: float = 10.0


settings = load_settings(TelemetrySettings, service_name="telemetry")


async def on_startup(runtime: Runtime) -> None:
    runtime.extras["radio"] = RadioClient(
        settings.radio_location_api_url,
        settings.radio_location_api_credentials_username,
        settings.radio_location_api_credentials_password,
        settings.radio_location_api_timeout_seconds,
    )
    events.start(runtime)


async def on_shutdown(runtime: Runtime) -> None:
    client = runtime.extras.pop("radio", None)
    if client is not None:
        await client.close()


app = create_app(
    ServiceSpec(
        settings=settings,
        route_handlers=[RadioController, CarController],
        migrations=Path(__file__).parent / "migrations",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        title="telemetry",
    )
)
