#!/usr/bin/env bash
# `make demo`: start the demo site on 127.0.0.1, run examples/simple.py against it, stop the site.
set -euo pipefail
cd "$(dirname "$0")/.."
portfile=$(mktemp)
.venv/bin/gaggle demo-site --port 0 --port-file "$portfile" >/dev/null &
site=$!
trap 'kill "$site" 2>/dev/null; rm -f "$portfile"' EXIT
for _ in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
[ -s "$portfile" ] || { echo "demo site did not start" >&2; exit 1; }
host="http://127.0.0.1:$(cat "$portfile")"
echo "Running examples/simple.py against the demo site at $host for 10 s (50 users, 25/s)..."
# --no-reset-metrics: the summary covers the whole 10 s, logins included.
.venv/bin/gaggle run examples/simple.py --host "$host" -u 50 -r 25 -t 10s \
  --no-reset-metrics --status-codes --only-summary -R report.html "$@"
echo "Open report.html in a browser: the same run as charts and tables (it needs no network)."
