# Recipes for the suite. On a fresh machine run them through ./dev (it installs uv and just first).
set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Everything a fresh machine needs: system packages, Python workspace, Node test clients, the edge's API reference
# renderer (deploy/edge/docs, no install scripts), backing services.
setup:
    deploy/system-packages.sh
    if [ -x deploy/install-tools.sh ]; then deploy/install-tools.sh; fi
    uv sync --all-packages --frozen
    if [ -f tests/js/package.json ]; then npm ci --prefix tests/js --no-audit --no-fund --loglevel=error; fi
    npm ci --prefix deploy/edge/docs --ignore-scripts --no-audit --no-fund --loglevel=error
    deploy/backing-services.sh

# Bring the whole suite up on localhost: every service plus the nginx edge on :5500 (Ctrl-C stops it).
up: setup
    uv run python -m deploy.local up

# Print an agent token from the suite `just up` runs (its dev operator key; `just token --json`: auth's answer).
token *args:
    @uv run python -m deploy.dev_token {{args}}

# Copy the original gateway's `conference` database into the services' databases (`just migrate --help`).
migrate *args:
    uv run python -m deploy.migrate {{args}}

# Rebuild a running suite's read models from their owners (after a migration's copy, a new database, ...):
# SERVICE = link|conference|telemetry|recording|realtime|all; NATS_URL picks the suite (default: the local runner's).
rebuild-read-models SERVICE *args:
    uv run python -m deploy.rebuild {{SERVICE}} {{args}}

# Run the whole test suite (lint, generated-file check, tests against real MariaDB/Redis/NATS).
test: setup
    uv run ruff check services libs tests deploy
    uv run python -m deploy.edge.generate --check
    uv run python -m deploy.edge.openapi --check
    uv run python -m deploy.edge.policy --check
    uv run python deploy/k8s-gen/generate.py --check
    uv run python -m deploy.observability.generate --check
    uv run pytest

# Regenerate the edge (nginx, HTTPRoutes, the merged OpenAPI document of /docs, the README's authorization matrix),
# the deployment files (k8s base, compose.yaml) and docs/architecture.md.
generate:
    uv run python -m deploy.edge.generate
    uv run python -m deploy.edge.openapi
    uv run python -m deploy.edge.policy
    uv run python deploy/k8s-gen/generate.py
    uv run python -m deploy.observability.generate
    uv run python -m deploy.architecture

# Every benchmark in one invocation, the original stack side by side: three markdown tables (tests/bench/report.py;
# `just bench --quick` a smoke run, `--only sockets,webhooks`, `--no-baseline`, `--per-process`, `--json PATH`).
bench *args: setup
    uv run python -m tests.bench {{args}}

# Faults under load against a private suite (its own NATS, Redis, MariaDB): kill -9 NATS, Redis, MariaDB, one
# instance of each service; MariaDB frozen 10 s; a NATS outage; then checks that nothing acknowledged was lost or
# applied twice and no Socket.IO emit missed or received twice, and a markdown table (tests/chaos/run.py; `--help`).
chaos *args:
    uv run python -m tests.chaos {{args}}

# Rolling restarts under load against a private suite with two instances of every service behind the edge: each
# instance in turn SIGTERMed, drained, started again; then checks that no request failed, nothing acknowledged was
# lost or applied twice and every Socket.IO client reconnected, and a markdown table (tests/chaos/rolling.py; `--help`).
rolling-restart *args:
    uv run python -m tests.chaos.rolling {{args}}

lint:
    uv run ruff check services libs tests deploy
    uv run ruff format --check services libs tests deploy

# Fuzz every operation of the edge's OpenAPI document with schemathesis (EXAMPLES per operation, every phase, a
# time budget of MAX_TIME seconds per credential, a new seed) and send the whole attack corpus, against a private
# suite on 127.0.0.1 only; the figures of the run go to .run/fuzz-figures.jsonl (README: "Fuzzing and attack corpus").
fuzz EXAMPLES="25" MAX_TIME="300":
    mkdir -p .run && rm -f .run/fuzz-figures.jsonl .run/attack-figures.json
    FUZZ_SEED=random FUZZ_EXAMPLES={{EXAMPLES}} FUZZ_MAX_TIME={{MAX_TIME}} FUZZ_FIGURES=.run/fuzz-figures.jsonl \
        ATTACK_FULL=1 ATTACK_FIGURES=.run/attack-figures.json timeout $((2 * {{MAX_TIME}} + 900)) \
        uv run pytest tests/flows/test_fuzz.py tests/flows/test_attack_corpus.py -p no:cacheprovider -s -q
