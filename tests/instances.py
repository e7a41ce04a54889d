"""More processes beside the suite's: a whole private suite of some services with its own settings
(``private_suite``: the harness's suite, and the flows that need other settings), more realtime processes
(``start_instance``/``stop_instance``: same env, Redis and NATS, their own port) and an nginx in front of them
(``nginx_conf``, ``running_nginx``). One of the topic modules of test helpers listed in support.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from deploy.local import NO_DATABASE, LocalSuite, free_port, start_private_brokers


@contextlib.contextmanager
def private_suite(
    services: Sequence[str], extra_env: Mapping[str, str], run_dir: Path | None = None, label: str = "test"
) -> Iterator[LocalSuite]:
    """``services`` behind their own edge, on a private NATS and Redis and their own databases, with ``extra_env``;
    stopped, its databases dropped and its run folder removed (kept with KEEP_TEST_LOGS) afterwards. A start that
    fails prints the tail of every process's log."""
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix=f"ems-{label}-"))
    brokers, nats_url, redis_url = start_private_brokers(run_dir)
    local = LocalSuite(
        edge_port=free_port(),
        service_ports={s: free_port() for s in services},
        db_prefix=f"t{uuid.uuid4().hex[:8]}_",
        nats_url=nats_url,
        redis_url=redis_url,
        extra_env=dict(extra_env),
        run_dir=run_dir,
    )
    try:
        try:
            local.start(list(services))
        except Exception:
            for log in sorted(run_dir.glob("*.log")):
                print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-4000:]}")
            raise
        yield local
    finally:
        local.stop()
        for broker in brokers:
            broker.terminate()
        names = [local.db_name(s) for s in services if s not in NO_DATABASE]
        drop = "".join(f"DROP DATABASE IF EXISTS `{name}`;" for name in names)
        if drop:
            subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", drop], check=False, capture_output=True)
        if os.environ.get("KEEP_TEST_LOGS"):
            print(f"logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


def start_instance(suite: Any, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """Another realtime process with the suite's env (same Redis, NATS, secrets) on its own port."""
    from deploy.local import free_port, service_argv, wait_http

    port = free_port()
    argv = service_argv("realtime", port)
    log = open(suite.local.run_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(  # noqa: S603 - its own process group (kill test)
        argv, env=suite.local.service_env("realtime"), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    wait_http(f"http://127.0.0.1:{port}/ready", 30.0, process)
    return process, f"http://127.0.0.1:{port}"


def stop_instance(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def nginx_conf(port: int, run_dir: Path, upstream: str, locations: str) -> str:
    """A small nginx in front of realtime instances (``upstream``: the servers of upstream ``realtime``)."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log warn;
events {{ worker_connections 2048; }}
http {{
  access_log off;
  client_body_temp_path {run_dir}/body; proxy_temp_path {run_dir}/proxy; fastcgi_temp_path {run_dir}/fastcgi;
  uwsgi_temp_path {run_dir}/uwsgi; scgi_temp_path {run_dir}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream realtime {{ {upstream} }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    {locations}
  }}
}}
"""


@contextlib.contextmanager
def running_nginx(conf: str, run_dir: Path, ready_url: str) -> Iterator[None]:
    """nginx with ``conf`` in the foreground for the block, answering ``ready_url`` before it starts."""
    from deploy.local import wait_http

    (run_dir / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    edge = subprocess.Popen(  # noqa: S603
        [nginx, "-p", str(run_dir), "-c", str(run_dir / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_http(ready_url, 15.0, edge)
        yield
    finally:
        edge.terminate()
        edge.wait(10)


def kill_service(local: LocalSuite, service: str) -> None:
    """``kill -9`` a service of a LocalSuite (its process and any children), with no chance to clean up."""
    root = local.processes[service].pid
    for pid in [*descendants(root), root]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    local.processes[service].wait(10)


def restart_service(local: LocalSuite, service: str, timeout: float = 60.0) -> None:
    """Start a killed or stopped service again with the same port and settings; returns once it is ready."""
    from deploy.local import wait_http

    local.start_service(service)
    wait_http(f"{local.url(service)}/ready", timeout, local.processes[service])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, deepest first."""
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            found += [*descendants(child), child]
    return found
