"""A warm, pre-importing fork server (a zygote) for model jobs, so that each job skips the seconds
of starting Python and importing torch + transformers (+ TRL), and still runs as its own process.

A model-job rule script opens with one line (the first import, before the heavy ones)::

    from ftlab.worker import delegated  # noqa: F401, I001

(written as an import so that ruff's E402 does not flag the script's own imports; it is the same
as calling `delegate(snakemake, __file__)` there). If a worker is listening on this node's socket
for exactly this code and environment, the job is sent to it: the worker forks a child, which
takes over the job's stdin/stdout/stderr, cwd, environment, sys.path, argv, umask and CPU
affinity and runs the very script file Snakemake wrote (preamble included) as `__main__`; the job
process waits and exits with the child's status, so Snakemake sees one job, one exit status, one
benchmark wall time. If no worker is reachable, one is started in the background for later jobs
and this job runs in-process, as without a worker (it never waits for one).

`python -m ftlab.worker --socket PATH --idle-timeout S` runs a worker by hand.

This module is the job's side (and the command line); the worker itself is ftlab.worker_server,
its forked children ftlab.worker_child, and what both sides agree on ftlab.worker_protocol.

What keeps a job exact through a worker:
- the worker only imports (never runs a torch op, so no OpenMP pool exists when it forks; CUDA is
  never touched, which a probe fork checks); each job is a fresh fork, so no state passes from one
  job to the next, and nothing the worker holds is ever cached by a job;
- the socket name is a hash of everything the imported modules depend on: the interpreter and its
  flags, the environment (but the shell's PWD/OLDPWD/SHLVL/_, pytest's current test name and the
  FTLAB_WORKER* settings), the
  preload list, the file of each preloaded package (path, mtime, size) and the content of every
  file of the ftlab package. A code edit or a `pip install` is another socket, so a worker with
  stale code never serves a job; the worker also refuses a request whose hash is not its own;
- a job's thread settings (Snakemake's OMP_NUM_THREADS & co. from `threads:`) are part of the
  environment, so jobs with other thread counts get a worker of their own;
- if the job process dies (Snakemake cancelled it, Ctrl-C), the worker kills the child's process
  group (SIGTERM, SIGKILL after KILL_GRACE seconds); if the worker dies, its children die with it
  (PR_SET_PDEATHSIG) and their job processes fail.

Files: /tmp/ftlab-worker-<uid>/<hash>.sock (+ .lock, .log; .failed if a worker could not start
for that hash: no more are started for it; delete the file to retry). /tmp is node-local, so on a
cluster each node has its own workers.

Environment:
- FTLAB_WORKER=0: never delegate (every job in-process, as before); FTLAB_WORKER=1: delegate
  under SLURM too. By default delegation is on, except in a SLURM job (SLURM_JOB_ID set): there
  each Snakemake job is usually a SLURM job of its own, whose cgroup holds (and at its end kills)
  a worker it started, so a worker would serve no later job and cost the job CPU and memory. Set
  FTLAB_WORKER=1 when one allocation runs many jobs (job groups, `snakemake --cores` inside one
  sbatch): the SLURM variables are part of the hash, so a worker serves only its own allocation.
- FTLAB_WORKER_IDLE: seconds a worker waits for a job before it exits (default 300).
- FTLAB_WORKER_DIR: the directory of the sockets (default /tmp/ftlab-worker-<uid>; private).
- FTLAB_WORKER_SOCKET: one socket path instead (tests, benches, a worker started by hand).
- FTLAB_WORKER_PRELOAD: comma-separated modules to import (default PRELOAD; "mod:attr:attr"
  also gets attributes, for lazy packages such as transformers).

Limits: Snakemake's benchmark files measure the job process, so their wall time (`s`) is right
but max_rss/cpu_time/io columns miss the child's usage. The child runs in the worker's cgroup and
with the worker's resource limits (ulimit), not the job process's. Linux only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path

from ftlab.worker_protocol import (
    IDLE_TIMEOUT,
    PROTOCOL,
    Location,
    addressable,
    in_worker,
    peer_uid,
    preload_list,
    read_reply,
    request,
)
from ftlab.worker_protocol import PRELOAD as PRELOAD  # the default preload list

PACKAGE_DIR = Path(__file__).resolve().parent  # the ftlab package whose code a worker holds
ACK_TIMEOUT = 30.0  # seconds a job process waits for the worker to fork its child
CONNECT_TIMEOUT = 5.0
# environment variables that differ between the jobs of one run and that no import reads
ENV_NOT_HASHED = frozenset({"_", "PWD", "OLDPWD", "SHLVL", "PYTEST_CURRENT_TEST"})


def __getattr__(name: str):
    """`from ftlab.worker import delegated` at the top of a rule script: `delegate(snakemake,
    __file__)` on the importing script's globals (False when the job runs in-process)."""
    if name != "delegated":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    caller = sys._getframe(1).f_globals
    if "snakemake" not in caller or caller.get("__name__") != "__main__":
        return False
    return delegate(caller["snakemake"], caller["__file__"], caller.get("__real_file__"))


