"""Fixed cost of a model job: in-process (a fresh `python` importing torch + transformers ...)
against a warm ftlab.worker (scripts/ftlab/worker.py), side by side in one run.

    nice -n 15 .venv/bin/python bench/job_overhead.py [--reps 3] [--scripts evaluate finetune]
        [--smoke WORKDIR]

Each job is what Snakemake runs for a rule script: `python <copy>` where the copy holds Snakemake's
own preamble (the pickled `snakemake` object; made here with snakemake.script) and then the rule
script's own import statements (its first line delegates to the worker), then one line of
"useful work" that records the time. Per job it prints: the fixed cost (from the launch of the
job process to that line), the teardown (from that line to the job process's exit), their sum
(the whole job, as no work is done), and the CPU seconds of the job's processes (robust to a
shared machine; through the worker: the job process plus the child's own, after the fork).
The worker is started once (its start is printed: paid once per node and code version) and each
job is checked to have run in it (another pid than the job process).

--smoke WORKDIR: also a real evaluate job of a finished smoke run there (`snakemake -d WORKDIR
--configfile tests/configs/smoke.yaml --forcerun evaluate <one eval table>`), both ways: the
wall time Snakemake's benchmark file records for the job. It rewrites that table (same content).
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))
from ftlab import worker  # noqa: E402

DELEGATE = "from ftlab.worker import delegated  # noqa: F401, I001\n"
USEFUL = (
    "import os as _os, resource as _r, time as _t\n"
    "_u = _r.getrusage(_r.RUSAGE_SELF)\n"
    "open(snakemake.output[0], 'w').write(f'{_t.monotonic()} {_u.ru_utime + _u.ru_stime} {_os.getpid()}')\n"
)


def imports_of(script: Path) -> str:
    """The rule script's top-level import statements, in order, its delegate line first."""
    tree = ast.parse(script.read_text())
    lines = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return DELEGATE + "\n".join(line for line in lines if "ftlab.worker" not in line) + "\n"


def preamble(original: Path, out: Path) -> str:
    """Snakemake's preamble for a job of `original` writing `out` (as snakemake.script makes it)."""
    try:
        from snakemake.iocontainers import (
            InputFiles,
            Log,
            OutputFiles,
            Params,
            ResourceList,
            Wildcards,
        )
        from snakemake.script import PythonScript
        from snakemake.sourcecache import LocalSourceFile

        return PythonScript.generate_preamble(
            LocalSourceFile(str(original)), None, "", str(ROOT), InputFiles([]),
            OutputFiles([str(out)]), Params(), Wildcards(), 1, ResourceList(), Log([]), {},
            "bench", None, None, "", None, None, 0, None, True, None, True,
            preamble_addendum=f"__real_file__ = __file__; __file__ = {str(original)!r};",
        )  # fmt: skip
    except Exception as e:  # another Snakemake: an equivalent preamble
        print(f"(snakemake.script preamble unavailable: {e}; using a plain one)")

        class Obj:
            output = [str(out)]

        return (
            "######## snakemake preamble start (automatically inserted, do not edit) ########\n"
            f"import sys; sys.path.extend([{str(SCRIPTS)!r}]); import pickle; "
            f"snakemake = pickle.loads({pickle.dumps(Obj)!r}); "
            f"__real_file__ = __file__; __file__ = {str(original)!r};\n"
            "######## snakemake preamble end #########\n"
        )


def job_env(**extra) -> dict:
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}  # fmt: skip
    return {**os.environ, **threads, **extra}  # as Snakemake sets them for a 1-thread job


def run_job(copy: Path, out: Path, env: dict) -> dict:
    out.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(copy)], cwd=copy.parents[2], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    t_end = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{copy.name}: exit {proc.returncode}")
    useful, child_cpu, pid = out.read_text().split()
    cpu = usage.ru_utime + usage.ru_stime + (float(child_cpu) if int(pid) != proc.pid else 0.0)
    return {
        "fixed": float(useful) - t0,
        "teardown": t_end - float(useful),
        "total": t_end - t0,
        "cpu": cpu,
        "delegated": int(pid) != proc.pid,
    }


