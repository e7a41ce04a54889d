"""Rebuild the read models (and derived state) of running services from their owners (``just rebuild-read-models``).

Each service answers ``rpc.<service>.rebuild`` (servicekit.rebuild): one of its replicas reads the owners' snapshots
and writes its read models with its consumers' repository functions, then replies what it rebuilt. This tool only
sends that request over NATS and prints the summary, so it needs nothing but the NATS URL of the suite (the local
runner's, compose's or the cluster's private one, e.g. through a port-forward).

    python -m deploy.rebuild SERVICE [--nats-url URL] [--read-model NAME ...] [--timeout SECONDS]

SERVICE: recording, conference, link, telemetry, realtime or all (recording first, then the others at once). The
NATS URL is ``--nats-url``, else ``NATS_URL``, else the local runner's (nats://127.0.0.1:4222). Repeatable: a second
run changes nothing. A read model that prunes (servicekit.rebuild.Prune) says how many rows whose owner row is gone
it deleted (``pruned N``), or why it did not (``not pruned: ...``).

Exit status: 0 every read model rebuilt; 1 a service did not answer or failed; 2 bad arguments; 3 rebuilt, but
rows of the owners that a read model cannot hold were left out (each named on stderr and in that service's log,
the summary line says how many): nothing is left out silently.

The migration tool calls :func:`rebuild` after its copy (every service up, its consumers running):

    summaries = await deploy.rebuild.rebuild(["all"], nats_url)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import msgspec
import nats

from servicekit.rebuild import REBUILD_SUBJECT, RebuildRequest, RebuildSummary

# Recording first: link's copy of its egresses names their files from recording's room_setting.
SERVICES = ("recording", "conference", "link", "telemetry", "realtime")
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"  # deploy.local's
DEFAULT_TIMEOUT = 3600.0  # one service's whole rebuild
EXIT_FAILED, EXIT_NOT_REBUILT = 1, 3
RUN_FIRST = ("recording",)


class RebuildFailed(RuntimeError):
    """A service did not answer, or answered an error (its message says which read model and why)."""


def services_of(names: list[str]) -> list[str]:
    """The services named (``all``: every one, in rebuild order); raises ValueError for an unknown name."""
    chosen: list[str] = []
    for name in names:
        for service in SERVICES if name == "all" else (name,):
            if service not in SERVICES:
                raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)} or all")
            if service not in chosen:
                chosen.append(service)
    return chosen


async def rebuild(
    services: list[str],
    nats_url: str,
    *,
    read_models: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[RebuildSummary]:
    """Rebuild the read models of ``services`` (names as for the CLI, ``all`` included), recording first, the others
    side by side; ``read_models`` limits each to those steps. Returns each service's summary; raises RebuildFailed
    on the first service that does not answer or fails (a rebuild is repeatable: run it again once the cause is
    fixed)."""
    chosen = services_of(services)
    # A few attempts, not nats-py's default 60: a suite that is not up is reported in seconds.
    nc = await nats.connect(
        nats_url, name="rebuild-read-models", connect_timeout=5, max_reconnect_attempts=3, reconnect_time_wait=1
    )
    payload = msgspec.json.encode(RebuildRequest(readModels=read_models))

    async def one(service: str) -> RebuildSummary:
        subject = REBUILD_SUBJECT.format(service=service)
        try:
            msg = await nc.request(subject, payload, timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise RebuildFailed(f"{service}: no replica answers {subject} (is it running?)") from exc
        except nats.errors.TimeoutError as exc:
            raise RebuildFailed(f"{service}: no answer within {timeout:.0f}s") from exc
        reply = msgspec.json.decode(msg.data)
        if not reply.get("ok"):
            raise RebuildFailed(f"{service}: {reply.get('code')}: {reply.get('error')}")
        return msgspec.convert(reply["data"], RebuildSummary)

    try:
        # Recording alone first (link names egress files from its room_setting); the others read only owners' rows,
        # so they rebuild side by side, each service in its own process.
        first = [one(s) for s in chosen if s in RUN_FIRST]
        summaries = list(await asyncio.gather(*first))
        summaries += await asyncio.gather(*(one(s) for s in chosen if s not in RUN_FIRST))
        return summaries
    finally:
        await nc.close()


def report(summary: RebuildSummary) -> list[str]:
    lines = []
    for model in summary.readModels:
        rate = f"{model.rows / model.seconds:,.0f} rows/s" if model.seconds > 0 else "-"
        left = f"  NOT REBUILT: {model.notRebuilt:,} rows" if model.notRebuilt else ""
        # rows whose owner row is gone, deleted after the pass (only steps that prune say so)
        pruned = f"  pruned {model.pruned:,}" if model.pruned is not None else ""
        kept = f"  not pruned: {model.notPruned}" if model.notPruned else ""
        lines.append(
            f"{summary.service:<11} {model.readModel:<20} {model.rows:>10,} rows {model.seconds:>9.2f} s  {rate}"
            f"{pruned}{left}{kept}"
        )
    return lines


def not_rebuilt(summaries: list[RebuildSummary]) -> list[str]:
    """One line per row a read model could not hold (as many as each summary names), and how many more there were;
    empty when every row was rebuilt."""
    lines = []
    for summary in summaries:
        for model in summary.readModels:
            lines += [f"not rebuilt: {summary.service}.{model.readModel}: {row}" for row in model.notRebuiltRows]
            if model.notRebuilt > len(model.notRebuiltRows):
                more = model.notRebuilt - len(model.notRebuiltRows)
                lines.append(f"not rebuilt: {summary.service}.{model.readModel}: {more:,} more (see its log)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild read models from their owners.")
    parser.add_argument("service", nargs="+", help=f"{', '.join(SERVICES)} or all")
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", DEFAULT_NATS_URL))
    parser.add_argument("--read-model", action="append", dest="read_models", help="only this read model (repeat)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per service")
    args = parser.parse_args(argv)
    try:
        summaries = asyncio.run(
            rebuild(args.service, args.nats_url, read_models=args.read_models, timeout=args.timeout)
        )
    except (ValueError, RebuildFailed, OSError, nats.errors.Error) as exc:
        print(f"rebuild failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for summary in summaries:
        print("\n".join(report(summary)))
    left = not_rebuilt(summaries)
    if left:
        print("\n".join(left), file=sys.stderr)
        print("rows of the owners were NOT rebuilt into read models that cannot hold them (above)", file=sys.stderr)
        return EXIT_NOT_REBUILT
    return 0


if __name__ == "__main__":
    sys.exit(main())
