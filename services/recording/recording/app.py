"""Wiring of the recording service. Its routes (see deploy/routes.toml, state "planned") land with its own issue;
until then the edge already routes its paths here and it answers them with the envelope's 404."""

from __future__ import annotations

from pathlib import Path

from servicekit.settings import CommonSettings, load_settings
from servicekit.web import ServiceSpec, create_app


class RecordingSettings(CommonSettings, kw_only=True):
    pass


settings = load_settings(RecordingSettings, service_name="recording")
app = create_app(
    ServiceSpec(
        settings=settings,
        route_handlers=[],
        migrations=Path(__file__).parent / "migrations",
        title="recording",
    )
)
