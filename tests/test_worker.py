"""ftlab.worker: a job sent to a warm worker behaves as the same job run in-process (its output,
its stdout/stderr, its exit status), dies with its job process, and is never served by a worker
for other code. The workers here preload only `json`, so each starts in a fraction of a second."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftlab import worker

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# The body of a rule script: its first line hands the job to a worker, the rest is the job.
BODY = """\
from ftlab.worker import delegated  # noqa: F401, I001
import json, os, sys, time
print("to stdout", snakemake["x"])
print("to stderr", snakemake["x"], file=sys.stderr)
time.sleep(snakemake.get("sleep", 0))
Path = __import__("pathlib").Path
Path(snakemake["pid"]).write_text(str(os.getpid()))
time.sleep(snakemake.get("then_sleep", 0))
if snakemake.get("fail") == "raise":
    raise ValueError("boom")
if snakemake.get("fail") == "exit":
    sys.exit(3)
record = {"x": snakemake["x"], "stdin": sys.stdin.read(), "cwd": os.getcwd(), "argv": sys.argv[1:],
          "env": os.environ.get("FTLAB_TEST_VAR"), "file": __file__, "name": __name__,
          "umask": os.umask(0o022)}
tmp = snakemake["out"] + ".tmp"
Path(tmp).write_text(json.dumps(record, sort_keys=True))
os.replace(tmp, snakemake["out"])
left_open = open(snakemake["out"] + ".open", "w")  # flushed when the interpreter ends
left_open.write("flushed")
"""


def write_job(tmp_path: Path, name: str, **obj) -> Path:
    """The script as Snakemake runs it: its copy under .snakemake/scripts/ with a preamble that
    unpickles the `snakemake` object and points `__file__` at the original."""
    original = tmp_path / f"{name}.py"
    original.write_text(BODY)
    obj = {
        "x": name,
        "out": str(tmp_path / f"{name}.json"),
        "pid": str(tmp_path / f"{name}.pid"),
        **obj,
    }
    preamble = (
        "######## snakemake preamble start (automatically inserted, do not edit) ########\n"
        f"import sys; sys.path.extend([{str(SCRIPTS)!r}]); import pickle; "
        f"snakemake = pickle.loads({pickle.dumps(obj)!r}); "
        f"__real_file__ = __file__; __file__ = {str(original)!r};\n"
        "######## snakemake preamble end #########\n"
    )
    copy = tmp_path / ".snakemake" / "scripts" / f"tmpabc.{name}.py"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(preamble + BODY)
    return copy


@pytest.fixture
def env(tmp_path):
    d = tmp_path / "workers"
    d.mkdir(mode=0o700)
    return {
        **os.environ,
        "PYTHONPATH": str(SCRIPTS),
        "FTLAB_WORKER_DIR": str(d),
        "FTLAB_WORKER_PRELOAD": "json",
        "FTLAB_WORKER_IDLE": "60",
        "FTLAB_TEST_VAR": "set",
    }


def run_job(
    copy: Path, env: dict, stdin: str = "in", **kw
) -> tuple[subprocess.CompletedProcess, int]:
    """Run the job process as Snakemake does (`python <copy> args`); also its pid."""
    proc = subprocess.Popen(
        [sys.executable, str(copy), "arg1"],
        cwd=copy.parents[2],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
    out, err = proc.communicate(stdin, timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid


def ran_in(tmp_path: Path, name: str) -> int:
    return int((tmp_path / f"{name}.pid").read_text())


def wait_for(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


class Worker:
    def __init__(self, env: dict, socket_path: Path, *args: str):
        self.socket = socket_path
        self.log = Path(f"{socket_path}.log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ftlab.worker", "--socket", str(socket_path), *args],
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=socket_path.parent,
        )
        assert wait_for(socket_path.exists), self.log.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.fixture
def served(env, tmp_path):
    """A worker on its own socket (FTLAB_WORKER_SOCKET), started with the jobs' environment."""
    sock = Path(env["FTLAB_WORKER_DIR"]) / "w.sock"
    env = {**env, "FTLAB_WORKER_SOCKET": str(sock)}
    w = Worker(env, sock)
    yield env, w
    w.stop()


def test_a_job_through_the_worker_is_the_job_in_process(served, tmp_path):
    env, w = served
    outputs = {}
    for mode in ("0", ""):
        name = f"job{mode or 'w'}"
        proc, pid = run_job(write_job(tmp_path, name, x="same"), {**env, "FTLAB_WORKER": mode})
        assert proc.returncode == 0, proc.stderr
        assert (ran_in(tmp_path, name) == pid) == (mode == "0")  # else: the worker's child ran it
        # the job's own stdout/stderr/stdin: the child wrote to the job process's pipes
        assert proc.stdout == "to stdout same\n"
        assert proc.stderr == "to stderr same\n"
        outputs[mode] = json.loads((tmp_path / f"{name}.json").read_text())
        assert (tmp_path / f"{name}.json.open").read_text() == "flushed"
        assert not list(tmp_path.glob("*.tmp"))
    for record in outputs.values():
        record["file"] = Path(record["file"]).name  # each job's own script file
    assert outputs["0"] == {**outputs[""], "file": "job0.py"}
    assert outputs[""]["stdin"] == "in" and outputs[""]["argv"] == ["arg1"]
    assert outputs[""]["cwd"] == str(tmp_path) and outputs[""]["env"] == "set"
    assert outputs[""]["name"] == "__main__"


