"""Move an installation of the original gateway onto the suite: copy its `conference` database into the
services' own databases, check the copy, then have every service rebuild its read models from the owners.

The source is only read (its session is READ ONLY). Each table goes to the service that owns it (plan.py), with
its ids, so links, rooms, cases, recordings and notifications keep the URLs and numbers people already hold.
The copy is resumable and repeatable (engine.py); ``catch_up`` re-compares everything for the changes made
since, so the old gateway can keep serving until the last minutes; ``final`` marks the last catch-up of the
cutover, after which a copy or catch-up is refused (:class:`engine.Refused`) unless ``force``, as is one that would
overwrite rows the suite wrote itself. ``python -m deploy.migrate --help`` is the command; this module is its API
(the tests and the benchmark call :func:`run`).
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from deploy.migrate import engine
from deploy.migrate.db import Dsn, connect, connect_source, connect_target
from deploy.migrate.plan import SERVICES, TABLES, TablePlan
from deploy.migrate.progress import TableProgress


@dataclass
class Options:
    source: Dsn
    targets: dict[str, Dsn]
    catch_up: bool = False
    final: bool = False  # the final catch-up of the cutover (implies catch_up): later runs are refused
    force: bool = False  # run although a guard refuses (the cutover marker, rows the suite wrote)
    verify_only: bool = False
    report: Path | None = None
    batch: int = 2000
    tables: tuple[str, ...] = ()  # only these (tests, or a rerun of one table); empty = all
    source_time_zone: str | None = None  # the zone the original's sessions used; None = the source server's
    out: TextIO = field(default_factory=lambda: sys.stderr)
    interactive: bool | None = None


@dataclass
class Outcome:
    results: list[engine.TableResult] = field(default_factory=list)
    checks: list[engine.TableCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return all(check.ok for check in self.checks)


def default_targets(prefix: str | None = None, environ: dict[str, str] | None = None) -> dict[str, Dsn]:
    """The databases the local runner (deploy/local.py) gives the services: ``<DB_PREFIX><service>`` on the server
    of MYSQL_HOST/PORT/USER/PASSWORD (the services' own variables); ``MIGRATE_TARGET_<SERVICE>`` (a DSN)
    overrides one service, for installations whose services each have their own server."""
    env = os.environ if environ is None else environ
    prefix = env.get("DB_PREFIX", "") if prefix is None else prefix
    base = Dsn(
        env.get("MYSQL_HOST", "127.0.0.1"), int(env.get("MYSQL_PORT", "3306")), env.get("MYSQL_USER", "root"),
        env.get("MYSQL_PASSWORD", ""), "placeholder",
    )  # fmt: skip
    targets = {service: base.with_database(f"{prefix}{service}") for service in SERVICES}
    for service in SERVICES:
        override = env.get(f"MIGRATE_TARGET_{service.upper()}")
        if override:
            targets[service] = Dsn.parse(override)
    return targets


async def prepare_target(service: str, dsn: Dsn) -> None:
    """The service's database with its own migrations applied (as the service does at start), plus the
    checkpoint table: the copy can run before the suite ever started."""
    from servicekit.db import Database, migrate
    from servicekit.settings import CommonSettings

    settings = CommonSettings(
        mysql_host=dsn.host, mysql_port=dsn.port, mysql_user=dsn.user, mysql_password=dsn.password,
        mysql_database=dsn.database, mysql_pool_size=2,
    )  # fmt: skip
    db = await Database.connect(settings)
    try:
        # the service package's own migrations (installed, as in the image, or from the work tree)
        await migrate(db, Path(str(resources.files(service) / "migrations")))
    finally:
        await db.close()
    conn = await connect(dsn)
    try:
        await engine.ensure_checkpoints(conn)
    finally:
        conn.close()


def selected(options: Options) -> list[TablePlan]:
    unknown = set(options.tables) - {plan.name for plan in TABLES}
    if unknown:
        raise ValueError(f"unknown table(s): {', '.join(sorted(unknown))}")
    return [plan for plan in TABLES if not options.tables or plan.name in options.tables]


async def run(options: Options) -> Outcome:
    started = time.monotonic()
    plans = selected(options)
    outcome = Outcome()
    services = list(dict.fromkeys(plan.service for plan in plans))
    if not options.verify_only:
        for service in services:
            await prepare_target(service, options.targets[service])
    source = await connect_source(options.source, options.source_time_zone)
    targets = {service: await connect_target(options.targets[service]) for service in services}
    try:
        columns = {
            plan.name: await engine.resolve_columns(
                source, options.source.database, targets[plan.service], options.targets[plan.service].database, plan
            )
            for plan in plans
        }
        if options.verify_only:
            for plan in plans:
                target = targets[plan.service]
                outcome.checks.append(
                    await engine.verify_table(plan, source, target, columns[plan.name], options.batch)
                )
        else:
            states = await _guard(plans, targets, columns, options)
            for plan in plans:
                progress = TableProgress(f"{plan.service}.{plan.name}", 0, options.out, options.interactive)
                copy = engine.TableCopy(
                    plan, source, targets[plan.service], columns[plan.name], options.batch, progress.advance
                )
                copy.on_progress = _start_progress(copy, progress)
                result = await copy.run(
                    options.catch_up or options.final, final=options.final, target_state=states[plan.name]
                )
                progress.finish(result.state)
                outcome.results.append(result)
    finally:
        source.close()
        for conn in targets.values():
            conn.close()
    outcome.seconds = time.monotonic() - started
    if options.report is not None:
        write_report(options.report, outcome)
    return outcome


async def _guard(
    plans: list[TablePlan], targets: dict[str, Any], columns: dict[str, engine.Columns], options: Options
) -> dict[str, tuple[int, int]]:
    """Every table checked before the first is written: a refused run changes nothing. Returns each target table's
    row count and checksum (the baseline of its pass); raises engine.Refused unless ``force``."""
    states: dict[str, tuple[int, int]] = {}
    refusals: list[engine.Refusal] = []
    for plan in plans:
        state, found = await engine.check_target(
            plan, targets[plan.service], columns[plan.name], final_run=options.final
        )
        states[plan.name] = state
        refusals += found
    if refusals and not options.force:
        raise engine.Refused(refusals)
    for refusal in refusals:
        print(f"--force: {refusal.service}.{refusal.table}: {refusal.reason}; going on", file=options.out)
    return states


def _start_progress(copy: engine.TableCopy, progress: TableProgress):  # type: ignore[no-untyped-def]
    """The bar's total is the source's row count, known once the copy has counted it."""

    def advance(rows: int) -> None:
        progress.total = copy.result.source_rows
        progress.advance(rows)

    return advance


def write_report(path: Path, outcome: Outcome) -> None:
    """One CSV line per row not carried (and why) and per row carried with a note (orphans), plus dropped
    columns: what an operator must read before cutover."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["table", "key", "outcome", "reason", "detail"])
        for result in outcome.results:
            for column in result.dropped_columns:
                writer.writerow([result.table, "", "column not carried", "no such column in the suite", column])
            for row in result.not_carried:
                writer.writerow([row.table, row.key, "not carried", row.reason, row.detail])
            for row in result.notes:
                writer.writerow([row.table, row.key, "carried", row.reason, row.detail])


def summary_table(outcome: Outcome) -> str:
    lines = [
        "| table | service | source rows | scanned | written | deleted | not carried | seconds | rows/s | state |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in outcome.results:
        rate = r.scanned / r.seconds if r.seconds > 0 else 0
        lines.append(
            f"| {r.table} | {r.service} | {r.source_rows:,} | {r.scanned:,} | {r.written:,} | {r.deleted:,} | "
            f"{len(r.not_carried):,} | {r.seconds:.2f} | {rate:,.0f} | {r.state} |"
        )
    total_rows = sum(r.scanned for r in outcome.results)
    lines.append(
        f"\n{total_rows:,} rows in {outcome.seconds:.1f} s ({total_rows / max(outcome.seconds, 1e-9):,.0f} rows/s)"
    )
    return "\n".join(lines)


def verify_table_text(outcome: Outcome) -> str:
    lines = [
        "| table | service | source rows | target rows | not carried | source checksum | target checksum | result |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for c in outcome.checks:
        verdict = (
            "ok"
            if c.ok
            else "DIFFERENT" + (f" (keys {', '.join(map(str, c.differing_keys[:5]))})" if c.differing_keys else "")
        )
        lines.append(
            f"| {c.table} | {c.service} | {c.source_rows:,} | {c.target_rows:,} | {c.not_carried:,} | "
            f"{c.source_checksum} | {c.target_checksum} | {verdict} |"
        )
    lines.append(
        f"\nverified in {outcome.seconds:.1f} s: {'no difference' if outcome.verified else 'DIFFERENCES FOUND'}"
    )
    return "\n".join(lines)


__all__ = ["Options", "Outcome", "run", "default_targets", "summary_table", "verify_table_text"]
