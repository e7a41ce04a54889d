"""``just migrate`` / ``python -m deploy.migrate``: see ``--help``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import nats.errors

from deploy.migrate import Options, default_targets, run, summary_table, verify_table_text
from deploy.migrate.db import Dsn, redact
from deploy.migrate.engine import Refused
from deploy.migrate.plan import SERVICES, TABLES
from deploy.rebuild import RebuildFailed, not_rebuilt, rebuild, report

DESCRIPTION = """\
Copy the original gateway's `conference` database into the suite's per-service databases.

The source is only read (a READ ONLY session: the server refuses any write). Every table goes to the service
that owns it, every row with its id and every column the suite keeps; a row the suite cannot take (a second row
with the same linkID, a value the target refuses) is not carried and is listed by --report, with why. Zero
dates, NULLs, Thai text and emoji are carried as they are; collations become the suite's (utf8mb4_unicode_ci);
TIMESTAMP columns keep the wall time the original showed (read in --source-time-zone, default the source
server's own zone, written in the target server's, the zone the services read them in).

The copy runs in chunks (--batch-size keys per transaction) and records a checkpoint per table in each target
database (table migration_checkpoint): after a crash or kill -9, run the same command again and it goes on
where it stopped. A finished table is skipped by a plain rerun; --catch-up compares every chunk again and
copies what was added, changed or deleted since (run it while the old gateway still serves, then once more
after stopping it). --verify compares both sides (row counts and a checksum of the kept columns per table)
and exits 1 on any difference. After a copy, every service rebuilds its read models from the owners (the
suite must be running for that; --no-rebuild skips it, `just rebuild-read-models all` does it later).

A catch-up makes the suite's tables equal to the source: it would delete or overwrite what the suite stored
itself once it serves (new links, chat, positions). So, before writing anything, a run is refused (exit 5, each
table and why on stderr) when the final catch-up of the cutover (--final, run after stopping the old gateway) is
done, or when a table is no longer as the migration left it (its row count and checksum, recorded per table in
migration_checkpoint, changed: the suite wrote it). --force runs anyway, e.g. to start over after rolling back
to the old gateway, giving up what the suite stored meanwhile.

