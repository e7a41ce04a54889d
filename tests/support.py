"""Helpers shared by tests (fixtures live in conftest.py): NATS requests as a service makes them, polling.

Test helpers are split by topic, one module each beside this one in tests/:

- support.py (this): ``rpc``, ``until``, ``eventually``, ``query`` (SQL on a database by name), ``kit_service``
  (servicekit's database and bus for a made-up service),
  ``scrape``/``sample``/``exported_names`` (Prometheus metrics of a service's /metrics);
- sockets.py: the official Socket.IO JS clients, realtime's namespaces, events published for realtime, ``watch``;
- instances.py: more realtime processes beside the suite's, nginx in front of them;
- car_tasks.py: telemetry's car tasks, link's events for telemetry, tenants and linked rooms;
- egress.py: recording's egress state and conference's room settings for it;
- kube.py: kubectl and kustomize for the deployment tests;
- legacy.py: a legacy source (the original's `conference` schema, generated production-like rows) for the migration;
- legacy_answers.py: the original's answers computed from such a source.

A helper two test modules need lives in one of these (a fixture in conftest.py); test modules never import each
other (tests/platform/test_tests_layout.py checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncmy
import httpx
from asyncmy.cursors import DictCursor
from prometheus_client.parser import text_string_to_metric_families

from servicekit.bus import Bus
from servicekit.db import Database, migrate
from servicekit.settings import CommonSettings

# A scrape: sample name -> {sorted label pairs: value}
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


async def rpc(nc: Any, subject: str, payload: Any, timeout: float = 10.0) -> dict[str, Any]:
    """A NATS request as another service makes it; returns the decoded RpcReply."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg = await nc.request(subject, raw, timeout=timeout)
    return json.loads(msg.data)


async def until(probe: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll ``probe`` until it returns something truthy (events arrive asynchronously; the machine is shared, hence
    the generous timeout); fails the test when it never does."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def query(database: str, sql: str, args: Any = ()) -> list[dict[str, Any]]:
    """Rows of ``sql`` on ``database`` of this machine's MariaDB (a test's own connection, autocommit)."""
    conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="", db=database, autocommit=True)
    try:
        async with conn.cursor(DictCursor) as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def kit_service(suite: Any, service: str) -> AsyncIterator[tuple[Database, Bus]]:
    """A made-up service's own database (servicekit's tables migrated) and bus (its stream made) on the suite's
    MariaDB and NATS, for tests of servicekit's mechanics; the database is dropped afterwards."""
    name = f"{suite.db_name(service)}_{uuid.uuid4().hex[:6]}"
    db = await Database.connect(CommonSettings(service_name=service, mysql_database=name, nats_url=suite.nats_url))
    await migrate(db, None)
    bus = await Bus.connect(suite.nats_url, service)
    await bus.ensure_stream()
    try:
        yield db, bus
    finally:
        await bus.close()
        await db.execute(f"DROP DATABASE `{name}`")  # noqa: S608 - generated test name
        await db.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """``until`` with the socket tests' 10 s: ``check``'s first truthy value, else the test fails."""
    return await until(check, timeout)


async def scrape(base_url: str) -> Samples:
    """The samples of ``<base_url>/metrics`` (a service's own port), parsed with prometheus-client's parser."""
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.get(f"{base_url}/metrics")
    assert response.status_code == 200, (base_url, response.status_code, response.text[:300])
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the ``name`` samples whose labels include ``labels`` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(value for key, value in samples.get(name, {}).items() if wanted <= set(key))


async def exported_names(base_url: str) -> set[str]:
    """Every metric name a query may use against ``base_url``'s /metrics: families (also those without samples
    yet) with the sample names of their type (``_total``, ``_bucket``/``_count``/``_sum``, ...)."""
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.get(f"{base_url}/metrics")
    assert response.status_code == 200, (base_url, response.status_code)
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("_count", "_sum", "_created"), "info": ("_info",)}  # fmt: skip
    names: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(s.name for s in family.samples)
    return names
