"""The route table (deploy/routes.toml) as data, and how each route maps to an edge location."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "routes.toml"


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    path: str
    service: str
    state: str
    websocket: bool = False
    max_body: str = ""

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

    def routes_of(self, service: str) -> list[Route]:
        return [r for r in self.routes if r.service == service]


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
        )
        for item in data["route"]
    )
    ports = {name: int(port) for name, port in data["services"].items()}
    unknown = {r.service for r in routes} - set(ports)
    if unknown:
        raise ValueError(f"routes name services without a port: {sorted(unknown)}")
    return RouteTable(edge_port=int(data["edge"]["port"]), service_ports=ports, routes=routes)
