"""The route table (deploy/routes.toml) as data, and how each route maps to an edge location."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "routes.toml"

# Who may call an operation. Each operation of the route table declares one (``policy``); the OpenAPI generator
# checks it against what the handler enforces, tests/flows/test_authz_matrix.py against what the edge answers.
POLICIES: dict[str, str] = {
    "open": "no credential",
    "link": "a link's own credential in the request (its link id, a car task's uid, a link password); no token",
    "token": "a valid bearer token: an agent token or a participant token (of any room)",
    "room": "an agent token, or a participant token of the room the request names; another room's: 403",
    "agent": "an agent token (valid, not bound to a room); a participant token of a room: 403",
    "operator": "the operator key (`x-api-key`) or an agent token; otherwise 401",
    "livekit": "LiveKit's webhook signature (`Authorization`); otherwise 401",
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_RATE = re.compile(r"^[1-9][0-9]*r/[sm]$")


@dataclass(frozen=True)
class RateLimit:
    """An nginx ``limit_req`` zone: ``rate`` (``10r/s``, ``5r/m``) per client address, ``burst`` over it."""

    rate: str
    burst: int

    @classmethod
    def parse(cls, text: str, default: RateLimit | None = None) -> RateLimit:
        """``"<rate>[,<burst>]"`` (a setting's value); the burst defaults to ``default``'s."""
        rate, _, burst = text.strip().partition(",")
        limit = cls(rate.strip(), int(burst) if burst.strip() else (default.burst if default else 0))
        limit.validate()
        return limit

    def validate(self) -> None:
        if not _RATE.match(self.rate) or self.burst < 0:
            raise ValueError(f"bad rate limit {self.rate!r} burst {self.burst}: e.g. 10r/s, burst >= 0")


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    path: str
    service: str
    state: str
    websocket: bool = False
    max_body: str = ""
    policies: dict[str, str] = field(default_factory=dict, hash=False, compare=False)  # method -> policy
    destructive: bool = False  # a GET that changes state
    # Engine.IO's long-polling: its POST carries Socket.IO packets, and each namespace checks its own credential at
    # connect (realtime), so the transport itself is open without being a state-changing operation.
    transport: bool = False
    rate_limit: str = ""  # a zone of RouteTable.rate_limits

    def policy(self, method: str) -> str:
        return self.policies[method.upper()]

    def is_destructive(self, method: str) -> bool:
        if self.transport and method.upper() == "POST":
            return False
        return method.upper() not in SAFE_METHODS or self.destructive

    @property
    def is_prefix(self) -> bool:
        return self.path.endswith("/*") or "/:" in self.path

    @property
    def location(self) -> str:
        """The path the edge matches: exact path, or the prefix before a wildcard or ``:param`` segment."""
        if self.path.endswith("/*"):
            return self.path[:-1]
        if "/:" in self.path:
            return self.path[: self.path.index("/:") + 1]
        return self.path

    def sample_path(self) -> str:
        """A concrete path under this route (for tests that probe the edge)."""
        path = self.path.replace("/*", "/sample")
        return "/".join("1" if part.startswith(":") else part for part in path.split("/"))


@dataclass(frozen=True)
class RouteTable:
    edge_port: int
    service_ports: dict[str, int]
    routes: tuple[Route, ...]
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)

    def routes_of(self, service: str) -> list[Route]:
        return [r for r in self.routes if r.service == service]


def _policies(item: dict[str, object]) -> dict[str, str]:
    """method -> policy of a route entry: ``policy = "x"`` for every method, or ``policy = { GET = "x", ... }``."""
    methods = [str(m).upper() for m in item["methods"]]  # type: ignore[attr-defined]
    declared = item.get("policy")
    if declared is None:
        raise ValueError(f"{item['path']}: no policy (one of {', '.join(POLICIES)})")
    found = (
        {m: str(declared) for m in methods}
        if isinstance(declared, str)
        else {
            str(k).upper(): str(v)
            for k, v in dict(declared).items()  # type: ignore[call-overload]
        }
    )
    if sorted(found) != sorted(methods):
        raise ValueError(f"{item['path']}: policies of {sorted(found)}, methods {sorted(methods)}")
    unknown = sorted(set(found.values()) - set(POLICIES))
    if unknown:
        raise ValueError(f"{item['path']}: unknown policy {unknown} (one of {', '.join(POLICIES)})")
    return found


def problems(table: RouteTable) -> list[str]:
    """What the table must never say: a destructive operation open, a limit naming no zone."""
    found = []
    for route in table.routes:
        for method in route.methods:
            if route.is_destructive(method) and route.policy(method) == "open":
                found.append(f"{method} {route.path} changes state and is open")
        if route.rate_limit and route.rate_limit not in table.rate_limits:
            found.append(f"{route.path}: rate_limit {route.rate_limit!r} is not a zone of [rate_limits]")
    return found


def load(path: Path = TABLE) -> RouteTable:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    routes = tuple(
        Route(
            methods=tuple(item["methods"]),
            path=item["path"],
            service=item["service"],
            state=item.get("state", "planned"),
            websocket=bool(item.get("websocket", False)),
            max_body=str(item.get("max_body", "")),
            policies=_policies(item),
            destructive=bool(item.get("destructive", False)),
            transport=bool(item.get("transport", False)),
            rate_limit=str(item.get("rate_limit", "")),
        )
        for item in data["route"]
    )
    ports = {name: int(port) for name, port in data["services"].items()}
    unknown = {r.service for r in routes} - set(ports)
    if unknown:
        raise ValueError(f"routes name services without a port: {sorted(unknown)}")
    limits = {
        name: RateLimit(str(spec["rate"]), int(spec.get("burst", 0))) for name, spec in data["rate_limits"].items()
    }
    for limit in limits.values():
        limit.validate()
    table = RouteTable(edge_port=int(data["edge"]["port"]), service_ports=ports, routes=routes, rate_limits=limits)
    wrong = problems(table)
    if wrong:
        raise ValueError("deploy/routes.toml: " + "; ".join(wrong))
    return table
