"""Settings from the environment, typed and validated with msgspec.

A service declares a ``msgspec.Struct`` subclass of :class:`CommonSettings`; each field is read from the
upper-cased env var of the same name. The original gateway's variable names are kept where they apply, so an
existing ``.env`` still works.
"""

from __future__ import annotations

import os
from typing import TypeVar

import msgspec


class CommonSettings(msgspec.Struct, kw_only=True):
    service_name: str = "service"
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str = "root"
    mysql_password: str = ""
    mysql_database: str = ""
    mysql_pool_size: int = 10
    # Seconds a statement, a commit or a new connection may wait on MariaDB before it fails (0: no limit): a
    # stalled server then costs the request an error answer instead of a request hung until the server is back.
    mysql_timeout: float = 4.0
    redis_url: str = ""
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_pass: str = ""
    nats_url: str = "nats://127.0.0.1:4222"
    # Replicas of the JetStream streams and durable consumers this service creates: 1 on a single NATS server,
    # 3 on a three-node cluster (a stream or consumer made with another count is changed to it at start-up).
    nats_stream_replicas: int = 1
    # Seconds JetStream waits for a consumer's acknowledgement before it delivers the event again (to a surviving
    # instance when the one holding it died): the longest a batch may take to apply, and the delay after a crash.
    nats_ack_wait_seconds: float = 30.0
    livekit_api_key: str = "devkey"
    livekit_api_secret: str = "secret"
    log_level: str = "INFO"
    max_body_bytes: int = 1_048_576
    # Browser origins allowed to call the API (comma list of scheme://host[:port]); "*" = any, as the original.
    cors_allowed_origins: str = "*"
    # OpenTelemetry: standard OTEL_* variables are honoured by the SDK; this switches tracing on.
    otel_enabled: bool = False
    # Periodic jobs (expiry sweeps, auto close, ...; ServiceSpec.schedule). Off while a migration's copy is being
    # caught up and verified against the original (README "Moving an installation"): a sweep would change the copy.
    scheduled_jobs: bool = True
    # Graceful shutdown (servicekit.web.Drain, started by servicekit.serve): after SIGTERM the instance keeps
    # serving this long, /ready answering 503 and every answer closing its connection, before it stops taking
    # requests; a proxy that does not watch /ready (the local nginx edge) thus holds no idle connection to it when
    # it closes them.
    shutdown_drain_seconds: float = 1.5
    # Cutover profile (servicekit.compat): each re-opens, for a migration window, an area the original left open
    # and the suite closed. Off by default; every request let through only by one of them is logged.
    compat_open_auth_create: bool = False
    compat_open_dashboards: bool = False
    compat_open_writes: bool = False

    @property
    def redis_dsn(self) -> str:
        if self.redis_url:
            return self.redis_url
        auth = f":{self.redis_pass}@" if self.redis_pass else ""
        return f"redis://{auth}{self.redis_host}:{self.redis_port}/0"


S = TypeVar("S", bound=CommonSettings)

_TRUE = {"1", "true", "yes", "on"}


def _env_value(raw: str, field_type: object) -> object:
    if field_type is bool:
        return raw.strip().lower() in _TRUE
    return raw


def load_settings(cls: type[S], environ: dict[str, str] | None = None, **overrides: object) -> S:
    """Build ``cls`` from env vars named like its fields (upper case); overrides win."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in msgspec.structs.fields(cls):
        raw = env.get(field.name.upper())
        if raw is not None:
            values[field.name] = _env_value(raw, field.type)
    values.update(overrides)
    return msgspec.convert(values, cls, strict=False)