def test_jobs_run_concurrently_in_the_worker(served, tmp_path):
    env, w = served
    procs = []
    for i in range(3):
        copy = write_job(tmp_path, f"c{i}", sleep=0.5)
        procs.append(
            subprocess.Popen([sys.executable, str(copy)], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )  # fmt: skip
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert {ran_in(tmp_path, f"c{i}") for i in range(3)}.isdisjoint(p.pid for p in procs)


@pytest.mark.parametrize("fail,code", [("raise", 1), ("exit", 3)])
def test_a_failing_job_exits_with_its_status_and_traceback(served, tmp_path, fail, code):
    env, w = served
    proc, pid = run_job(write_job(tmp_path, "bad", fail=fail), env)
    assert ran_in(tmp_path, "bad") != pid
    assert proc.returncode == code
    if fail == "raise":
        assert "Traceback (most recent call last)" in proc.stderr
        assert proc.stderr.rstrip().endswith("ValueError: boom")
        assert "runpy" not in proc.stderr and "worker.py" not in proc.stderr
    assert not (tmp_path / "bad.json").exists()


def test_killing_the_job_process_kills_its_child(served, tmp_path):
    env, w = served
    copy = write_job(tmp_path, "long", then_sleep=2.0)
    proc = subprocess.Popen([sys.executable, str(copy)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    pid_file = tmp_path / "long.pid"
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text())
    child = int(pid_file.read_text())
    assert child != proc.pid
    proc.kill()  # as Snakemake cancelling the job
    proc.wait()
    assert wait_for(lambda: not Path(f"/proc/{child}").exists(), timeout=10)  # killed and reaped
    time.sleep(2.5)  # past the moment it would have written its output
    assert not (tmp_path / "long.json").exists()
    assert "terminating it" in w.log.read_text()
    assert w.proc.poll() is None  # the worker goes on serving
    proc, pid = run_job(write_job(tmp_path, "next"), env)
    assert proc.returncode == 0 and ran_in(tmp_path, "next") != pid


def test_a_worker_for_other_code_serves_no_job(env, tmp_path):
    sock = Path(env["FTLAB_WORKER_DIR"]) / "stale.sock"
    env = {**env, "FTLAB_WORKER_SOCKET": str(sock)}
    w = Worker(env, sock, "--key", "0" * 24)  # as a worker still holding the code of an old hash
    try:
        proc, pid = run_job(write_job(tmp_path, "job"), env)
    finally:
        w.stop()
    assert proc.returncode == 0, proc.stderr
    assert ran_in(tmp_path, "job") == pid  # refused: the job ran in-process
    assert "refused" in proc.stderr
    assert json.loads((tmp_path / "job.json").read_text())["x"] == "job"


def test_the_hash_follows_the_code_and_the_environment(tmp_path, monkeypatch):
    package = tmp_path / "ftlab"
    shutil.copytree(worker.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(worker, "PACKAGE_DIR", package)
    env = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "1"}
    before = worker.key(env, ["json"])
    assert worker.key({**env, "PWD": "/elsewhere", "SHLVL": "3"}, ["json"]) == before
    assert worker.key({**env, "OMP_NUM_THREADS": "2"}, ["json"]) != before  # threads: own worker
    assert worker.key(env, ["json", "csv"]) != before
    (package / "tables.py").write_text((package / "tables.py").read_text() + "\n# edited\n")
    assert worker.key(env, ["json"]) != before
    assert worker.Location(tmp_path / "x.sock").lock == str(tmp_path / "x.sock.lock")


def test_ftlab_worker_0_runs_in_process(served, tmp_path):
    env, w = served
    proc, pid = run_job(write_job(tmp_path, "off"), {**env, "FTLAB_WORKER": "0"})
    assert proc.returncode == 0, proc.stderr
    assert ran_in(tmp_path, "off") == pid
    assert "child" not in w.log.read_text()


def test_slurm_jobs_run_in_process_unless_asked():
    assert worker.enabled({})
    assert not worker.enabled({"FTLAB_WORKER": "0"})
    assert not worker.enabled({"SLURM_JOB_ID": "7"})
    assert worker.enabled({"SLURM_JOB_ID": "7", "FTLAB_WORKER": "1"})


def test_the_first_job_starts_a_worker_for_the_next(env, tmp_path):
    d = Path(env["FTLAB_WORKER_DIR"])
    proc, pid = run_job(write_job(tmp_path, "first"), env)
    assert proc.returncode == 0, proc.stderr
    assert ran_in(tmp_path, "first") == pid  # no worker yet: in-process, without waiting
    assert wait_for(lambda: list(d.glob("*.sock")))
    lock = next(d.glob("*.sock.lock"))
    worker_pid = int(lock.read_text())
    try:
        proc, pid = run_job(write_job(tmp_path, "second"), env)
        assert proc.returncode == 0, proc.stderr
        assert ran_in(tmp_path, "second") not in (pid, worker_pid)
    finally:
        os.kill(worker_pid, signal.SIGTERM)
    assert wait_for(lambda: not list(d.glob("*.sock")))  # removed on the way out


def test_the_idle_timeout_removes_the_socket(env, tmp_path):
    sock = Path(env["FTLAB_WORKER_DIR"]) / "idle.sock"
    w = Worker(env, sock, "--idle-timeout", "1")
    try:
        assert w.proc.wait(timeout=20) == 0
    finally:
        w.stop()
    assert not sock.exists() and not Path(f"{sock}.lock").exists()
    assert "idle" in w.log.read_text()


def test_one_worker_per_socket(env, tmp_path):
    sock = Path(env["FTLAB_WORKER_DIR"]) / "one.sock"
    w = Worker(env, sock)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "ftlab.worker", "--socket", str(sock)],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert second.returncode == 0 and "another worker holds" in second.stderr
        assert w.proc.poll() is None and sock.exists()
    finally:
        w.stop()
