"""How fast Snakemake plans ftlab at paper scale, and decides that a finished run has nothing to do.

Measured side by side, as wall time of the `snakemake` command (Python start-up included):
  * parse only (`--list-rules`) and dry-run (`-n`) of a paper-scale grid config (>= 2,000 jobs:
    every default task x all six distillation variants x many seeds, plus faithfulness of the
    cot_before runs), target <= 5 s;
  * the same dry-run of a bare Snakefile with the same number of jobs (the floor: Snakemake itself);
  * a no-op rerun decision (`-n`) on a finished smoke workdir (pass --smoke-workdir), target <= 5 s;
  * the parse-time cost of the per-stage code hashes (`code_hash` in rules/common.smk).

    .venv/bin/python bench/dag.py [--seeds 25] [--smoke-workdir DIR [--smoke-config FILE]] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def grid_config(seeds: int) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    studies = config.setdefault("studies", {})
    dist = studies.setdefault("distillation", {"teacher": "teacher", "student": "student"})
    dist["tasks"] = list(config["tasks"])
    dist["seeds"] = list(range(seeds))
    dist.pop("variants", None)  # all six
    return config


def snakemake(snakefile: Path, workdir: Path, *args: str, configfile: Path | None = None):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir)]
    if configfile:
        cmd += ["--configfile", str(configfile)]
    cmd += ["--cores", "2", *args]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def n_jobs(out: str) -> int:
    m = re.search(r"^total\s+(\d+)", out, re.M)
    return int(m.group(1)) if m else 0


def best(fn, repeat: int):
    runs = [fn() for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def bare_snakefile(path: Path, jobs: int) -> Path:
    path.write_text(
        f"N = range({jobs - 2})\n\n"
        "rule all:\n    input: expand('out/{i}.txt', i=N)\n\n"
        "rule make:\n    output: 'out/{i}.txt'\n    shell: 'touch {output}'\n"
    )
    return path


def code_hash_cost() -> tuple[float, int]:
    from ftlab import codehash

    scripts = sorted((REPO / "scripts").glob("*.py"))
    t = time.perf_counter()
    for s in scripts:
        codehash.stage_hash(s)
    return time.perf_counter() - t, len(scripts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=25, help="distillation seeds in the grid")
    ap.add_argument("--smoke-workdir", type=Path, help="a workdir where the smoke config has run")
    ap.add_argument(
        "--smoke-config", type=Path, default=REPO / "tests/configs/smoke.yaml", help="its config"
    )
    ap.add_argument("--repeat", type=int, default=3, help="best of N")
    args = ap.parse_args()
    snakefile = REPO / "Snakefile"
    with tempfile.TemporaryDirectory(prefix="ftlab-dag-") as tmp:
        tmp = Path(tmp)
        cfg = tmp / "grid.yaml"
        cfg.write_text(yaml.safe_dump(grid_config(args.seeds)))
        (tmp / "grid").mkdir()
        parse_s, _ = best(
            lambda: snakemake(snakefile, tmp / "grid", "--list-rules", configfile=cfg), args.repeat
        )
        dry_s, out = best(
            lambda: snakemake(snakefile, tmp / "grid", "-n", "--quiet", "all", configfile=cfg),
            args.repeat,
        )
        jobs = n_jobs(out)
        (tmp / "bare").mkdir()
        bare = bare_snakefile(tmp / "bare" / "Snakefile", jobs)
        bare_s, bare_out = best(
            lambda: snakemake(bare, tmp / "bare", "-n", "--quiet", "all"), args.repeat
        )
        hash_s, n_scripts = code_hash_cost()
        print(f"grid config: {jobs} jobs ({args.seeds} seeds x 6 variants x 7 tasks + the rest)")
        print(f"  parse only (--list-rules)        {parse_s:6.2f} s")
        print(
            f"  dry-run (-n)                     {dry_s:6.2f} s   target <= 5 s: {'ok' if dry_s <= 5 else 'MISSED'}"
        )
        print(
            f"  bare Snakefile, {n_jobs(bare_out)} jobs, -n   {bare_s:6.2f} s   ftlab / bare = {dry_s / bare_s:.2f}x"
        )
        print(f"  DAG building beyond parsing      {dry_s - parse_s:6.2f} s")
        print(
            f"  code_hash of {n_scripts} rule scripts   {hash_s * 1000:6.1f} ms (cold, once per parse)"
        )
        if args.smoke_workdir:
            smoke = args.smoke_config.resolve()
            noop_s, out = best(
                lambda: snakemake(snakefile, args.smoke_workdir, "-n", configfile=smoke),
                args.repeat,
            )
            nothing = "Nothing to be done" in out
            print(
                f"no-op rerun of the smoke config    {noop_s:6.2f} s   nothing to do: {nothing}; "
                f"target <= 5 s: {'ok' if noop_s <= 5 else 'MISSED'}"
            )
        else:
            print(
                "no-op rerun: pass --smoke-workdir DIR (a workdir where the smoke config has run)"
            )


if __name__ == "__main__":
    main()
