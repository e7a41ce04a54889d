"""Run the whole suite on this machine as processes: every service in one process (granian embedded), nginx as the
edge.

Used by ``just up`` (foreground, Ctrl-C stops everything) and by the test harness (free ports, a database per
service per run, private NATS and Redis when asked).

    python -m deploy.local up [--edge-port 5500]

``up`` gives auth a development operator key (``AUTH_API_KEY`` from the environment, else a random one made
for the run and written to ``.run/dev-operator-key``), so ``just token`` (deploy/dev_token.py) can mint the first
agent token. Only this runner does that: compose and Kubernetes take AUTH_API_KEY from their env/secret.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deploy.edge.generate import rate_limits_from, render_nginx
from deploy.edge.routes import load

ROOT = Path(__file__).resolve().parents[1]
SERVICES_DIR = ROOT / "services"
# Variables every service reads; per-service databases are named <prefix><service>.
DEFAULT_ENV = {
    "MYSQL_HOST": "127.0.0.1",
    "MYSQL_PORT": "3306",
    "MYSQL_USER": "root",
    "MYSQL_PASSWORD": "",
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": "secret",
    "ROOM_DAY_DEFAULT_TIMEOUT": "1",
}
# Services with no tables of their own get no database.
NO_DATABASE = {"auth", "realtime"}
# Settings the edge reads too (nginx passes only these to its njs code; see deploy/edge/cors.js).
EDGE_ENV = ("CORS_ALLOWED_ORIGINS",)
# Client addresses the local edge never rate-limits unless EDGE_RATE_LIMIT_EXEMPT says otherwise.
LOOPBACK = "127.0.0.1 ::1"


# Where `up` keeps the development operator key of the current run (read by deploy/dev_token.py).
DEV_KEY_FILE = ROOT / ".run" / "dev-operator-key"


def dev_operator_key(path: Path = DEV_KEY_FILE) -> str:
    """AUTH_API_KEY for a local `up`: the environment's (deploy/dev_token.py reads it there too), else a new random
    one stored owner-only in ``path`` for deploy/dev_token.py. Random per run rather than a fixed string, so it is
    worth nothing beyond this machine and this run."""
    path.unlink(missing_ok=True)  # never leave a previous run's key behind
    key = os.environ.get("AUTH_API_KEY")
    if key:
        return key
    key = f"dev-{secrets.token_urlsafe(18)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    return key


def discover_services() -> list[str]:
    return sorted(p.name for p in SERVICES_DIR.iterdir() if (p / p.name / "app.py").exists())


def service_argv(service: str, port: int) -> list[str]:
    """One service, one process (servicekit.serve: granian embedded, no supervisor), as the image's CMD runs it."""
    argv = [sys.executable, "-m", "servicekit.serve", f"{service}.app:app", "--host", "127.0.0.1", "--port", str(port)]
    return argv if service == "realtime" else [*argv, "--no-ws"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_private_brokers(run_dir: Path) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """A NATS (JetStream) and a Redis of this run only: durable consumers and streams of other suites running on
    the machine at the same time would otherwise take this run's events (and add their work to its figures)."""
    nats_port, redis_port = free_port(), free_port()
    nats = [shutil.which("nats-server") or "/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", str(nats_port), "-js",
            "-sd", str(run_dir / "nats")]  # fmt: skip
    redis = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(redis_port), "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "no"]  # fmt: skip
    processes = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for argv in (nats, redis)]
    for port in (nats_port, redis_port):
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    return processes, f"nats://127.0.0.1:{nats_port}", f"redis://127.0.0.1:{redis_port}/0"


