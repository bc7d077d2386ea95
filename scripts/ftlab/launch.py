"""Start a python module as one job's processes: N data-parallel ranks under `accelerate launch`
(torchrun), or one plain process, with the job's threads shared out among them.

The launcher knows nothing of what the module does (as TRL's and accelerate's launchers): a
caller names the module (`ftlab.finetune`) and its arguments, and the module, run as `__main__`
in every rank, does the work. The ranks' output goes line by line into this job's log.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def per_rank_threads(threads: int, num_processes: int) -> int:
    """Torch threads of each of `num_processes` processes sharing a job's `threads`."""
    return max(1, threads // num_processes)


def free_port() -> int:
    """A free local port for the ranks' rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(
    module: str,
    args: list[str],
    num_processes: int = 1,
    mixed_precision: str = "no",
    port: int | None = None,
) -> list[str]:
    """The command line that runs `python -m module args` in `num_processes` processes.

    accelerate's `--cpu` launcher starts one process (several only through MPI), so the
    multi-GPU launcher (torchrun) starts the ranks on CPU too; they pick gloo there.
    """
    if num_processes == 1:
        return [sys.executable, "-m", module, *args]
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
        "--num_processes", str(num_processes), "--num_machines", "1",
        "--main_process_port", str(port or free_port()),
        "--mixed_precision", mixed_precision, "--dynamo_backend", "no",
        "-m", module, *args,
    ]  # fmt: skip
    return cmd


def run(
    module: str,
    args: list[str],
    num_processes: int,
    threads: int,
    mixed_precision: str = "no",
    name: str | None = None,
) -> None:
    """Run `command(...)` with `per_rank_threads` OpenMP threads a process; waits.

    Raises RuntimeError (naming `name`, else the module) if it fails; its output is in the log.
    """
    cmd = command(module, args, num_processes, mixed_precision)
    scripts = str(Path(__file__).resolve().parents[1])  # where `ftlab` lives
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [scripts, os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": str(per_rank_threads(threads, num_processes)),
        "TQDM_DISABLE": "1",  # bars piped line by line would flood the log
    }
    log.info("launching %d processes: %s", num_processes, " ".join(cmd))
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            for line in proc.stdout:
                if line.strip():
                    log.info("| %s", line.rstrip())
        except BaseException:  # a cancelled job takes its processes with it
            proc.terminate()
            raise
    if proc.returncode:
        what = (
            f"`accelerate launch` of {num_processes} processes"
            if num_processes > 1
            else f"`python -m {module}`"
        )
        raise RuntimeError(
            f"{name or module}: {what} failed (exit {proc.returncode}); "
            f"{'their' if num_processes > 1 else 'its'} output is above"
        )
