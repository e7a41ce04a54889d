"""NATS: durable events through a transactional outbox, and request/reply with timeouts.

* A service writes events with :func:`add_event` inside the same DB transaction as the change.
* :class:`OutboxRelay` publishes pending rows to JetStream with ``Nats-Msg-Id`` = event id (the stream drops
  duplicates inside its window), then marks them published. Several replicas share the table safely
  (``FOR UPDATE SKIP LOCKED``).
* Consumers are durable JetStream pull consumers shared by a service's replicas; handlers are made
  idempotent with :func:`handled_once` (MySQL) or the caller's own store (realtime uses Redis).
* The envelope of every event (:class:`Event`) and of every reply (:class:`RpcReply`) is defined here; the subjects
  and payload schemas are the services' contracts (the ``contracts`` package, one module per publishing service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry import propagate, trace

from servicekit import metrics
from servicekit.db import Connection, Database


class Event(msgspec.Struct, kw_only=True):
    """Envelope of every event; ``data`` is the typed payload encoded as a plain mapping."""

    id: str
    subject: str
    version: int = 1
    occurred_at: str
    data: dict[str, Any]


def new_event(subject: str, data: msgspec.Struct | dict[str, Any], version: int = 1) -> Event:
    payload = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else data
    return Event(
        id=uuid.uuid4().hex,
        subject=subject,
        version=version,
        occurred_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        data=payload,
    )


class RpcReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    data: Any = None
    error: str = ""
    code: str = ""


log = logging.getLogger(__name__)
tracer = trace.get_tracer("servicekit.bus")
T = TypeVar("T")
R = TypeVar("R")
_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)
_reply_decoder = msgspec.json.Decoder(RpcReply)

MAX_REQUESTS_IN_FLIGHT = 256  # per Bus: requests answered concurrently before new ones wait
# A pull fetch waits this long for a first event (events that arrive meanwhile are delivered at once): longer
# waits mean fewer empty round trips per idle consumer.
FETCH_WAIT_SECONDS = 5.0
STREAM_SERVICES = ("auth", "link", "conference", "telemetry", "recording", "realtime")


def stream_name(service: str) -> str:
    return f"EVENTS_{service.upper()}"


class RpcError(Exception):
    """A request/reply call failed: ``code`` is ``timeout``, ``unavailable`` or the responder's own code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Bus:
    def __init__(self, nc: NATS, service: str, replicas: int = 1, ack_wait: float = 30.0) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.service = service
        self.replicas = replicas  # of the streams and consumers this bus creates (NATS_STREAM_REPLICAS)
        self.ack_wait = ack_wait  # of its durable consumers (NATS_ACK_WAIT_SECONDS)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._requests: set[asyncio.Task[None]] = set()  # requests being answered (see serve)
        self._in_flight = asyncio.Semaphore(MAX_REQUESTS_IN_FLIGHT)
        self.consumers: list[tuple[str, str]] = []  # (stream, durable) of the consumers pulling, for metrics

    @classmethod
    async def connect(cls, url: str, service: str, replicas: int = 1, ack_wait: float = 30.0) -> Bus:
        nc = await nats.connect(
            url, name=service, max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=3
        )
        return cls(nc, service, replicas, ack_wait)

    @property
    def connected(self) -> bool:
        return self.nc.is_connected

    async def ensure_stream(self, service: str | None = None) -> str:
        """Create (or keep) the stream holding ``<service>.>`` events; duplicates are dropped for 2 minutes."""
        owner = service or self.service
        name = stream_name(owner)
        config = StreamConfig(
            name=name,
            subjects=[f"{owner}.>"],
            duplicate_window=120.0,
            max_age=7 * 86400.0,
            num_replicas=self.replicas,
        )
        try:
            info = await self.js.stream_info(name)
        except NotFoundError:
            try:
                await self.js.add_stream(config)
            except Exception as exc:
                # A replica may have created it meanwhile; otherwise (e.g. more replicas than NATS servers) the
                # service must not start without its stream.
                try:
                    await self.js.stream_info(name)
                except NotFoundError:
                    raise exc from None
            return name
        if info.config.num_replicas != self.replicas:  # NATS_STREAM_REPLICAS changed (e.g. moved to a cluster)
            info.config.num_replicas = self.replicas
            await self.js.update_stream(info.config)
        return name

    async def publish_event(self, event: Event, headers: dict[str, str] | None = None) -> None:
        await self.publish_encoded(event.id, event.subject, _encoder.encode(event), headers)

    async def publish_encoded(
        self, event_id: str, subject: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Publish an already encoded event (the outbox keeps them encoded), deduplicated by its id."""
        await self.js.publish(subject, payload, headers={"Nats-Msg-Id": event_id, **(headers or {})}, timeout=5)

    # ---- request / reply ---------------------------------------------------------------------------------
    async def request(self, subject: str, payload: msgspec.Struct, timeout: float = 2.0) -> Any:
        """Ask another service; returns the reply's ``data`` or raises :class:`RpcError`."""
        headers: dict[str, str] = {}
        propagate.inject(headers)
        started = time.perf_counter()
        try:
            msg = await self.nc.request(subject, _encoder.encode(payload), timeout=timeout, headers=headers)
        except NoRespondersError as exc:
            metrics.RPC_ERRORS.labels(subject, "unavailable").inc()
            raise RpcError("unavailable", f"no service answers {subject}") from exc
        except NatsTimeout as exc:
            metrics.RPC_ERRORS.labels(subject, "timeout").inc()
            raise RpcError("timeout", f"{subject} did not answer within {timeout}s") from exc
        finally:
            metrics.RPC_LATENCY.labels(subject).observe(time.perf_counter() - started)
        reply = _reply_decoder.decode(msg.data)
        if not reply.ok:
            metrics.RPC_ERRORS.labels(subject, reply.code or "error").inc()
            raise RpcError(reply.code or "error", reply.error)
        return reply.data

    async def serve(self, subject: str, request_type: type[T], handler: Callable[[T], Awaitable[Any]]) -> None:
        """Answer ``subject`` in a queue group (one replica answers each request)."""
        decoder = msgspec.json.Decoder(request_type)

        async def answer(msg: Msg) -> None:
            try:
                try:
                    request = decoder.decode(msg.data)
                    reply = RpcReply(ok=True, data=await handler(request))
                except msgspec.DecodeError as exc:  # undecodable JSON or a ValidationError (its subclass)
                    reply = RpcReply(ok=False, code="bad_request", error=str(exc))
                except LookupError as exc:
                    reply = RpcReply(ok=False, code="not_found", error=str(exc) or "not found")
                except RpcError as exc:  # a handler's own failure code (e.g. its third party is unavailable)
                    reply = RpcReply(ok=False, code=exc.code, error=exc.message)
                except Exception as exc:  # the caller gets a clear error instead of a timeout
                    log.exception("request handler failed", extra={"subject": subject})
                    reply = RpcReply(ok=False, code="error", error=type(exc).__name__)
                try:
                    await msg.respond(_encoder.encode(reply))
                except Exception:
                    log.warning("reply not sent", extra={"subject": subject}, exc_info=True)
            finally:
                self._in_flight.release()

        async def on_request(msg: Msg) -> None:
            # nats-py awaits a subscription's callback message by message: answer each request in its own task
            # so one slow request (e.g. a LiveKit call) does not hold up the others. Bounded by a semaphore.
            await self._in_flight.acquire()
            task = asyncio.create_task(answer(msg))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

        await self.nc.subscribe(subject, queue=self.service, cb=on_request)

    # ---- durable consumption -----------------------------------------------------------------------------
    def consume(
        self,
        owner: str,
        durable: str,
        handler: Callable[[Event], Awaitable[None]],
        filter_subject: str | None = None,
        replay: bool = False,
        order_key: Callable[[Event], str] | None = None,
        batch_db: Database | None = None,
    ) -> None:
        """Pull events of ``owner``'s stream through durable consumer ``durable`` (shared by replicas).

        A new consumer starts at new events, or with ``replay`` at the stream's first event (read models that must
        be rebuildable); an existing durable consumer always resumes where it stopped. Events are handled one by
        one in stream order, or with ``order_key`` the events of one fetched batch are handled concurrently
        across keys (e.g. rooms) and in stream order within a key: for consumers whose handlers wait on I/O
        and only need per-key order.

        With ``batch_db`` each fetched batch is applied in ONE transaction of that database, in stream order, and
        acknowledged after it commits: :func:`apply_once` calls of the handler join that transaction (the
        handled-once rows included). Only for handlers whose every effect is a write of ``batch_db`` (outbox
        events included): a handler that publishes, enqueues or calls out would do it before the commit. A batch
        that fails is applied again one event per transaction, so one bad event fails (and is redelivered) alone.
        """
        if batch_db is not None and order_key is not None:
            raise ValueError("a batched consumer applies its batch in order on one connection: no order_key")
        self._tasks.append(
            asyncio.create_task(
                self._consume_loop(owner, durable, handler, filter_subject, replay, order_key, batch_db)
            )
        )

    async def _consume_loop(
        self,
        owner: str,
        durable: str,
        handler: Callable[[Event], Awaitable[None]],
        filter_subject: str | None,
        replay: bool,
        order_key: Callable[[Event], str] | None,
        batch_db: Database | None = None,
    ) -> None:
        stream = stream_name(owner)
        subject = filter_subject or f"{owner}.>"
        policy = DeliverPolicy.ALL if replay else DeliverPolicy.NEW
        while True:  # JetStream may be electing leaders (a server lost, a stream just rescaled): keep trying
            config = ConsumerConfig(
                durable_name=durable,
                ack_wait=self.ack_wait,
                max_deliver=20,
                deliver_policy=policy,
                num_replicas=self.replicas,
            )
            try:
                await self.ensure_stream(owner)
                await self._rescale_consumer(stream, durable)
                sub = await self.js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
                break
            except Exception:
                log.exception("consumer not started; retrying", extra={"consumer": durable})
                await asyncio.sleep(1.0)
        self.consumers.append((stream, durable))
        counted = _ConsumerMetrics(stream, durable)
        try:
            while not self._stopping.is_set():
                try:
                    msgs = await sub.fetch(batch=64, timeout=FETCH_WAIT_SECONDS)
                except TimeoutError:  # nats-py raises the plain asyncio one when a fetch finds nothing
                    continue
                except Exception:
                    log.exception("fetch failed", extra={"stream": stream})
                    await asyncio.sleep(1.0)
                    continue
                events: list[tuple[Msg, Event]] = []
                for msg in msgs:
                    try:
                        events.append((msg, _event_decoder.decode(msg.data)))
                    except msgspec.DecodeError:
                        log.error("undecodable event dropped", extra={"subject": msg.subject})
                        counted.failures.inc()
                        await msg.term()
                if batch_db is not None and len(events) > 1:
                    await _deliver_batch(events, handler, counted, batch_db)
                    continue
                if order_key is None:
                    await _deliver_in_order(events, handler, counted)
                    continue
                groups: dict[str, list[tuple[Msg, Event]]] = {}
                for item in events:
                    groups.setdefault(order_key(item[1]), []).append(item)
                await asyncio.gather(*(_deliver_in_order(group, handler, counted) for group in groups.values()))
        finally:
            with contextlib.suppress(Exception):  # lets drain() finish at once on shutdown
                await sub.unsubscribe()

    async def _rescale_consumer(self, stream: str, durable: str, attempts: int = 4) -> None:
        """An existing consumer keeps its config but takes the current replica count and ack wait. Right after its
        stream was rescaled the consumer's group is moving and may not answer for a few seconds: tried again, and if
        it still fails the consumer goes on with its old count until the next start."""
        for attempt in range(1, attempts + 1):
            try:
                existing = await self.js.consumer_info(stream, durable)
                if (existing.config.num_replicas, existing.config.ack_wait) != (self.replicas, self.ack_wait):
                    existing.config.num_replicas = self.replicas
                    existing.config.ack_wait = self.ack_wait
                    await self.js.add_consumer(stream, existing.config)
                return
            except NotFoundError:
                return
            except Exception:
                if attempt == attempts:
                    log.warning("consumer replicas not changed", extra={"consumer": durable}, exc_info=True)
                    return
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        self._stopping.set()
        if self._requests:  # let requests being answered finish (graceful shutdown), within a bound
            await asyncio.wait(set(self._requests), timeout=10)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Drain flushes what was published and stops subscriptions; it is bounded because a pull subscription
        # whose fetch was cancelled can keep it waiting for its whole default timeout (30 s).
        try:
            async with asyncio.timeout(3):
                await self.nc.drain()
        except Exception:
            with contextlib.suppress(Exception):
                await self.nc.close()


class _ConsumerMetrics:
    """One durable consumer's labelled metrics, looked up once per consumer rather than per event."""

    def __init__(self, stream: str, durable: str) -> None:
        self.latency = metrics.CONSUMER_LATENCY.labels(stream, durable)
        self.failures = metrics.CONSUMER_FAILURES.labels(stream, durable)
        self.redeliveries = metrics.CONSUMER_REDELIVERIES.labels(stream, durable)


async def _deliver_in_order(
    events: list[tuple[Msg, Event]], handler: Callable[[Event], Awaitable[None]], counted: _ConsumerMetrics
) -> None:
    """Handle events one after another; ack each handled one, nak (redeliver later) each failed one."""
    for msg, event in events:
        context = propagate.extract(msg.headers or {})
        if _delivery_count(msg) > 1:
            counted.redeliveries.inc()
        started = time.perf_counter()
        try:
            with tracer.start_as_current_span(
                f"consume {event.subject}", context=context, kind=trace.SpanKind.CONSUMER
            ):
                await handler(event)
        except Exception:
            counted.failures.inc()
            log.exception("event handler failed; redelivery later", extra={"event_id": event.id})
            await msg.nak(delay=1.0)
        else:
            await msg.ack()
        finally:
            counted.latency.observe(time.perf_counter() - started)


# The batch transaction of a batched consumer (Bus.consume with batch_db), which apply_once joins.
class _Batch:
    """A batched consumer's transaction and its handled-once bookkeeping: which of the batch's events each consumer
    applied before (one read per consumer and batch) and the records of those applied now (one multi-row INSERT
    just before the commit). A plain INSERT: if another replica recorded one of them meanwhile, the duplicate key
    fails the batch, which is then applied one event at a time with the usual INSERT IGNORE check."""

    def __init__(self, db: Database, conn: Connection, events: list[Event]) -> None:
        self.db, self.conn, self.events = db, conn, events
        self.event_ids = [event.id for event in events]
        self.handled: dict[str, set[str]] = {}
        self.recorded: list[tuple[str, str]] = []
        self.memo: dict[str, Any] = {}  # batch_lookups' dicts, by name

    async def first_time(self, consumer: str, event_id: str) -> bool:
        seen = self.handled.get(consumer)
        if seen is None:
            marks = ", ".join(["%s"] * len(self.event_ids))
            rows = await self.conn.fetch_all(
                f"SELECT event_id FROM handled_event WHERE consumer = %s AND event_id IN ({marks})",  # noqa: S608
                (consumer, *self.event_ids),
            )
            seen = self.handled[consumer] = {row["event_id"] for row in rows}
        if event_id in seen:
            return False
        seen.add(event_id)
        if not self.recorded:
            self.conn.before_commit.append(self._record)
        self.recorded.append((consumer, event_id))
        return True

    async def _record(self) -> None:
        await self.conn.execute_rows(
            "INSERT INTO handled_event (consumer, event_id) VALUES", "(%s, %s)", "", self.recorded
        )


_BATCH: ContextVar[_Batch | None] = ContextVar("servicekit_bus_batch", default=None)


def batch_lookups(conn: Connection, name: str) -> tuple[list[Event], dict[Any, Any]] | None:
    """For a handler of a batched consumer (Bus.consume with batch_db) applying on ``conn``: the batch's events and a
    dict ``name`` that lives as long as the batch's transaction, so a read every event needs can be made once for
    the whole batch (keyed by what the events name) instead of once per event. None outside a batch (the events
    applied one by one after a failed batch, a plain consumer): read per event then. Within one transaction the
    reads see one snapshot (REPEATABLE READ), so a read made for the batch answers what each event's own would,
    provided the batch does not write what it reads."""
    batch = _BATCH.get()
    if batch is None or batch.conn is not conn:
        return None
    return batch.events, batch.memo.setdefault(name, {})


async def _deliver_batch(
    events: list[tuple[Msg, Event]],
    handler: Callable[[Event], Awaitable[None]],
    counted: _ConsumerMetrics,
    db: Database,
) -> None:
    """Handle a fetched batch in one transaction of ``db`` and ack it after the commit; on any failure, roll it
    back and handle the events one by one (each in its own transaction, a failed one nak'ed alone)."""
    started = time.perf_counter()
    try:
        async with db.transaction() as conn:
            token = _BATCH.set(_Batch(db, conn, [event for _msg, event in events]))
            try:
                for msg, event in events:
                    context = propagate.extract(msg.headers or {})
                    with tracer.start_as_current_span(
                        f"consume {event.subject}", context=context, kind=trace.SpanKind.CONSUMER
                    ):
                        await handler(event)
            finally:
                _BATCH.reset(token)
    except Exception:
        log.warning("batch of %d events failed; handling them one by one", len(events), exc_info=True)
        await _deliver_in_order(events, handler, counted)
        return
    for msg, _event in events:
        await msg.ack()
        if _delivery_count(msg) > 1:
            counted.redeliveries.inc()
    per_event = (time.perf_counter() - started) / len(events)
    for _ in events:
        counted.latency.observe(per_event)


def _delivery_count(msg: Msg) -> int:
    """How many times JetStream has delivered ``msg`` (1 the first time), from its reply subject."""
    try:
        return msg.metadata.num_delivered
    except Exception:  # noqa: BLE001 - not a JetStream message (e.g. a test's): count it as a first delivery
        return 1


async def add_event(conn: Connection, subject: str, data: msgspec.Struct | dict[str, Any]) -> Event:
    """Record an event in the outbox, inside the caller's transaction."""
    return (await add_events(conn, [(subject, data)]))[0]


async def add_events(conn: Connection, items: Sequence[tuple[str, msgspec.Struct | dict[str, Any]]]) -> list[Event]:
    """Record events in the outbox, in the given order, as part of the caller's transaction.

    Inside a transaction the rows are written together just before it commits (one multi-row statement for all
    the events of a transaction, however many calls added them); on a connection without a transaction, at once.
    """
    if not items:
        return []
    trace_headers: dict[str, str] = {}
    propagate.inject(trace_headers)  # the relay publishes later: keep the caller's trace with the events
    headers = _encoder.encode(trace_headers) if trace_headers else None
    events = [new_event(subject, data) for subject, data in items]
    rows = [(event.id, event.subject, _encoder.encode(event), headers) for event in events]
    conn.events_added += len(events)
    if not conn.in_transaction:
        await _insert_outbox_rows(conn, rows)
        return events
    if not conn.outbox_rows:

        async def flush() -> None:
            rows, conn.outbox_rows = conn.outbox_rows, []
            await _insert_outbox_rows(conn, rows)

        conn.before_commit.append(flush)
    conn.outbox_rows.extend(rows)
    return events


async def _insert_outbox_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    head = "INSERT INTO outbox (event_id, subject, payload, headers) VALUES"
    await conn.execute_rows(head, "(%s, %s, %s, %s)", "", rows)


async def handled_once(conn: Connection, consumer: str, event_id: str) -> bool:
    """True the first time ``consumer`` sees ``event_id`` (call inside the transaction that applies it)."""
    changed = await conn.execute(
        "INSERT IGNORE INTO handled_event (consumer, event_id) VALUES (%s, %s)", (consumer, event_id)
    )
    return changed == 1


def event_payload(event: Event, schema: type[T]) -> T | None:
    """``event.data`` as ``schema``; None (logged) for a malformed event, which is dropped rather than retried."""
    try:
        return msgspec.convert(event.data, schema)
    except msgspec.ValidationError:
        log.warning("malformed event dropped", extra={"event_id": event.id, "subject": event.subject})
        return None


async def apply_once(
    db: Database, consumer: str, event: Event, apply: Callable[[Connection], Awaitable[R]]
) -> R | None:
    """Run ``apply`` in one transaction with the record that ``consumer`` handled ``event``; None, and nothing
    applied, when it already had (a redelivery). Inside a batched consumer's batch (Bus.consume with batch_db)
    that transaction is the batch's."""
    batch = _BATCH.get()
    if batch is not None and batch.db is db:
        if not await batch.first_time(consumer, event.id):
            return None
        return await apply(batch.conn)
    async with db.transaction() as conn:
        if not await handled_once(conn, consumer, event.id):
            return None
        return await apply(conn)


class OutboxRelay:
    """Publishes outbox rows in order; woken right after each commit, and polls as a safety net."""

    def __init__(self, db: Database, bus: Bus, poll_seconds: float = 1.0, batch: int = 200) -> None:
        self.db = db
        self.bus = bus
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        db.on_events_committed.append(self._wake.set)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                woken = True
            self._wake.clear()
            try:
                # The safety-net poll (rows of a crashed replica, or a missed wake) costs one plain read when
                # nothing is pending, rather than a locking transaction every second.
                if not woken and not await self.pending():
                    continue
                while await self.flush_once() == self.batch:
                    pass
            except Exception:
                log.exception("outbox relay failed; will retry")
                await asyncio.sleep(self.poll_seconds)

    async def pending(self) -> bool:
        row = await self.db.fetch_one("SELECT 1 AS pending FROM outbox WHERE published_at IS NULL LIMIT 1")
        return row is not None

    async def flush_once(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        async with self.db.transaction(read_committed=True) as conn:
            rows = await conn.fetch_all(
                "SELECT id, event_id, subject, payload, headers FROM outbox WHERE published_at IS NULL "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (self.batch,),
            )
            # Pipelined: every publish of the batch is written to the one connection in outbox order before any
            # acknowledgement is awaited (a round trip per batch instead of per event). If one fails the batch
            # stays unpublished and is sent again; JetStream drops the repeats by Nats-Msg-Id.
            await asyncio.gather(
                *(
                    self.bus.publish_encoded(
                        row["event_id"],
                        row["subject"],
                        row["payload"] if isinstance(row["payload"], bytes) else row["payload"].encode(),
                        msgspec.json.decode(row["headers"]) if row["headers"] else None,
                    )
                    for row in rows
                )
            )
            if rows:
                ids = [row["id"] for row in rows]
                marks = ", ".join(["%s"] * len(ids))
                await conn.execute(
                    f"UPDATE outbox SET published_at = CURRENT_TIMESTAMP(3) WHERE id IN ({marks})",  # noqa: S608
                    ids,
                )
            return len(rows)

    async def stop(self) -> None:
        """Flush what is pending, then stop (graceful shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._task:
            with contextlib.suppress(Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush_once()
