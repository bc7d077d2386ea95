"""What a job process (ftlab.worker) and its worker (ftlab.worker_server) agree on: the protocol
(a job's request, the worker's replies), the files of a worker, the modules it preloads, how its
unix socket is addressed and whose it is, and whether this process is a worker's child."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import socket
import struct
import sys

PROTOCOL = 1
IDLE_TIMEOUT = 300.0
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

_in_child = False  # set in a worker's child: delegate() is then a no-op


def in_worker() -> bool:
    """Whether this process is a worker's child running a delegated job."""
    return _in_child


def set_in_worker() -> None:
    """Mark this process as a worker's child (in the fork, before it runs the job)."""
    global _in_child
    _in_child = True


def preload_list(environ=None) -> list[str]:
    env = os.environ if environ is None else environ
    names = env.get("FTLAB_WORKER_PRELOAD")
    return [n.strip() for n in names.split(",") if n.strip()] if names else list(PRELOAD)


class Location:
    """The files of one worker: `<dir>/<hash>.sock` and its .lock, .log and .failed beside it."""

    def __init__(self, socket_path: str | os.PathLike):
        self.socket = str(socket_path)
        self.lock = self.socket + ".lock"
        self.log = self.socket + ".log"
        self.failed = self.socket + ".failed"


@contextlib.contextmanager
def addressable(path: str):
    """`path` as a unix socket address: one under 108 bytes through /proc/self/fd if too long."""
    if len(os.fsencode(path)) < 100:
        yield path
        return
    dfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{dfd}/{os.path.basename(path)}"
    finally:
        os.close(dfd)


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def request(snakemake, script_file: str, run_file: str, k: str) -> bytes:
    """A job for the worker (sent after an 8-byte length, with the job's fds 0-2): the pickled
    `snakemake` object, the script files and the state of the job process the child takes over."""
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


def reply(msg: dict) -> bytes:
    """A worker's reply: one JSON line (its ack, its refusal, the child's exit status)."""
    return json.dumps(msg).encode() + b"\n"


def read_reply(reader) -> dict | None:
    """The next reply from the worker, or None at its end (the worker is gone)."""
    line = reader.readline()
    return json.loads(line) if line.strip() else None
