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

import contextlib
import fcntl
import hashlib
import json
import os
import pickle
import signal
import socket
import struct
import sys
import time
from pathlib import Path

PROTOCOL = 1
PACKAGE_DIR = Path(__file__).resolve().parent  # the ftlab package whose code a worker holds
IDLE_TIMEOUT = 300.0
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for the child of a vanished job
ACK_TIMEOUT = 30.0  # seconds a job process waits for the worker to fork its child
CONNECT_TIMEOUT = 5.0
# imported once by the worker; a name that fails to import is skipped
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "torch",
    "transformers",
    "transformers:AutoConfig:AutoModelForCausalLM:AutoTokenizer:LlamaConfig:LlamaForCausalLM"
    ":PreTrainedTokenizerFast:GenerationConfig",
    "trl:SFTConfig:SFTTrainer",
    "peft",
    "datasets",
    "accelerate",
    "snakemake.io",
    "snakemake.iocontainers",
    "snakemake.logging",
    "ftlab.logs",
    "ftlab.provenance",
    "ftlab.tables",
    "ftlab.runs",
    "ftlab.models",
    "ftlab.generate",
    "ftlab.evaluate",
    "ftlab.finetune",
    "ftlab.sft",
    "ftlab.rationales",
    "ftlab.studies.faithfulness.score",
)
# environment variables that differ between the jobs of one run and that no import reads
ENV_NOT_HASHED = frozenset({"_", "PWD", "OLDPWD", "SHLVL", "PYTEST_CURRENT_TEST"})

_in_child = False  # set in a worker's child: delegate() is then a no-op


def in_worker() -> bool:
    """Whether this process is a worker's child running a delegated job."""
    return _in_child


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


def preload_list(environ=None) -> list[str]:
    env = os.environ if environ is None else environ
    names = env.get("FTLAB_WORKER_PRELOAD")
    return [n.strip() for n in names.split(",") if n.strip()] if names else list(PRELOAD)


# --- where a worker for this code and environment listens ---


class Location:
    """The files of one worker: `<dir>/<hash>.sock` and its .lock, .log and .failed beside it."""

    def __init__(self, socket_path: str | os.PathLike):
        self.socket = str(socket_path)
        self.lock = self.socket + ".lock"
        self.log = self.socket + ".log"
        self.failed = self.socket + ".failed"


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


@contextlib.contextmanager
def _addressable(path: str):
    """`path` as a unix socket address: one under 108 bytes through /proc/self/fd if too long."""
    if len(os.fsencode(path)) < 100:
        yield path
        return
    dfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{dfd}/{os.path.basename(path)}"
    finally:
        os.close(dfd)


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _connect(path: str) -> socket.socket | None:
    """A connection to the worker on `path` (of this user), or None if none listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        with _addressable(path) as address:
            sock.connect(address)
        if _peer_uid(sock) != os.getuid():
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


def _request(snakemake, script_file: str, run_file: str, k: str) -> bytes:
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    umask = os.umask(0o022)
    os.umask(umask)
    return pickle.dumps(
        {
            "protocol": PROTOCOL,
            "key": k,
            "snakemake": pickle.dumps(snakemake, protocol=pickle.HIGHEST_PROTOCOL),
            "script": script_file,
            "run_file": run_file,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "sys_path": list(sys.path),
            "argv": list(sys.argv),
            "umask": umask,
            "affinity": affinity,
        },
        protocol=pickle.HIGHEST_PROTOCOL,
    )


def _readline(reader) -> dict | None:
    line = reader.readline()
    return json.loads(line) if line.strip() else None


def delegate(snakemake, script_file: str, real_file: str | None = None):
    """Run this rule script in a warm worker and exit with its status; or return (False) so that
    the script runs in-process, after starting a worker in the background for later jobs.

    Call on the first line of a rule script, before its heavy imports: `script_file` is the
    script's `__file__`; `real_file` the file the interpreter runs (Snakemake's copy with the
    preamble, `__real_file__`), found in the caller's globals when not given.
    """
    if _in_child:
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
        payload = _request(snakemake, script_file, os.path.abspath(run_file), k)
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
        ack = _readline(reader)
    except (OSError, ValueError):
        return None  # the worker went away before forking: nothing ran
    if ack is None or not ack.get("ok"):
        if ack and ack.get("reason"):
            _note(f"worker refused ({ack['reason']}): running in-process")
        return None
    # from here the child runs this job: never run it again here
    sock.settimeout(None)
    try:
        done = _readline(reader)
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


# --- the worker ---


def _log(msg: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        os.write(2, f"{stamp} ftlab.worker[{os.getpid()}]: {msg}\n".encode())
    except OSError:
        pass


def _threads() -> list[str]:
    """The names of this process's threads but jemalloc's (which forks safely)."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return []
    names = []
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            names.append("?")
    return sorted(n for n in names if n != "jemalloc_bg_thd")


