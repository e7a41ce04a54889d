"""The cutover profile: named settings that re-open, for a migration window, what the original gateway left open
and the suite closed. All are off by default (the secure behaviour); README "Cutover from the original" lists
what each one opens.

| setting                   | area           | what it opens                                                   |
|---------------------------|----------------|-----------------------------------------------------------------|
| COMPAT_OPEN_AUTH_CREATE   | ``auth_create``| GET /auth/create without x-api-key or agent token               |
| COMPAT_OPEN_DASHBOARDS    | ``dashboards`` | /newqueue, /queue, /notification sockets, /api/realtime/* views  |
| COMPAT_OPEN_WRITES        | ``writes``     | the state-changing routes the original served without a token   |

A route belongs to an area by its handler's ``opt`` (:func:`opens`); the same mark drives the check
(``Runtime.require_token_unless_compat``) and the start-up warning, so the two cannot drift apart.

A request that carries a *valid* credential is handled as without the profile (its claims are used, nothing is
logged). One that carries none, or an invalid one, is let through only when its area's setting is on, as the
original let it through: the original never read the header on these routes, so a stale or malformed token did
not stop it either, and refusing a bad token while accepting no token would protect nothing. Such a request is
handled as anonymous (no claims are taken from an unverified token) and logged as one WARNING line, so operators
can see who still needs the profile before switching it off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from servicekit.settings import CommonSettings
from servicekit.tokens import MISSING_TOKEN_BODY, TokenRejected

log = logging.getLogger("servicekit.compat")

CompatArea = Literal["auth_create", "dashboards", "writes"]
SETTINGS: dict[str, str] = {
    "auth_create": "COMPAT_OPEN_AUTH_CREATE",
    "dashboards": "COMPAT_OPEN_DASHBOARDS",
    "writes": "COMPAT_OPEN_WRITES",
}
OPT_KEY = "compat"


def opens(area: CompatArea) -> dict[str, str]:
    """Route-handler ``opt`` marking the route as one that the setting of ``area`` re-opens."""
    return {OPT_KEY: area}


def is_open(settings: CommonSettings, area: str) -> bool:
    return bool(getattr(settings, f"compat_open_{area}", False))


def client_address(real_ip: str | None, forwarded_for: str | None, peer: str | None) -> str:
    """Who sent the request: the edge's X-Real-IP (its own peer, not client-supplied), else the first
    X-Forwarded-For hop (a gateway without X-Real-IP), else the TCP peer."""
    if real_ip and real_ip.strip():
        return real_ip.strip()
    if forwarded_for:
        first = forwarded_for.split(",")[0].strip()
        if first:
            return first
    return peer or "unknown"


def rejection(exc: TokenRejected) -> str:
    """Why the request has no valid credential, for the use line: ``missing`` or ``invalid: <reason>``."""
    if exc.body == MISSING_TOKEN_BODY:
        return "missing"
    if exc.status_code == 403:
        return "not an agent token"
    data = exc.body.get("data")
    return f"invalid: {data.get('message') if isinstance(data, dict) else 'rejected'}"


def log_use(area: str, route: str, client: str, credential: str, forwarded_for: str | None = None) -> None:
    """One line per request that got through only because of the area's setting."""
    extra: dict[str, Any] = {"setting": SETTINGS[area], "route": route, "client": client, "credential": credential}
    if forwarded_for:
        extra["forwarded_for"] = forwarded_for  # the whole chain: its first hop is client-supplied
    log.warning("compat: answered without a valid credential", extra=extra)


_PATH_PARAM = re.compile(r"\{(\w+):\w+\}")


def handler_routes(routes: Iterable[Any]) -> dict[str, list[str]]:
    """``area -> ["METHOD /path", ...]`` of the Litestar routes whose handlers are marked with :func:`opens`."""
    found: dict[str, list[str]] = {}
    for route in routes:
        for handler in getattr(route, "route_handlers", ()):
            area = (getattr(handler, "opt", None) or {}).get(OPT_KEY)
            if area is None:
                continue
            path = _PATH_PARAM.sub(r"{\1}", route.path)
            for method in sorted(handler.http_methods):
                found.setdefault(area, []).append(f"{method} {path}")
    return {area: sorted(set(names)) for area, names in found.items()}


def announce(settings: CommonSettings, routes: Mapping[str, Iterable[str]]) -> None:
    """At start-up: a WARNING per setting that is on, naming what it opens in this service."""
    for area, setting in SETTINGS.items():
        names = sorted(routes.get(area, ()))
        if is_open(settings, area) and names:
            log.warning(
                f"{setting} is on: {', '.join(names)} answer without a credential (cutover profile; "
                "switch it off once the use lines stop)",
                extra={"setting": setting, "routes": names},
            )
