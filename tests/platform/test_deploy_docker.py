"""deploy/docker/Dockerfile: static checks (no Docker engine here) and its start command run for real.

The start command and health check are taken from the Dockerfile itself and run against the workspace's
virtualenv (the same packages `uv sync --frozen --all-packages --no-dev` installs in the image).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
IGNORE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, rest))
    return out


def _arg_defaults() -> dict[str, str]:
    defaults = {}
    for keyword, rest in instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            defaults[name] = value
    return defaults


def test_python_base_images_and_uv_sync() -> None:
    python_image = _arg_defaults()["PYTHON_IMAGE"]
    assert python_image == "python:3.11-slim"
    froms = [stage[0][1] for stage in stages()]
    assert froms[-1] == "${PYTHON_IMAGE} AS runtime"
    assert "${PYTHON_IMAGE} AS build" in froms
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert "uv sync --frozen --all-packages --no-dev" in runs
    copies = [rest for keyword, rest in instructions() if keyword == "COPY" and "--from" not in rest]
    for copied in copies:
        for source in copied.split()[:-1]:
            assert (ROOT / source).exists(), source


def test_runtime_stage_is_non_root_with_service_selection_and_health_check() -> None:
    runtime = stages()[-1]
    keywords = [keyword for keyword, _ in runtime]
    user = next(rest for keyword, rest in runtime if keyword == "USER")
    assert user.split(":")[0] not in {"0", "root"}
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in {"RUN", "COPY"})
    assert any(keyword == "ARG" and rest.startswith("SERVICE") for keyword, rest in runtime)
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "SERVICE=${SERVICE}" in env
    healthcheck = next(rest for keyword, rest in runtime if keyword == "HEALTHCHECK")
    assert "/health" in healthcheck
    cmd = json.loads(next(rest for keyword, rest in runtime if keyword == "CMD"))
    for part in ("exec python -m servicekit.serve", "--host 0.0.0.0", "$SERVICE.app:app"):
        assert part in cmd[-1]


def test_build_context_keeps_what_the_build_needs() -> None:
    patterns = [line.strip() for line in IGNORE.read_text(encoding="utf-8").splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    for needed in ("pyproject.toml", "uv.lock", "libs", "services"):
        assert needed not in patterns
    assert {".git", "**/.venv", "tests"} <= set(patterns)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_start_command_serves_health_and_stops_gracefully(tmp_path) -> None:
    runtime = stages()[-1]
    command = json.loads(next(rest for keyword, rest in runtime if keyword == "CMD"))
    health = json.loads(next(rest for keyword, rest in runtime if keyword == "HEALTHCHECK").split(" CMD ", 1)[1])
    port = _free_port()
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "SERVICE": "auth", "PORT": str(port), "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    env["AUTH_API_KEY"] = "docker-test-key"
    # auth talks to NATS only: a private server keeps the test independent of the machine's backing services.
    nats_port = _free_port()
    nats = subprocess.Popen(
        [shutil.which("nats-server") or "/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", str(nats_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env["NATS_URL"] = f"nats://127.0.0.1:{nats_port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", nats_port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    # The image runs from the installed packages, not from a source checkout.
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode(errors="replace") if process.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    body = response.read()
                    break
            except OSError:
                time.sleep(0.3)
        assert json.loads(body) == {"status": "OK", "service": "auth"}
        # The image's HEALTHCHECK command passes against the running service.
        check = subprocess.run(health, env=env, capture_output=True, timeout=10)
        assert check.returncode == 0, check.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        for child in (process, nats):
            if child.poll() is None:
                child.kill()
                child.wait()