def enabled(environ=None) -> bool:
    """Whether jobs are delegated (FTLAB_WORKER; off by default in a SLURM job)."""
    env = os.environ if environ is None else environ
    mode = env.get("FTLAB_WORKER", "").strip().lower()
    if mode in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    return mode in ("1", "true", "yes", "on") or "SLURM_JOB_ID" not in env


# --- where a worker for this code and environment listens ---


def private_dir(environ=None) -> Path:
    """FTLAB_WORKER_DIR or /tmp/ftlab-worker-<uid>, created 0700; refused if others may write it."""
    env = os.environ if environ is None else environ
    path = Path(env.get("FTLAB_WORKER_DIR") or f"/tmp/ftlab-worker-{os.getuid()}")
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.getuid():
        raise PermissionError(f"{path}: not a directory of this user")
    if st.st_mode & 0o022:
        raise PermissionError(f"{path}: writable by others")
    return path


def tree_hash(package_dir: Path | None = None) -> str:
    """sha256 of every file of the package (not caches): any edit is another worker."""
    package_dir = PACKAGE_DIR if package_dir is None else package_dir
    h = hashlib.sha256()
    for path in sorted(package_dir.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        data = path.read_bytes()
        h.update(f"{path.relative_to(package_dir)}\0{len(data)}\0".encode() + data)
    return h.hexdigest()


def _origins(preload: list[str]) -> list:
    """Where this process would import each preloaded top-level package from (path, mtime, size)."""
    import importlib.util

    out = []
    for top in sorted({name.split(":")[0].split(".")[0] for name in preload}):
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        try:
            st = os.stat(origin) if origin else None
        except OSError:
            st = None
        out.append([top, origin, st and st.st_mtime_ns, st and st.st_size])
    return out


def _hashed(var: str) -> bool:
    """Whether an environment variable is part of the hash (this module's own are not: the
    preload list is hashed as such)."""
    return var not in ENV_NOT_HASHED and not var.startswith("FTLAB_WORKER")


def key(environ=None, preload: list[str] | None = None) -> str:
    """The hash naming the worker that may serve this process's jobs (see the module docstring)."""
    env = dict(os.environ if environ is None else environ)
    preload = preload_list(env) if preload is None else preload
    parts = {
        "protocol": PROTOCOL,
        "python": [sys.executable, sys.version, repr(sys.flags)],
        "env": sorted((k, v) for k, v in env.items() if _hashed(k)),
        "preload": preload,
        "origins": _origins(preload),
        "ftlab": [str(PACKAGE_DIR), tree_hash()],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def locate(environ=None) -> tuple[Location, str]:
    """This process's worker location and hash (FTLAB_WORKER_SOCKET: another socket path)."""
    env = os.environ if environ is None else environ
    k = key(env)
    if env.get("FTLAB_WORKER_SOCKET"):
        return Location(env["FTLAB_WORKER_SOCKET"]), k
    return Location(private_dir(env) / f"{k}.sock"), k


# --- the job process (client) ---


def _note(msg: str) -> None:
    try:
        sys.stderr.write(f"ftlab.worker: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _connect(path: str) -> socket.socket | None:
    """A connection to the worker on `path` (of this user), or None if none listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        with addressable(path) as address:
            sock.connect(address)
        if peer_uid(sock) != os.getuid():
            raise PermissionError(f"{path}: the worker is another user's")
    except (FileNotFoundError, ConnectionRefusedError, TimeoutError):
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    return sock


def _stdio_fds() -> list[int]:
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def delegate(snakemake, script_file: str, real_file: str | None = None):
    """Run this rule script in a warm worker and exit with its status; or return (False) so that
    the script runs in-process, after starting a worker in the background for later jobs.

    Call on the first line of a rule script, before its heavy imports: `script_file` is the
    script's `__file__`; `real_file` the file the interpreter runs (Snakemake's copy with the
    preamble, `__real_file__`), found in the caller's globals when not given.
    """
    if in_worker():
        return True
    caller = sys._getframe(1).f_globals
    if real_file is None and caller.get("__file__") == script_file:
        real_file = caller.get("__real_file__")
    if not enabled():
        return False
    try:
        loc, k = locate()
    except Exception as e:
        _note(f"not delegating: {e}")
        return False
    try:
        sock = _connect(loc.socket)
    except Exception as e:
        _note(f"not delegating: {e}")
        return False
    if sock is None:
        try:
            start_worker(loc, k)
        except Exception as e:
            _note(f"could not start a worker: {e}")
        return False
    run_file = real_file if real_file and os.path.isfile(real_file) else script_file
    with sock:
        code = _run_remote(sock, snakemake, os.path.abspath(script_file), run_file, k)
    if code is None:
        return False  # refused before any child ran: this job runs in-process
    sys.exit(code)


def _run_remote(sock, snakemake, script_file, run_file, k) -> int | None:
    """Send the job; the exit status of its child, or None if the worker started none."""
    try:
        payload = request(snakemake, script_file, os.path.abspath(run_file), k)
    except Exception as e:
        _note(f"not delegating: {e}")
        return None
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        socket.send_fds(sock, [struct.pack("!Q", len(payload))], _stdio_fds())
        sock.sendall(payload)
        sock.settimeout(ACK_TIMEOUT)
        reader = sock.makefile("rb")
        ack = read_reply(reader)
    except (OSError, ValueError):
        return None  # the worker went away before forking: nothing ran
    if ack is None or not ack.get("ok"):
        if ack and ack.get("reason"):
            _note(f"worker refused ({ack['reason']}): running in-process")
        return None
    # from here the child runs this job: never run it again here
    sock.settimeout(None)
    try:
        done = read_reply(reader)
    except (OSError, ValueError):
        done = None
    if done is None:
        _note(f"lost the worker while its child (pid {ack.get('pid')}) ran this job")
        return 1
    sig = done.get("signal")
    if sig:
        _note(f"the job's process (pid {ack.get('pid')}) was killed by signal {sig}")
        try:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)  # end as the in-process job would have
        except (OSError, ValueError):
            pass
        return 128 + sig
    return int(done["exit"])


def start_worker(loc: Location, k: str, idle: float | None = None) -> bool:
    """Start a worker for `loc` in the background (detached: own session, output to its log),
    unless one holds the lock (starting or serving) or one failed to start for this hash."""
    if os.path.exists(loc.failed):
        return False
    fd = os.open(loc.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a worker is starting or serving
    finally:
        os.close(fd)  # releases the lock if we got it
    import subprocess

    if idle is None:
        idle = float(os.environ.get("FTLAB_WORKER_IDLE", IDLE_TIMEOUT))
    boot = (
        "import json, sys; sys.path[:] = json.loads(sys.argv.pop(1)); "
        "from ftlab.worker import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = [
        sys.executable,
        *subprocess._args_from_interpreter_flags(),
        "-c",
        boot,
        json.dumps(sys.path),
        "--socket",
        loc.socket,
        "--idle-timeout",
        str(idle),
        "--key",
        k,
        "--preload",
        ",".join(preload_list()),
    ]
    env = dict(os.environ)
    pid = os.fork()
    if pid == 0:  # double fork: the worker is nobody's child, in a session of its own
        try:
            os.setsid()
            if os.fork() == 0:
                log = os.open(loc.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.closerange(3, 1 << 16)  # not the job's pipes: Snakemake may wait on them
                os.execve(sys.executable, argv, env)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return True


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m ftlab.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--socket", required=True, help="the unix socket to listen on")
    parser.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT, help="seconds")
    parser.add_argument(
        "--key", default=None, help="the hash jobs must match (default: this process's)"
    )
    parser.add_argument("--preload", default=None, help="comma-separated modules (default PRELOAD)")
    args = parser.parse_args(argv)
    preload = [n for n in args.preload.split(",") if n] if args.preload is not None else None
    k = args.key if args.key is not None else key(preload=preload)
    from ftlab.worker_server import serve  # the worker builds on this module, not it on the worker

    return serve(args.socket, k, args.idle_timeout, preload)


if __name__ == "__main__":
    from ftlab import worker as _worker  # the module jobs import, not this __main__ copy

    sys.exit(_worker.main())