def wait_http(url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception as exc:  # not up yet
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


@dataclass
class LocalSuite:
    edge_port: int
    service_ports: dict[str, int]
    db_prefix: str = ""
    nats_url: str = "nats://127.0.0.1:4222"
    redis_url: str = "redis://127.0.0.1:6379/0"
    extra_env: dict[str, str] = field(default_factory=dict)
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ems-suite-")))
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # A second instance of these services (service -> its port, process "<service>-2"), behind the same upstream.
    second_ports: dict[str, int] = field(default_factory=dict)

    @property
    def edge(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.service_ports[service]}"

    def db_name(self, service: str) -> str:
        return f"{self.db_prefix}{service}"

    def service_env(self, service: str) -> dict[str, str]:
        env = {**os.environ, **DEFAULT_ENV, **self.extra_env}
        env.update(
            SERVICE_NAME=service,
            NATS_URL=self.nats_url,
            REDIS_URL=self.redis_url,
            MYSQL_DATABASE="" if service in NO_DATABASE else self.db_name(service),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log_dir = self.log_dir or self.run_dir
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child for its lifetime
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.processes[name] = process
        return process

    def start_service(self, service: str, second: bool = False) -> subprocess.Popen[bytes]:
        port = self.second_ports[service] if second else self.service_ports[service]
        return self._spawn(
            f"{service}-2" if second else service, service_argv(service, port), self.service_env(service)
        )

    def start_edge(self) -> subprocess.Popen[bytes]:
        nginx_dir = self.run_dir / "nginx"
        nginx_dir.mkdir(parents=True, exist_ok=True)
        upstreams = {s: f"127.0.0.1:{p}" for s, p in self.service_ports.items()}
        for service, port in self.second_ports.items():
            # max_fails=0: a server that refused a connection is not set aside for 10 s (nginx's default): while
            # one instance restarts the edge would otherwise count the other out after a single reset too and
            # answer 503 with "no live upstreams". A refused connect costs nothing on loopback, and nginx then
            # sends the request to the other server (proxy_next_upstream error).
            upstreams[service] = (
                f"127.0.0.1:{self.service_ports[service]} max_fails=0; server 127.0.0.1:{port} max_fails=0"
            )
        table = load()
        # Settings may override the table's per-client limits; local runs exempt loopback unless told otherwise
        # (benchmarks and tests hammer the edge from 127.0.0.1; README "Rate limits").
        limits, exempt = rate_limits_from(table, {**os.environ, **self.extra_env}, exempt_default=LOOPBACK)
        conf = render_nginx(
            table,
            upstreams,
            listen=f"127.0.0.1:{self.edge_port}",
            run_dir=str(nginx_dir),
            as_root=os.geteuid() == 0,
            rate_limits=limits,
            rate_exempt=exempt,
        )
        (nginx_dir / "nginx.conf").write_text(conf, encoding="utf-8")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        argv = [nginx, "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"), "-g", "daemon off;"]
        env = {**os.environ, **{k: v for k, v in self.extra_env.items() if k in EDGE_ENV}}
        return self._spawn("edge", argv, env)

    def start(self, services: list[str] | None = None, timeout: float = 60.0) -> None:
        names = services or discover_services()
        for service in names:
            self.start_service(service)
        for service in self.second_ports:
            self.start_service(service, second=True)
        self.start_edge()
        for service in names:
            wait_http(f"{self.url(service)}/ready", timeout, self.processes[service])
        for service, port in self.second_ports.items():
            wait_http(f"http://127.0.0.1:{port}/ready", timeout, self.processes[f"{service}-2"])
        wait_http(f"{self.edge}/health", timeout, self.processes["edge"])

    def stop(self) -> None:
        """SIGTERM everything (graceful shutdown), then SIGKILL what is left."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the suite locally")
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--edge-port", type=int, default=int(os.environ.get("PORT", "0") or 0))
    args = parser.parse_args(argv)
    table = load()
    log_dir = ROOT / ".run" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    operator_key = dev_operator_key()
    suite = LocalSuite(
        edge_port=args.edge_port or table.edge_port,
        service_ports={s: table.service_ports[s] for s in discover_services()},
        nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        db_prefix=os.environ.get("DB_PREFIX", ""),
        extra_env={"AUTH_API_KEY": operator_key},
        run_dir=ROOT / ".run",
        log_dir=log_dir,
    )
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        suite.start()
        print(f"suite up: edge {suite.edge}; logs in {log_dir}", flush=True)
        token_command = "just token" if suite.edge_port == table.edge_port else f"PORT={suite.edge_port} just token"
        print(
            f"dev operator key, for local use only (x-api-key of GET /auth/create): {operator_key}\n"
            f"  an agent token: {token_command}",
            flush=True,
        )
        while not stop:
            dead = [n for n, p in suite.processes.items() if p.poll() is not None]
            if dead:
                print(f"exited: {dead}; see {log_dir}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        suite.stop()
        DEV_KEY_FILE.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
