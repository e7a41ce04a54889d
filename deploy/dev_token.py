"""Print an agent console token from the locally running suite (``just token``).

Asks the local edge's ``GET /auth/create`` with the operator key that ``just up`` (deploy/local.py) gave auth:
``AUTH_API_KEY`` from the environment, else the run's key in ``.run/dev-operator-key``. Prints the token alone
(for ``TOKEN=$(just token)``), or auth's whole JSON answer with ``--json``.

    python -m deploy.dev_token [--edge-port 5500] [--json]

The edge port is ``--edge-port``, else ``PORT`` (as for ``up``), else the route table's (5500). Named
dev_token, not token, so that it can never shadow the standard library's ``token`` module.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from deploy.edge.routes import load
from deploy.local import DEV_KEY_FILE


def operator_key(path: Path = DEV_KEY_FILE) -> str | None:
    key = os.environ.get("AUTH_API_KEY")
    if key:
        return key
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def fetch_token(edge: str, key: str, timeout: float = 10.0) -> dict[str, object]:
    """auth's answer to GET /auth/create: ``{"status": "OK", "token": ...}``; raises on anything else."""
    request = urllib.request.Request(f"{edge}/auth/create", headers={"x-api-key": key})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{edge}/auth/create answered {exc.code}: {exc.read().decode(errors='replace')}") from exc
    if not isinstance(body, dict) or body.get("status") != "OK" or not body.get("token"):
        raise RuntimeError(f"{edge}/auth/create answered {body!r}")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print an agent token from the local suite (GET /auth/create)")
    parser.add_argument("--edge-port", type=int, default=int(os.environ.get("PORT", "0") or 0))
    parser.add_argument("--json", action="store_true", help="print auth's whole JSON answer, not just the token")
    args = parser.parse_args(argv)
    edge = f"http://127.0.0.1:{args.edge_port or load().edge_port}"
    key = operator_key()
    if key is None:
        print(f"no operator key: set AUTH_API_KEY, or start the suite with `just up` (writes {DEV_KEY_FILE})",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        body = fetch_token(edge, key)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"no token from {edge}: {exc} (is `just up` running on that port?)", file=sys.stderr)
        return 1
    print(json.dumps(body) if args.json else body["token"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
