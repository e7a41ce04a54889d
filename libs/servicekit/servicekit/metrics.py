"""Prometheus metrics of the mechanics every service shares (HTTP, outbox, consumers, request/reply, DB pool,
readiness), served by :func:`servicekit.web.create_app` at ``GET /metrics`` on the service's own port. The edge
routes only the route table's paths, so ``/metrics`` is never reachable from outside.

Services define their own metrics next to what they count (realtime's sockets, link's SMS job, recording's
encode job, webhooks and egresses) on the same default registry.

One process per service (servicekit.serve embeds granian: no worker processes; deploy/local.py, the image's CMD) and
replicas are separate pods scraped one by one, so the default in-process registry is the whole process's and
prometheus-client's multiprocess mode is not needed. Values read from shared state (outbox rows, JetStream consumer
info, egress claims) are refreshed when scraped and are the same on every replica: aggregate them with ``max``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from servicekit.web import Runtime

log = logging.getLogger(__name__)

# Seconds; requests of the hot routes take a few ms, webhooks and uploads up to seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCRAPE_TIMEOUT_SECONDS = 2.0

# ---- HTTP ----------------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "ems_http_requests_total", "HTTP requests answered, by route template", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "ems_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
UNMATCHED = "unmatched"  # the route label of paths no route serves (404/405): raw paths would be unbounded
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})

# ---- outbox, consumers, request/reply --------------------------------------------------------------------
OUTBOX_PENDING = Gauge("ems_outbox_pending_rows", "Outbox rows not yet published to JetStream")
OUTBOX_OLDEST_AGE = Gauge(
    "ems_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row (0 when none)"
)
CONSUMER_PENDING = Gauge(
    "ems_consumer_pending_messages", "Events in the stream not yet delivered to the durable consumer",
    ["stream", "consumer"],
)  # fmt: skip
CONSUMER_ACK_PENDING = Gauge(
    "ems_consumer_ack_pending_messages", "Events delivered to the durable consumer and not yet acknowledged",
    ["stream", "consumer"],
)  # fmt: skip
CONSUMER_REDELIVERIES = Counter(
    "ems_consumer_redeliveries_total", "Events delivered again (an earlier delivery failed or timed out)",
    ["stream", "consumer"],
)  # fmt: skip
CONSUMER_LATENCY = Histogram(
    "ems_consumer_handle_duration_seconds", "Time a durable consumer's handler took for one event",
    ["stream", "consumer"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
CONSUMER_FAILURES = Counter(
    "ems_consumer_failures_total", "Events whose handler failed (redelivered later) or that could not be decoded",
    ["stream", "consumer"],
)  # fmt: skip
RPC_LATENCY = Histogram(
    "ems_rpc_request_duration_seconds", "Request/reply round trips made, by subject (any outcome)", ["subject"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
RPC_ERRORS = Counter(
    "ems_rpc_request_errors_total",
    "Request/reply calls that failed, by subject and code (timeout, unavailable or the responder's code)",
    ["subject", "code"],
)

# ---- database pool, readiness ------------------------------------------------------------------------------
DB_POOL_IN_USE = Gauge("ems_db_pool_connections_in_use", "MySQL pool connections lent out")
DB_POOL_MAX = Gauge("ems_db_pool_connections_max", "MySQL pool size limit")
DB_POOL_WAITS = Counter("ems_db_pool_waits_total", "Acquires that found every pool connection in use and waited")
READY = Gauge("ems_service_ready", "1 when every backing service this one uses answers (as GET /ready)")
DEPENDENCY_UP = Gauge("ems_dependency_up", "1 when the backing service answers", ["dependency"])


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by route template (set by Litestar's router in the scope), method and
    status. Per request: one perf_counter pair, one dict lookup, a counter increment and a histogram observe;
    the labelled children are cached here to skip prometheus-client's label lock on the hot path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when the app fails before answering

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template", UNMATCHED) if "route_handler" in scope else UNMATCHED
            key = (route, scope["method"], status)
            children = self._children.get(key)
            if children is None:
                children = self._child(key)
            children[0].inc()
            children[1].observe(elapsed)

    def _child(self, key: tuple[str, str, int]) -> tuple[Any, Any]:
        route, method, status = key
        labels = (route, method if method in _METHODS else "other", str(status))
        children = (HTTP_REQUESTS.labels(*labels), HTTP_LATENCY.labels(*labels))
        if len(self._children) < 10_000:  # bounded: methods outside _METHODS share one label
            self._children[key] = children
        return children


# ---- refreshed when scraped ----------------------------------------------------------------------------------
ScrapeHook = Callable[["Runtime"], Awaitable[None]]


async def _outbox(runtime: Runtime) -> None:
    assert runtime.db is not None
    row = await runtime.db.fetch_one(
        "SELECT COUNT(*) AS pending, "
        "COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), CURRENT_TIMESTAMP(3)), 0) AS age_us "
        "FROM outbox WHERE published_at IS NULL"
    )
    if row is not None:
        OUTBOX_PENDING.set(int(row["pending"]))
        OUTBOX_OLDEST_AGE.set(max(0, int(row["age_us"])) / 1e6)


async def _consumers(runtime: Runtime) -> None:
    assert runtime.bus is not None
    bus = runtime.bus

    async def one(stream: str, durable: str) -> None:
        info = await bus.js.consumer_info(stream, durable, timeout=SCRAPE_TIMEOUT_SECONDS)
        CONSUMER_PENDING.labels(stream, durable).set(info.num_pending or 0)
        CONSUMER_ACK_PENDING.labels(stream, durable).set(info.num_ack_pending or 0)

    await asyncio.gather(*(one(stream, durable) for stream, durable in bus.consumers))


def _pool(runtime: Runtime) -> None:
    if runtime.db is not None:
        pool = runtime.db.pool
        DB_POOL_IN_USE.set(pool.size - pool.freesize)
        DB_POOL_MAX.set(pool.maxsize)


async def refresh(runtime: Runtime, checks: dict[str, bool], service_hook: ScrapeHook | None) -> None:
    """Set the values read from shared state before a scrape renders them; a part that fails or is slow keeps
    its last value (logged) rather than failing the scrape."""
    READY.set(1 if all(checks.values()) else 0)
    for name, ok in checks.items():
        DEPENDENCY_UP.labels(name).set(1 if ok else 0)
    _pool(runtime)
    hooks: list[ScrapeHook] = []
    if runtime.relay is not None and checks.get("mysql", False):
        hooks.append(_outbox)
    if runtime.bus is not None and checks.get("nats", False):
        hooks.append(_consumers)
    if service_hook is not None:
        hooks.append(service_hook)

    async def bounded(hook: ScrapeHook) -> None:
        try:
            async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
                await hook(runtime)
        except Exception:  # noqa: BLE001 - a scrape shows what it can
            log.warning("metrics refresh failed", extra={"part": getattr(hook, "__name__", "")}, exc_info=True)

    await asyncio.gather(*(bounded(hook) for hook in hooks))


def render(accept: str | None) -> tuple[bytes, str]:
    """The default registry in the format the scraper asked for (text 0.0.4 or OpenMetrics); (body, type)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type