def wait_for(path: Path, timeout: float) -> float:
    t = time.monotonic()
    while not path.exists():
        if time.monotonic() - t > timeout:
            raise SystemExit(f"no worker socket after {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - t


def fixed_cost(scripts: list[str], reps: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ftlab-bench-", dir="/tmp"))
    (tmp / "w").mkdir(mode=0o700)
    sock = tmp / "w" / "bench.sock"
    jobs = {}
    for name in scripts:
        original = tmp / f"{name}.py"
        body = imports_of(SCRIPTS / f"{name}.py") + USEFUL
        original.write_text(body)
        copy = tmp / ".snakemake" / "scripts" / f"tmpbench.{name}.py"
        copy.parent.mkdir(parents=True, exist_ok=True)
        out = tmp / f"{name}.out"
        copy.write_text(preamble(original, out) + body)
        jobs[name] = (copy, out)

    env = job_env(FTLAB_WORKER_SOCKET=str(sock), FTLAB_WORKER_DIR=str(tmp / "w"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")]))
    log = open(f"{sock}.log", "w")
    t = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "ftlab.worker", "--socket", str(sock), "--idle-timeout", "120"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for(sock, 300)
    print(f"worker start (once per node and code version): {time.monotonic() - t:.2f} s wall")
    rows = {}
    try:
        for name, (copy, out) in jobs.items():
            for mode in ("in-process", "worker"):
                rows[name, mode] = []
            for _ in range(reps):  # interleaved, so that the machine's load hits both alike
                for mode in ("in-process", "worker"):
                    e = {**env, "FTLAB_WORKER": "0" if mode == "in-process" else "1"}
                    r = run_job(copy, out, e)
                    if r["delegated"] != (mode == "worker"):
                        where = "in a worker" if r["delegated"] else "in-process"
                        raise SystemExit(f"{name} {mode}: the job ran {where}; see {sock}.log")
                    rows[name, mode].append(r)
    finally:
        server.terminate()
        server.wait()

    print(
        f"\nfixed cost of a model job, median of {reps} (seconds; CPU: user+sys of its processes)"
    )
    head = f"{'script':<22}{'mode':<12}{'fixed':>8}{'teardown':>10}{'total':>8}{'CPU':>7}"
    print(head + f"{'ratio (total)':>15}")
    for name in jobs:
        med = {m: {k: statistics.median(r[k] for r in rows[name, m]) for k in rows[name, m][0]}
               for m in ("in-process", "worker")}  # fmt: skip
        for m in ("in-process", "worker"):
            x = med[m]
            line = f"{name:<22}{m:<12}{x['fixed']:>8.2f}{x['teardown']:>10.2f}{x['total']:>8.2f}"
            line += f"{x['cpu']:>7.2f}"
            if m == "worker":
                line += f"{med['in-process']['total'] / x['total']:>14.1f}x"
            print(line)
    print(
        "\n'useful work' of a job begins where 'fixed' ends; none is done here, so total = overhead"
    )


def smoke_job(workdir: Path, target: str, env: dict) -> float:
    # targets first: options taking several values would swallow them
    cmd = [sys.executable, "-m", "snakemake", target, "-s", str(ROOT / "Snakefile"),
           "-d", str(workdir), "--configfile", str(ROOT / "tests/configs/smoke.yaml"),
           "--cores", "1", "--quiet", "all", "--forcerun", "evaluate"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd="/tmp")
    if proc.returncode:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    rel = Path(target).relative_to("results/eval").with_suffix(".tsv")
    with open(workdir / "benchmarks" / "evaluate" / rel) as f:
        return float(next(csv.DictReader(f, delimiter="\t"))["s"])


def smoke(workdir: Path, reps: int) -> None:
    tables = sorted((workdir / "results" / "eval").rglob("*.parquet"))
    if not tables:
        raise SystemExit(f"{workdir}: no results/eval tables (run the smoke workflow there first)")
    target = str(tables[0].relative_to(workdir))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    print(f"\na real smoke evaluate job ({target}), its benchmark `s`:")
    d = worker.private_dir(env)

    def served() -> int:  # jobs of this workdir that a worker ran
        return sum(f.read_text().count(f" in {workdir}: child") for f in d.glob("*.sock.log"))

    def ready() -> bool:
        return any(
            f"started from {workdir};" in f.read_text() and Path(str(f)[: -len(".log")]).exists()
            for f in d.glob("*.sock.log")
        )

    smoke_job(workdir, target, env)  # if no worker serves this code and environment: starts one
    t = time.monotonic()
    while time.monotonic() - t < 300 and not ready():
        time.sleep(0.2)
    times = {"in-process": [], "worker": []}
    before = served()
    for _ in range(reps):
        times["in-process"].append(smoke_job(workdir, target, {**env, "FTLAB_WORKER": "0"}))
        times["worker"].append(smoke_job(workdir, target, env))
    print(f"  ({served() - before} of the {reps} worker-mode jobs ran in a worker)")
    a, b = (statistics.median(times[m]) for m in ("in-process", "worker"))
    print(f"  in-process {a:.2f} s   worker {b:.2f} s   ratio {a / b:.1f}x   (each: {times})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scripts", nargs="+", default=["evaluate", "finetune"],
                        help="rule scripts whose imports the jobs make")  # fmt: skip
    parser.add_argument("--smoke", type=Path, help="a finished smoke workdir: a real evaluate job")
    args = parser.parse_args()
    fixed_cost(args.scripts, args.reps)
    if args.smoke:
        smoke(args.smoke.resolve(), args.reps)


if __name__ == "__main__":
    main()
