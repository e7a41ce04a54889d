"""kubectl and kustomize for the deployment tests: ``find_kubectl`` (KUBECTL, a kubectl on PATH, or the one
deploy/install-tools.sh puts in .run/tools/bin, with kustomize >= v4), ``kustomize`` (a directory's built
objects) and ``by_kind``. One of the topic modules of test helpers listed in support.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def find_kubectl() -> str | None:
    candidates = [os.environ.get("KUBECTL"), shutil.which("kubectl"), str(ROOT / ".run" / "tools" / "bin" / "kubectl")]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        try:
            out = subprocess.run(
                [candidate, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30
            )
            major = json.loads(out.stdout).get("kustomizeVersion", "v0").lstrip("v").split(".")[0]
        except (OSError, ValueError, subprocess.TimeoutExpired):
            continue
        if major.isdigit() and int(major) >= 4:
            return candidate
    return None


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}
