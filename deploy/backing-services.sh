#!/usr/bin/env bash
# Start MariaDB, Redis and NATS (JetStream) on their standard local ports when they are not running.
set -euo pipefail
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 100); do up "$1" && return 0; sleep 0.2; done; echo "port $1 did not open" >&2; return 1; }

if ! up 3306; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_port 3306
fi
if ! up 6379; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_port 6379
fi
if ! up 4222; then
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
  wait_port 4222
fi
echo "backing services up: mariadb :3306, redis :6379, nats :4222"