def _preload(names: list[str]) -> list[str]:
    """Import each name ("mod" or "mod:attr:attr"); the ones that failed."""
    import importlib

    failed = []
    for name in names:
        mod, *attrs = name.split(":")
        try:
            module = importlib.import_module(mod)
            for attr in filter(None, attrs):
                getattr(module, attr)
        except Exception as e:
            failed.append(f"{name} ({type(e).__name__}: {e})")
    return failed


def _probe_fork() -> str | None:
    """Why a forked child could not run a job (CUDA touched before the fork), or None."""
    pid = os.fork()
    if pid == 0:
        bad = 0
        try:
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda._is_in_bad_fork():
                bad = 3
        except Exception:
            pass
        os._exit(bad)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 3:
        return "CUDA was initialised while importing: a forked child could not use it"
    return None


def _acquire_lock(path: str) -> int | None:
    """The fd holding the worker lock `path`, or None if another worker holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file that an exiting worker unlinked meanwhile
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _exit_code(e: SystemExit) -> int:
    """The status the interpreter exits with for `sys.exit(e.code)`."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    try:
        sys.stderr.write(f"{e.code}\n")
    except Exception:
        pass
    return 1


def _fresh_stdio() -> None:
    """New sys.stdin/stdout/stderr on fds 0-2 (now the job's), buffered as the interpreter
    would: the worker's own objects wrap its log, and their locks may be held."""
    import io

    def stream(fd, mode, template):
        unbuffered = getattr(template, "write_through", False)
        raw = io.FileIO(fd, mode, closefd=False)
        if mode == "rb":
            buf = io.BufferedReader(raw)
        else:
            buf = raw if unbuffered else io.BufferedWriter(raw)
        return io.TextIOWrapper(
            buf,
            encoding=getattr(template, "encoding", None),
            errors=getattr(template, "errors", None),
            line_buffering=mode == "wb" and (fd == 2 or raw.isatty()) and not unbuffered,
            write_through=unbuffered,
        )

    sys.stdin = sys.__stdin__ = stream(0, "rb", sys.__stdin__)
    sys.stdout = sys.__stdout__ = stream(1, "wb", sys.__stdout__)
    sys.stderr = sys.__stderr__ = stream(2, "wb", sys.__stderr__)


