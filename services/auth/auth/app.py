"""Wiring of the auth service."""

from __future__ import annotations

from auth.routes import CONTROLLERS
from servicekit.settings import CommonSettings, load_settings
from servicekit.web import ServiceSpec, create_app


class AuthSettings(CommonSettings, kw_only=True):
    # Operator credential for GET /auth/create (header x-api-key); empty: only a valid agent token works.
    auth_api_key: str = ""
    auth_token_ttl_days: int = 30
    auth_token_max_ttl_days: int = 90


settings = load_settings(AuthSettings, service_name="auth")
# No tables, no Redis, nothing published: auth only asks link and conference.
app = create_app(ServiceSpec(settings, CONTROLLERS, uses_db=False, uses_redis=False, publishes_events=False))
