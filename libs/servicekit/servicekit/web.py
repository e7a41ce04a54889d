"""The HTTP frame every service shares: envelope errors, body/query parsing, health and readiness, request ids,
JSON access logs, OpenAPI at ``/schema``, and a lifespan that opens and drains the service's connections."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import PathItem
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis

from servicekit import compat, metrics
from servicekit.batching import GroupCommit
from servicekit.bus import Bus, OutboxRelay
from servicekit.cors import CorsMiddleware, CorsPolicy
from servicekit.db import Database, migrate, server_unreachable
from servicekit.logs import request_id, setup_logging
from servicekit.schedule import Scheduler
from servicekit.settings import CommonSettings
from servicekit.tokens import TokenRejected, bearer_token, is_agent_token, not_an_agent, verify_token

log = logging.getLogger("servicekit.web")
T = TypeVar("T")


# ---- the original's envelope -----------------------------------------------------------------------------
class ApiError(Exception):
    """Answer ``body`` with ``status_code``; by default the original's ``{"status":"FAIL","message":...}``."""

    def __init__(self, message: str, status_code: int = 400, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body if body is not None else {"status": "FAIL", "message": message}


def fail(message: str, status_code: int = 400, **extra: Any) -> ApiError:
    return ApiError(message, status_code, {"status": "FAIL", "message": message, **extra})


def _on_api_error(_: Request, exc: ApiError) -> Response:
    if isinstance(exc.body, str):
        # Express's res.send(text): text/html; charset=utf-8 (Litestar adds the charset itself)
        return Response(exc.body, status_code=exc.status_code, media_type="text/html")
    return Response(exc.body, status_code=exc.status_code)


def _on_token_rejected(_: Request, exc: TokenRejected) -> Response:
    # The original answered auth failures with HTTP 200; a room-bound token where an agent's is needed: 403.
    return Response(exc.body, status_code=exc.status_code)


def _on_http_error(_: Request, exc: HTTPException) -> Response:
    message = exc.detail or "Error"
    if isinstance(exc, ValidationException) and exc.extra:
        message = f"{message}: {exc.extra}"
    # exc.headers: e.g. a 405's Allow (the methods the path serves)
    return Response({"status": "FAIL", "message": message}, status_code=exc.status_code, headers=exc.headers)


def _on_unexpected(request: Request, exc: Exception) -> Response:
    if server_unreachable(exc):
        # MariaDB down, stalled or restarting: nothing was acknowledged, and the same request may succeed in a
        # moment (or on another instance); 503 says so, where a 500 would say the request itself broke something.
        log.warning("database unreachable", extra={"path": request.url.path, "error": str(exc)})
        return Response({"status": "FAIL", "message": "Service Unavailable"}, status_code=503,
                        headers={"Retry-After": "1"})  # fmt: skip
    log.exception("unhandled error", extra={"path": request.url.path})
    return Response({"status": "FAIL", "message": "Internal Server Error"}, status_code=500)


# ---- input parsing -----------------------------------------------------------------------------------------
def _convert(raw: Any, schema: type[T]) -> T:
    try:
        return msgspec.convert(raw, schema, strict=False)
    except msgspec.ValidationError as exc:
        raise fail(f"Invalid parameter: {exc}") from exc


async def parse_body(request: Request, schema: type[T]) -> T:
    """JSON or form body (the original accepted both) validated into ``schema``; 400 envelope otherwise."""
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in content_type or "multipart/form-data" in content_type:
        form = await request.form()
        raw: Any = {key: form.get(key) for key in form}
    else:
        body = await request.body()
        try:
            body.decode("utf-8")  # strict: msgspec lets a UTF-8-encoded lone surrogate through
            raw = msgspec.json.decode(body) if body.strip() else {}
        except (UnicodeDecodeError, msgspec.DecodeError) as exc:
            raise fail("Invalid JSON body") from exc
    if not isinstance(raw, dict):
        raise fail("Invalid JSON body: an object is expected")
    return _convert(raw, schema)


def parse_query(request: Request, schema: type[T]) -> T:
    return _convert(dict(request.query_params), schema)


# ---- runtime: the connections a service holds ------------------------------------------------------------
@dataclass
class Runtime:
    settings: CommonSettings
    db: Database | None = None
    redis: Redis | None = None
    bus: Bus | None = None
    relay: OutboxRelay | None = None
    scheduler: Scheduler | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    background: list[asyncio.Task[Any]] = field(default_factory=list)

    def require_token(self, request: Request) -> dict[str, Any]:
        """Claims of the request's LiveKit bearer token, or the original's FAIL answer."""
        return verify_token(bearer_token(request.headers.get("authorization")), self.settings.livekit_api_secret)

    def require_token_unless_compat(self, request: Request) -> dict[str, Any] | None:
        """Claims of a valid bearer token; ``None`` (anonymous, as in the original) when there is no valid one but
        the route's cutover setting is on (see servicekit.compat); else the original's FAIL answer."""
        try:
            return self.require_token(request)
        except TokenRejected as exc:
            if self.compat_allows(request, compat.rejection(exc)):
                return None
            raise

    def require_agent_token(self, request: Request) -> dict[str, Any]:
        """Claims of a valid agent token (not bound to a room); a room-bound one: 403 ``Forbidden``."""
        claims = self.require_token(request)
        if not is_agent_token(claims):
            raise not_an_agent()
        return claims

    def require_agent_token_unless_compat(self, request: Request) -> dict[str, Any] | None:
        """:meth:`require_agent_token`, or ``None`` (anonymous) when the route's cutover setting is on."""
        try:
            return self.require_agent_token(request)
        except TokenRejected as exc:
            if self.compat_allows(request, compat.rejection(exc)):
                return None
            raise

    def require_room(self, claims: dict[str, Any] | None, room: str | None) -> None:
        """A participant token works only for its own room: a room-bound token (``video.room``) naming another
        room than the request's gets 403 ``Forbidden``. Agent tokens (no room) and anonymous requests let through
        by a cutover setting (``claims`` None) pass."""
        if claims is None or is_agent_token(claims):
            return
        if claims["video"]["room"] != room:
            raise not_an_agent()

    def compat_allows(self, request: Request, credential: str) -> bool:
        """Whether the route's cutover setting lets a request without a valid ``credential`` through; logs the
        use when it does. A route is in an area only by its handler's ``opt`` (``compat.opens``)."""
        area = request.route_handler.opt.get(compat.OPT_KEY)
        if area is None or not compat.is_open(self.settings, area):
            return False
        headers = request.headers
        forwarded_for = headers.get("x-forwarded-for")
        client = compat.client_address(
            headers.get("x-real-ip"), forwarded_for, request.client.host if request.client else None
        )
        compat.log_use(area, f"{request.method} {request.url.path}", client, credential, forwarded_for)
        return True


def provide_runtime(state: State) -> Runtime:
    return state.runtime


@dataclass
class ServiceSpec:
    """What a service declares; :func:`create_app` wires the rest the same way for every service."""

    settings: CommonSettings
    route_handlers: Sequence[Any]
    migrations: Path | None = None
    uses_db: bool = True
    uses_redis: bool = True
    uses_bus: bool = True
    publishes_events: bool = True
    on_startup: Callable[[Runtime], Awaitable[None]] | None = None
    on_shutdown: Callable[[Runtime], Awaitable[None]] | None = None
    # Periodic jobs (run once across replicas, servicekit.schedule): registered after on_startup, stopped first.
    schedule: Callable[[Scheduler, Runtime], None] | None = None
    # Group commits of the hot writes (servicekit.batching), by name: in runtime.extras before on_startup runs, and
    # once the server stops taking requests, drained (every queued write committed) before anything else stops.
    writers: Callable[[Runtime], Mapping[str, GroupCommit[Any, Any]]] | None = None
    title: str = ""  # of the OpenAPI document; the service's name when empty
    # Routes served by bare ASGI handlers (hot paths), which Litestar leaves out of the OpenAPI document.
    openapi_paths: Mapping[str, PathItem] = field(default_factory=dict)
    # What a cutover setting opens beyond the marked HTTP routes (e.g. Socket.IO namespaces), for the start-up
    # warning: area -> names.
    compat_extra: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # Sets the service's own metrics that are read from shared state (e.g. rows of its tables) before a scrape.
    on_scrape: Callable[[Runtime], Awaitable[None]] | None = None


async def _check(name: str, probe: Callable[[], Awaitable[Any]]) -> tuple[str, bool]:
    try:
        async with asyncio.timeout(1.5):
            await probe()
        return name, True
    except Exception:
        return name, False


# ---- graceful shutdown ------------------------------------------------------------------------------------
class Drain:
    """Whether this process is draining: SIGTERM came, it still serves, it will stop taking requests soon.

    Why: the server stops listening and closes idle keep-alive connections at once on SIGTERM; a proxy that sent a
    request on such a connection at that moment gets a reset, and nginx does not resend a POST it has sent
    (rightly: it cannot know it was not handled), so it answers 502. Draining first, /ready says 503 (Kubernetes,
    and any balancer probing it, stops routing here) and every answer closes its connection (DrainMiddleware), so
    the proxy's pooled connections to this instance are used up without a race; then the server's own shutdown
    runs (in-flight requests finish, the lifespan's shutdown drains the writers and the outbox). servicekit.serve
    starts it on the first SIGTERM/SIGINT and stops the server ``seconds`` later (SHUTDOWN_DRAIN_SECONDS, set by
    create_app); a second signal stops at once."""

    since: float | None = None
    seconds: float = 0.0

    def begin(self) -> float:
        """Start draining; returns how long to keep serving (0: stop now, as on a second signal)."""
        if self.since is not None:
            return 0.0
        self.since = time.monotonic()
        if self.seconds > 0:
            log.info("draining before shutdown", extra={"seconds": self.seconds})
        return self.seconds


DRAIN = Drain()


class DrainMiddleware:
    """While draining, every HTTP answer carries ``Connection: close``: the proxy closes that connection after it
    rather than pooling it (nginx honours it), and the next request opens one to another instance or, until the
    drain ends, to this one. Decided when the answer starts, so requests in flight when the drain began close
    their connections too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def closing(message: Any) -> None:
            if DRAIN.since is not None and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)


def health_handlers(service: str) -> list[Any]:
    @get("/health", include_in_schema=True, tags=["ops"], sync_to_thread=False)
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "OK", "service": service}

    @get("/ready", tags=["ops"])
    async def ready(runtime: Runtime) -> Response:
        """Readiness: every backing service this one uses answers, and the instance is not shutting down."""
        results = await readiness(runtime)
        ok = all(results.values()) and DRAIN.since is None
        body: dict[str, Any] = {"status": "OK" if ok else "FAIL", "service": service, "checks": results}
        if DRAIN.since is not None:
            body["draining"] = True
        return Response(body, status_code=200 if ok else 503)

    return [health, ready]


async def readiness(runtime: Runtime) -> dict[str, bool]:
    """Whether each backing service this one uses answers (GET /ready, and ``ems_service_ready``)."""
    probes: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    if runtime.db:
        probes.append(("mysql", runtime.db.ping))
    if runtime.redis:
        probes.append(("redis", runtime.redis.ping))
    if runtime.bus:
        bus = runtime.bus

        async def nats_ok() -> None:
            if not bus.connected:
                raise ConnectionError("nats disconnected")
            await bus.nc.flush(timeout=1)

        probes.append(("nats", nats_ok))
    return dict(await asyncio.gather(*(_check(n, p) for n, p in probes)))


def metrics_handler(on_scrape: Callable[[Runtime], Awaitable[None]] | None) -> Any:
    @get("/metrics", include_in_schema=False)
    async def scrape(request: Request, runtime: Runtime) -> Response:
        """Prometheus metrics (servicekit.metrics): on the service's own port only; the edge never routes it."""
        await metrics.refresh(runtime, await readiness(runtime), on_scrape)
        body, content_type = metrics.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return scrape


DRAIN_LIMIT = 64 * 1024 * 1024


async def _drain_body(receive: Receive) -> None:
    """Read and drop what is left of a refused body before answering 413: a server that answers while the client
    is still sending closes the connection under it, and the client sees a reset instead of the envelope."""
    drained = 0
    while drained <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RequestContextMiddleware:
    """Request id (``X-Request-ID`` in and out) and one JSON access-log line per request (at DEBUG level)."""

    def __init__(self, app: ASGIApp, service: str, access_log: bool) -> None:
        self.app = app
        self.service = service.encode()
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                rid = value.decode("latin-1")[:64]
                break
        rid = rid or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0
        body_read = False

        async def receive_wrapper() -> Any:
            nonlocal body_read
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True
            return message

        async def send_wrapper(message: Any) -> None:
            nonlocal status, body_read
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
                if not body_read:
                    # An answer before the body was read (a refusal, a wrong content type): read the rest first,
                    # else the proxy still sending it sees a reset and answers 502 instead of this answer.
                    body_read = True
                    await _drain_body(receive)
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            if self.access_log:
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            request_id.reset(token)


def create_app(spec: ServiceSpec) -> Litestar:
    settings = spec.settings
    setup_logging(settings.service_name, settings.log_level)
    DRAIN.seconds = settings.shutdown_drain_seconds
    runtime = Runtime(settings=settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.runtime = runtime
        setup_logging(settings.service_name, settings.log_level)  # again: the server may reset logging
        if spec.uses_db:
            runtime.db = await Database.connect(settings)
            await migrate(runtime.db, spec.migrations)
        if spec.uses_redis:
            runtime.redis = Redis.from_url(settings.redis_dsn, decode_responses=True)
        if spec.uses_bus:
            runtime.bus = await Bus.connect(
                settings.nats_url, settings.service_name, settings.nats_stream_replicas, settings.nats_ack_wait_seconds
            )
            if spec.publishes_events:
                await runtime.bus.ensure_stream()
                if runtime.db:
                    runtime.relay = OutboxRelay(runtime.db, runtime.bus)
                    runtime.relay.start()
        writers = spec.writers(runtime) if spec.writers else {}
        for name, writer in writers.items():
            writer.start()
            runtime.extras[name] = writer
        if spec.on_startup:
            await spec.on_startup(runtime)
        if spec.schedule and settings.scheduled_jobs:
            assert runtime.redis is not None, "scheduled jobs need the service's Redis"
            runtime.scheduler = Scheduler(runtime.redis, settings.service_name)
            spec.schedule(runtime.scheduler, runtime)
            runtime.scheduler.start()
        opened = compat.handler_routes(app.routes)
        for area, names in spec.compat_extra.items():
            opened[area] = [*opened.get(area, []), *names]
        compat.announce(settings, opened)
        if spec.openapi_paths:  # built once here, before the first request renders it
            schema = app.openapi_schema
            schema.paths = {**(schema.paths or {}), **spec.openapi_paths}
        # What start-up allocated (modules, routes, pools) lives as long as the process: moved out of the
        # collector's view, so its collections walk only what requests allocate. The young generation is
        # collected every 10,000 net allocations instead of 700: a request allocates hundreds, and cyclic
        # garbage is rare, so the default spent a few % of CPU under load on collections that found nothing.
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        log.info("service started")
        try:
            yield
        finally:
            # Graceful shutdown: the server has stopped taking requests; finish background work, flush the
            # outbox, then close connections.
            for writer in writers.values():
                await writer.stop()
            if runtime.scheduler:
                await runtime.scheduler.stop()
            if spec.on_shutdown:
                await spec.on_shutdown(runtime)
            for task in runtime.background:
                task.cancel()
            if runtime.relay:
                await runtime.relay.stop()
            if runtime.bus:
                await runtime.bus.close()
            if runtime.redis:
                await runtime.redis.aclose()
            if runtime.db:
                await runtime.db.close()
            log.info("service stopped")

    plugins: list[Any] = []
    middleware: list[Any] = []
    if settings.otel_enabled:
        from litestar.contrib.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

        from servicekit.tracing import setup_tracing

        setup_tracing(settings.service_name)
        plugins.append(OpenTelemetryPlugin(OpenTelemetryConfig()))

    def request_context(app: ASGIApp) -> ASGIApp:
        return RequestContextMiddleware(app, settings.service_name, settings.log_level.upper() == "DEBUG")

    middleware.append(request_context)
    served_by = (b"x-served-by", settings.service_name.encode())

    async def add_served_by(message: Any, scope: Scope) -> None:
        # On every response, unknown paths included (route middleware never sees those): the edge test relies on it.
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), served_by]

    app = Litestar(
        before_send=[add_served_by],
        route_handlers=[*health_handlers(settings.service_name), metrics_handler(spec.on_scrape), *spec.route_handlers],
        dependencies={"runtime": Provide(provide_runtime, sync_to_thread=False)},
        exception_handlers={
            ApiError: _on_api_error,
            TokenRejected: _on_token_rejected,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
        lifespan=[lifespan],
        middleware=middleware,
        plugins=plugins,
        openapi_config=OpenAPIConfig(title=spec.title or settings.service_name, version="1.0.0"),
        request_max_body_size=settings.max_body_bytes,
    )
    # Kept for the edge's merged API reference (deploy/edge/openapi.py), which reads schemas without starting apps.
    app.state.openapi_paths = dict(spec.openapi_paths)
    # CORS outermost, around Litestar's router: preflights of every path (GET-only routes, bare @asgi handlers) are
    # answered before routing, and 404/405/413 answers get the allow-origin too. Litestar's own CORSConfig is not
    # used: it leaves preflights to per-route OPTIONS handlers.
    # Metrics inside it, around the router, which leaves the route template in the scope (unknown paths too).
    app.asgi_handler = DrainMiddleware(
        CorsMiddleware(metrics.HttpMetricsMiddleware(app.asgi_handler), CorsPolicy.parse(settings.cors_allowed_origins))
    )
    return app
