"""A worker's forked child: it takes over one job (its stdio, cwd, environment, sys.path, argv,
umask, CPU affinity), runs the job's script file as `__main__` and exits with its status; and the
probe fork that checks, before a worker serves, that such a child could run a job at all."""

from __future__ import annotations

import os
import pickle
import signal
import sys

from ftlab.worker_protocol import set_in_worker


def probe_fork() -> str | None:
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


def run_child(req: dict, fds: list[int], worker_pid: int, close: list) -> None:
    """Run one job in a forked child; never returns."""
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
        set_in_worker()
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