Targets: by default the local runner's databases (<DB_PREFIX><service> on MYSQL_HOST:MYSQL_PORT as
MYSQL_USER), i.e. `./dev up`, then `just migrate --source ...`. Elsewhere give each service's database:
--target link=mysql://user:pass@host:3306/link (or env MIGRATE_TARGET_LINK=...).
"""

EPILOG = f"""\
services: {", ".join(SERVICES)}
tables:   {", ".join(plan.name for plan in TABLES)}
exit status: 0 done (and verified, with --verify), 1 --verify found a difference, 2 bad arguments,
3 copied but the read models not rebuilt (the suite's NATS did not answer; rerun or `just rebuild-read-models all`),
4 copied and rebuilt, but rows a read model cannot hold were left out of it (each named on stderr),
5 refused, nothing written: the cutover's final catch-up is done, or the suite wrote a table since (--force).
"""
EXIT_REFUSED = 5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="just migrate",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source", default=os.environ.get("MIGRATE_SOURCE"),
        help="the original's database, mysql://user:password@host:port/conference (env MIGRATE_SOURCE)",
    )  # fmt: skip
    parser.add_argument("--target", action="append", default=[], metavar="SERVICE=DSN", help="one service's database")
    parser.add_argument("--db-prefix", default=None, help="prefix of the local runner's databases (env DB_PREFIX)")
    parser.add_argument("--catch-up", action="store_true", help="copy what changed since the last run (all tables)")
    parser.add_argument(
        "--final", action="store_true",
        help="the final catch-up of the cutover, after the old gateway stopped (implies --catch-up): marks the "
        "targets, and any later copy or catch-up is refused",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true",
        help="copy although the cutover is done or the suite wrote a table since (deletes or overwrites its rows)",
    )  # fmt: skip
    parser.add_argument("--verify", action="store_true", help="only compare source and targets; exit 1 on a difference")
    parser.add_argument(
        "--report", type=Path, help="CSV file listing every row not carried (and rows carried with a note)"
    )
    parser.add_argument("--batch-size", type=int, default=2000, help="keys per chunk and transaction (default 2000)")
    parser.add_argument("--table", action="append", default=[], help="only this table (repeatable)")
    parser.add_argument(
        "--source-time-zone", help="zone the original read TIMESTAMPs in, e.g. +07:00 (default: its server's)"
    )
    parser.add_argument("--no-rebuild", action="store_true", help="do not ask the services to rebuild read models")
    parser.add_argument(
        "--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"), help="the suite's NATS"
    )
    args = parser.parse_args(argv)
    if not args.source:
        parser.error("--source is required (or env MIGRATE_SOURCE)")
    if args.batch_size < 1:
        parser.error("--batch-size must be positive")
    if args.verify and (args.final or args.catch_up):
        parser.error("--verify only compares: not with --catch-up or --final")
    return args


def options_from(args: argparse.Namespace) -> Options:
    targets = default_targets(args.db_prefix)
    for item in args.target:
        service, _, dsn = item.partition("=")
        if service not in SERVICES or not dsn:
            raise ValueError(f"--target wants SERVICE=DSN with SERVICE one of {', '.join(SERVICES)}: {redact(item)}")
        targets[service] = Dsn.parse(dsn)
    return Options(
        source=Dsn.parse(args.source), targets=targets, catch_up=args.catch_up or args.final, final=args.final,
        force=args.force, verify_only=args.verify, report=args.report, batch=args.batch_size, tables=tuple(args.table),
        source_time_zone=args.source_time_zone,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = options_from(args)
    except ValueError as error:
        print(f"just migrate: {error}", file=sys.stderr)
        return 2
    print(f"source {options.source}", file=sys.stderr)
    for service, dsn in options.targets.items():
        print(f"target {service}: {dsn}", file=sys.stderr)
    try:
        outcome = asyncio.run(run(options))
    except Refused as refused:
        print(refused_text(refused), file=sys.stderr)
        return EXIT_REFUSED
    if args.verify:
        print(verify_table_text(outcome))
        return 0 if outcome.verified else 1
    print(summary_table(outcome))
    not_carried = sum(len(r.not_carried) for r in outcome.results)
    if not_carried:
        where = f" (listed in {args.report})" if args.report else " (--report FILE lists them)"
        print(f"{not_carried} row(s) not carried{where}", file=sys.stderr)
    if args.no_rebuild:
        return 0
    return rebuild_read_models(args.nats_url)


def refused_text(refused: Refused) -> str:
    lines = ["REFUSED, nothing written: a copy or catch-up now would delete or overwrite rows of the suite's own."]
    lines += [f"  {r.service}.{r.table}: {r.reason}" for r in refused.refusals]
    lines.append(
        "After cutover the suite's databases are the records: do not catch up (--verify only reads). Before cutover,\n"
        "if the only writes were checks through the edge (getdetail records a usage row, as the original did), or\n"
        "after rolling back to the old gateway, --force copies anyway, giving up what the suite stored in these tables."
    )
    return "\n".join(lines)


def rebuild_read_models(nats_url: str) -> int:
    """Every service rebuilds its read models from the owners' rows just copied (deploy.rebuild)."""
    started = time.monotonic()
    try:
        summaries = asyncio.run(rebuild(["all"], nats_url))
    except (RebuildFailed, OSError, nats.errors.Error) as exc:
        print(
            f"copied, but the read models were NOT rebuilt: {exc}\n"
            "start the suite and run `just rebuild-read-models all` (or this command again)",
            file=sys.stderr,
        )
        return 3
    for summary in summaries:
        for line in report(summary):
            print(f"rebuilt {line}", file=sys.stderr)
    print(f"read models rebuilt in {time.monotonic() - started:.1f} s", file=sys.stderr)
    left = not_rebuilt(summaries)
    if left:
        print("\n".join(left), file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
