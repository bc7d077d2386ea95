#!/usr/bin/env bash
# The speed benches side by side in one run, on this machine's CPU (~5 minutes on 2 cores):
#   bash bench/cpu.sh [OUT]        (default OUT: cpu_figures.txt; needs `make` set-up: .venv/)
# Each bench measures ftlab against its reference in the same process (ratios, not absolute
# times, are the figures to compare across machines); README "Speed" quotes them.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-cpu_figures.txt}")
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH"
echo "# ftlab CPU benches, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc) cores" > "$OUT"
for bench in "bench/job_overhead.py" "bench/generate.py" "bench/faithfulness.py" \
             "bench/finetune.py --steps 20"; do
  echo "## $bench" >> "$OUT"
  timeout 600 $PY $bench 2>/dev/null | grep -v "it/s" >> "$OUT" || echo "(failed or timed out)" >> "$OUT"
done
echo "figures in $OUT"
