#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started, each by its pid file (never by name), newest
# first; daemons that were already running before it are left alone.
set -uo pipefail

DIR="${FTLAB_SLURM_DIR:-/tmp/ftlab-slurm}"
[[ -s "$DIR/started" ]] || exit 0

for pidfile in $(tac "$DIR/started"); do
    [[ -s "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    kill -0 "$pid" 2>/dev/null || continue
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stopped $(basename "$pidfile" .pid) (pid $pid)"
done
rm -f "$DIR/started"
exit 0
