#!/usr/bin/env bash
# GPU readiness in one command, for the first time a CUDA machine is at hand (~15 minutes):
#   bash bench/gpu.sh [OUT]        (default OUT: gpu_figures.txt; needs `make` set-up: .venv/)
# 1. the smoke config end to end on the GPU (every model stage picks CUDA by itself) with the
#    embedded models, 2. the same config again with those models as `source: hf` local paths
#    (the hub code path, offline), 3. the benches; writes every figure to OUT: job times from
#    Snakemake's benchmark files, the device each artifact recorded, and the benches' output.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-gpu_figures.txt}")
PY=.venv/bin/python
SNAKE=".venv/bin/snakemake -s $PWD/Snakefile --cores all"
export PATH="$PWD/.venv/bin:$PATH"
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: bench/gpu.sh needs one')"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
{
  echo "# ftlab GPU readiness, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)"
  $PY -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| cuda', torch.version.cuda)"
} > "$OUT"

job_times() {  # per rule: jobs and summed seconds, from Snakemake's benchmark files
  $PY - "$1" <<'PY' >> "$OUT"
import sys, pathlib, pandas as pd
rows = []
for f in pathlib.Path(sys.argv[1], "benchmarks").rglob("*.tsv"):
    rows.append((f.relative_to(sys.argv[1]).parts[1], pd.read_csv(f, sep="\t")["s"].iloc[0]))
df = pd.DataFrame(rows, columns=["rule", "s"]).groupby("rule")["s"].agg(["count", "sum", "mean"])
print(df.round(2).to_string())
PY
}
devices() {  # the device every artifact's provenance records
  $PY - "$1" <<'PY' >> "$OUT"
import sys, json, pathlib, collections, pyarrow.parquet as pq
seen = collections.Counter()
root = pathlib.Path(sys.argv[1], "results")
for p in root.rglob("*.parquet"):
    meta = pq.read_schema(p).metadata or {}
    rec = json.loads(meta.get(b"ftlab.provenance", b"{}"))
    seen[(rec.get("rule"), rec.get("device"))] += 1
for p in root.rglob("provenance.json"):
    rec = json.loads(p.read_text())
    seen[(rec.get("rule"), rec.get("device"))] += 1
for (rule, device), n in sorted(seen.items(), key=str):
    print(f"{rule:28s} {device}: {n}")
PY
}

echo "## 1. smoke config, embedded models, on the GPU" >> "$OUT"
start=$(date +%s)
$SNAKE -d "$WORK/embedded" --configfile tests/configs/smoke.yaml > "$WORK/embedded.log" 2>&1 \
  || { tail -50 "$WORK/embedded.log" >> "$OUT"; exit 1; }
echo "wall: $(( $(date +%s) - start )) s" >> "$OUT"
job_times "$WORK/embedded"; devices "$WORK/embedded"

echo "## 2. the same models as source: hf (local save_pretrained directories)" >> "$OUT"
$PY - "$WORK" <<'PY'
import sys, yaml, pathlib
work = pathlib.Path(sys.argv[1])
config = yaml.safe_load(open("tests/configs/smoke.yaml"))
for name in config["models"]:
    config["models"][name] = {"source": "hf", "role": config["models"][name].get("role", "student"),
                              "name_or_path": str(work / "embedded/results/models" / name)}
config.pop("tokenizer", None)
(work / "hf.yaml").write_text(yaml.safe_dump(config))
PY
start=$(date +%s)
$SNAKE -d "$WORK/hf" --configfile "$WORK/hf.yaml" > "$WORK/hf.log" 2>&1 \
  || { tail -50 "$WORK/hf.log" >> "$OUT"; exit 1; }
echo "wall: $(( $(date +%s) - start )) s" >> "$OUT"
job_times "$WORK/hf"; devices "$WORK/hf"

echo "## 3. benches (wall clock)" >> "$OUT"
for bench in "bench/generate.py --wall" "bench/faithfulness.py --wall" \
             "bench/finetune.py --wall --steps 20 --skip-trl" "bench/job_overhead.py"; do
  echo "### $bench" >> "$OUT"
  [[ -f ${bench%% *} ]] || { echo "(missing)" >> "$OUT"; continue; }
  timeout 300 $PY $bench 2>/dev/null | grep -v "it/s" >> "$OUT" || echo "(failed or timed out)" >> "$OUT"
done
echo "figures in $OUT"
