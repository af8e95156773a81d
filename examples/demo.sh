#!/usr/bin/env bash
# `make demo`: start the demo shop on 127.0.0.1, load it with examples/shop.py (the live view
# shows the run), write an HTML report, stop the shop, say where the report is.
#   GAGGLE_DEMO_RUN_TIME  how long the load runs (default 20s; the tests shorten it)
#   GAGGLE_DEMO_REPORT    the report file (default report.html)
#   GAGGLE_PYTHON         the Python that has gaggle (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${GAGGLE_PYTHON:-.venv/bin/python}
run_time=${GAGGLE_DEMO_RUN_TIME:-20s}
report=${GAGGLE_DEMO_REPORT:-report.html}
portfile=$(mktemp)
"$python" -m gaggle demo-site --port 0 --port-file "$portfile" >/dev/null &
site=$!
trap 'kill "$site" 2>/dev/null; rm -f "$portfile"' EXIT
for _ in $(seq 100); do [ -s "$portfile" ] && break; sleep 0.1; done
[ -s "$portfile" ] || { echo "demo site did not start" >&2; exit 1; }
host="http://127.0.0.1:$(cat "$portfile")"
echo "Load testing the demo shop at $host for $run_time with examples/shop.py:"
echo "50 users, 25 started per second; 3 in 4 sign in, browse its JSON API, fill carts and check"
echo "out (slow); the others read pages and recommendations (which fail now and then)."
# --no-reset-metrics: the tables cover the whole run, sign-ins included.
"$python" -m gaggle run examples/shop.py --host "$host" -u 50 -r 25 -t "$run_time" \
  --no-reset-metrics --status-codes -R "$report" "$@"
path=$(realpath "$report")
echo
echo "The report of this run, charts and tables (it needs no network): file://$path"
echo "Open it in a browser: xdg-open $path"
echo "Next time, watch the run live and change it as it goes: bash examples/demo.sh --web 8089"
echo "and open http://127.0.0.1:8089 (the same charts, redrawn each second, with controls)."
