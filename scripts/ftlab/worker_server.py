"""The worker (`python -m ftlab.worker`, see ftlab.worker): it preloads the heavy imports once,
listens on its socket, forks a child (ftlab.worker_child) for each job it accepts, kills the child
of a job process that is gone, reaps the children and exits when idle."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from ftlab.worker_child import probe_fork, run_child
from ftlab.worker_protocol import (
    IDLE_TIMEOUT,
    PROTOCOL,
    Location,
    addressable,
    peer_uid,
    preload_list,
    reply,
)

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for the child of a vanished job


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
            conn.sendall(reply({"ok": False, "reason": reason}))
        except OSError:
            pass
        conn.close()

    def start(self, conn: socket.socket) -> None:
        conn.settimeout(10.0)
        if peer_uid(conn) != os.getuid():
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
                run_child(req, fds, self.pid, close)
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
            conn.sendall(reply({"ok": True, "pid": pid}))
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
            job.conn.sendall(reply(msg))
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
        with addressable(tmp) as address:
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
        if reason := probe_fork():
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