def _set_pdeathsig() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _child(req: dict, fds: list[int], worker_pid: int, close: list) -> None:
    """Run one job in a forked child; never returns."""
    global _in_child
    code = 1
    try:
        os.setsid()  # its own process group: the worker kills the job's processes together
        _set_pdeathsig()
        if os.getppid() != worker_pid:
            os._exit(1)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for obj in close:  # the worker's sockets and lock are not the job's
            try:
                obj.close() if hasattr(obj, "close") else os.close(obj)
            except OSError:
                pass
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
        for fd in set(fds) - {0, 1, 2}:
            os.close(fd)
        _in_child = True
        os.chdir(req["cwd"])
        os.umask(req["umask"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.path[:] = req["sys_path"]
        sys.argv[:] = req["argv"]
        if req.get("affinity"):
            try:
                os.sched_setaffinity(0, req["affinity"])
            except OSError:
                pass
        _fresh_stdio()
        code = _run_script(req)
    except BaseException:
        try:
            import traceback

            traceback.print_exc()
        except Exception:
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _run_script(req: dict) -> int:
    """Run the job's script file as `__main__`, as `python FILE` does, and end as the interpreter
    would: wait for non-daemon threads, run atexit functions, release the script's globals (so
    that, e.g., a file left open is flushed). Library modules are not torn down."""
    import atexit
    import builtins
    import gc
    import threading
    import types

    path = req["run_file"]
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __builtins__=builtins, __cached__=None)
    sys.modules["__main__"] = main
    try:
        main.snakemake = pickle.loads(req["snakemake"])
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec")
        exec(code, main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_code(e)
    except BaseException as e:
        tb = e.__traceback__  # from the script's own frame on, as in-process
        while tb is not None and tb.tb_frame.f_code.co_filename != path:
            tb = tb.tb_next
        if tb is not None:
            e = e.with_traceback(tb)
        sys.excepthook(type(e), e, e.__traceback__)
        status = 130 if isinstance(e, KeyboardInterrupt) else 1
    try:
        threading._shutdown()
    except Exception:
        pass
    atexit._run_exitfuncs()
    names = sorted(main.__dict__, key=lambda n: not n.startswith("_"))  # as CPython clears them
    for name in names:
        if name != "__builtins__":
            main.__dict__[name] = None
    gc.collect()
    return status


class _Job:
    def __init__(self, conn: socket.socket, pid: int, pidfd: int | None):
        self.conn = conn
        self.pid = pid
        self.pidfd = pidfd
        self.kill_at: float | None = None  # SIGKILL deadline once the job process is gone


class Server:
    """The worker's loop: one thread (so forks are clean), a selector over the listening socket,
    each job's connection (EOF: its job process is gone) and each child's pidfd (it exited)."""

    def __init__(self, listener: socket.socket, path: str, k: str, idle: float, lock_fd: int):
        import selectors

        self.sel = selectors.DefaultSelector()
        self.listener = listener
        self.path = path
        self.ino = os.stat(path).st_ino
        self.key = k
        self.idle = idle
        self.lock_fd = lock_fd
        self.pid = os.getpid()
        self.jobs: dict[int, _Job] = {}  # child pid -> job
        self.threads = len(_threads())
        self.last = time.monotonic()
        self.sel.register(listener, 1, ("listen", None))

    def owns_socket(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.ino
        except FileNotFoundError:
            return False

    def loop(self) -> None:
        listening = True
        while True:
            now = time.monotonic()
            if listening and (
                not self.owns_socket() or (not self.jobs and now - self.last > self.idle)
            ):
                listening = False  # idle, or the socket was removed or replaced
                self.sel.unregister(self.listener)
                self.listener.close()
            if not listening and not self.jobs:
                return
            for key, _ in self.sel.select(timeout=0.5):
                kind, job = key.data
                if kind == "listen":
                    self.accept()
                elif kind == "conn":
                    self.check_conn(job)
                elif kind == "exit":
                    self.reap(job)
            self.poll_children()

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.last = time.monotonic()
        try:
            self.start(conn)
        except Exception as e:
            _log(f"request failed: {type(e).__name__}: {e}")
            conn.close()

    def _refuse(self, conn, reason: str) -> None:
        _log(f"refused a job: {reason}")
        try:
            conn.sendall(json.dumps({"ok": False, "reason": reason}).encode() + b"\n")
        except OSError:
            pass
        conn.close()

    def start(self, conn: socket.socket) -> None:
        conn.settimeout(10.0)
        if _peer_uid(conn) != os.getuid():
            conn.close()
            return
        head, fds, _, _ = socket.recv_fds(conn, 8, 3)
        try:
            while len(head) < 8:
                more = conn.recv(8 - len(head))
                if not more:
                    raise ConnectionError("short request")
                head += more
            size = struct.unpack("!Q", head)[0]
            data = bytearray()
            while len(data) < size:
                more = conn.recv(min(1 << 20, size - len(data)))
                if not more:
                    raise ConnectionError("short request")
                data += more
            req = pickle.loads(bytes(data))
            if len(fds) != 3:
                raise ConnectionError(f"got {len(fds)} file descriptors, not 3")
            if req.get("protocol") != PROTOCOL or req.get("key") != self.key:
                return self._refuse(conn, "the job's code or environment is not this worker's")
            if len(_threads()) > self.threads:
                return self._refuse(conn, f"threads appeared in the worker: {_threads()}")
            close = [self.listener, self.lock_fd, conn]
            close += [j.conn for j in self.jobs.values()]
            close += [j.pidfd for j in self.jobs.values() if j.pidfd is not None]
            close += [self.sel]
            pid = os.fork()
            if pid == 0:
                _child(req, fds, self.pid, close)
        finally:
            for fd in fds:
                os.close(fd)
        try:
            self.track(conn, pid, req)
        except BaseException:  # never leave a child running that its job process cannot see
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            self.jobs.pop(pid, None)
            raise

    def track(self, conn: socket.socket, pid: int, req: dict) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None  # reaped by polling
        job = _Job(conn, pid, pidfd)
        self.jobs[pid] = job
        _log(f"job {req.get('script')} in {req.get('cwd')}: child {pid}")
        try:
            conn.sendall(json.dumps({"ok": True, "pid": pid}).encode() + b"\n")
        except OSError:
            pass  # gone already: its EOF is seen below
        conn.setblocking(False)
        self.sel.register(conn, 1, ("conn", job))
        if pidfd is not None:
            self.sel.register(pidfd, 1, ("exit", job))

    def check_conn(self, job: _Job) -> None:
        try:
            data = job.conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.kill(job)

    def kill(self, job: _Job) -> None:
        """The job process is gone: end its child's process group (SIGKILL after a grace)."""
        if job.kill_at is not None:
            return
        _log(f"job process of child {job.pid} is gone: terminating it")
        try:
            self.sel.unregister(job.conn)
        except (KeyError, ValueError):
            pass
        job.kill_at = time.monotonic() + KILL_GRACE
        try:
            os.killpg(job.pid, signal.SIGTERM)
        except OSError:
            pass

    def poll_children(self) -> None:
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if job.pidfd is None:
                self.reap(job, block=False)
            if job.pid in self.jobs and job.kill_at is not None and now > job.kill_at:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except OSError:
                    pass

    def reap(self, job: _Job, block: bool = True) -> None:
        try:
            pid, status = os.waitpid(job.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = job.pid, 0
        if pid == 0:
            return
        del self.jobs[job.pid]
        self.last = time.monotonic()
        code = os.waitstatus_to_exitcode(status)
        msg = {"exit": code} if code >= 0 else {"exit": 128 - code, "signal": -code}
        _log(f"child {job.pid} ended: {msg}")
        for fileobj in (job.conn, job.pidfd):
            if fileobj is None:
                continue
            try:
                self.sel.unregister(fileobj)
            except (KeyError, ValueError):
                pass
        if job.pidfd is not None:
            os.close(job.pidfd)
        try:
            job.conn.setblocking(True)
            job.conn.settimeout(5.0)
            job.conn.sendall(json.dumps(msg).encode() + b"\n")
        except OSError:
            pass
        job.conn.close()

    def stop(self) -> None:
        """Kill whatever children remain (the worker is being terminated)."""
        for job in list(self.jobs.values()):
            try:
                os.killpg(job.pid, signal.SIGKILL)
                os.waitpid(job.pid, 0)
            except OSError:
                pass


def _listen(path: str) -> socket.socket:
    """Listen on `path`, published by a rename so that nobody connects to a half-made socket."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        with _addressable(tmp) as address:
            sock.bind(address)
    finally:
        os.umask(old)
    sock.listen(64)
    os.rename(tmp, path)  # replaces a stale socket of a dead worker
    return sock


def serve(
    socket_path: str,
    k: str = "",
    idle: float = IDLE_TIMEOUT,
    preload: list[str] | None = None,
) -> int:
    """Run a worker on `socket_path` until it is idle for `idle` seconds; 0 if another worker
    already holds the path."""
    loc = Location(socket_path)
    lock_fd = _acquire_lock(loc.lock)
    if lock_fd is None:
        _log(f"another worker holds {loc.lock}")
        return 0

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    server = None
    started = time.monotonic()
    try:
        failed = _preload(preload_list() if preload is None else preload)
        for name in failed:
            _log(f"skipped preload {name}")
        if reason := _probe_fork():
            raise RuntimeError(reason)
        import gc

        gc.collect()
        gc.freeze()  # imported objects stay out of the children's collections (fewer COW pages)
        listener = _listen(loc.socket)
        server = Server(listener, loc.socket, k, idle, lock_fd)
        _log(
            f"serving {loc.socket} (started from {os.getcwd()}; imports took "
            f"{time.monotonic() - started:.1f} s, {len(sys.modules)} modules; threads {_threads()};"
            f" idle timeout {idle:g} s)"
        )
        server.loop()
        _log("idle: exiting")
        return 0
    except SystemExit as e:
        _log(f"terminated ({e.code})")
        return 0
    except BaseException as e:
        _log(f"failed: {type(e).__name__}: {e}")
        try:
            Path(loc.failed).write_text(f"{type(e).__name__}: {e}\nsee {loc.log}\n")
        except OSError:
            pass
        return 1
    finally:
        if server is not None:
            server.stop()
            if server.owns_socket():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(loc.socket)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{loc.socket}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(loc.lock)  # still holding it: a starting worker re-checks the inode
        os.close(lock_fd)


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
    return serve(args.socket, k, args.idle_timeout, preload)


if __name__ == "__main__":
    from ftlab import worker as _worker  # the module jobs import, not this __main__ copy

    sys.exit(_worker.main())
