"""Serve one service in one process: granian's server embedded in the service's own event loop.

    python -m servicekit.serve link.app:app --host 0.0.0.0 --port 8000 [--no-ws]

Why not the ``granian`` command: it always runs a supervisor process that spawns the worker, about 35 MB of RSS
that does nothing a Kubernetes Deployment (or the local runner) does not already do: restart a process that died.
One process per replica is the house rule anyway (metrics live in the process's registry). SIGTERM first drains
(servicekit.web.Drain: SHUTDOWN_DRAIN_SECONDS of /ready 503 and ``Connection: close``; a second signal skips it),
then stops accepting, lets in-flight requests finish, runs the ASGI lifespan shutdown (outbox drain, batch writers, bus)
and exits 0; SIGINT does the same. When the app fails to start (lifespan startup raised) or its server stops
on its own, the process exits 1, so the orchestrator restarts it.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import importlib
import logging
import os
import signal
import sys
from typing import Any, NoReturn

import uvloop
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server

from servicekit.web import DRAIN

LEFTOVER_TASKS_SECONDS = 1.0  # at exit, cancelled connection handlers get this long to finish


def load_target(spec: str) -> Any:
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute or "app")


async def serve(target: Any, host: str, port: int, websockets: bool, backlog: int) -> bool:
    """Serve until SIGTERM/SIGINT; False when the server stopped for any other reason."""
    server = Server(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        websockets=websockets,
        backlog=backlog,
        log_level=LogLevels.warning,
    )
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        # Keep serving while draining (servicekit.web.Drain: /ready 503, connections closed), then stop.
        delay = DRAIN.begin()
        if delay > 0:
            loop.call_later(delay, server.stop)
        else:
            server.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    await server.serve()
    return bool(server.interrupt_signal) and not server.interrupt_children


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="module:attribute of the ASGI app, e.g. link.app:app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-ws", dest="ws", action="store_false", help="refuse WebSocket upgrades (all but realtime)")
    parser.add_argument("--backlog", type=int, default=1024, help="listen backlog")
    args = parser.parse_args(argv)
    # Imported before the loop starts, so a broken app fails here, not after the socket is bound.
    target = load_target(args.target)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    stopped_on_signal = loop.run_until_complete(serve(target, args.host, args.port, args.ws, args.backlog))
    # The server and the app's shutdown are done. What is left are handlers of connections the server still held
    # (open websockets): cancelled, they wait on the server's side of the socket, which never answers again, so
    # waiting for them (asyncio.run does) kept the process alive until each client's ping timed out. Give them a
    # moment, then leave without waiting: the exit closes their sockets and the clients reconnect elsewhere.
    leftovers = asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.wait(leftovers, timeout=LEFTOVER_TASKS_SECONDS))
    atexit._run_exitfuncs()  # noqa: SLF001 - what a normal exit runs first: litestar's log listener flushes
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if stopped_on_signal else 1)


if __name__ == "__main__":
    main()
