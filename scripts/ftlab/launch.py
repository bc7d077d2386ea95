"""Data-parallel fine-tuning: one finetune job as `finetune.num_processes` ranks.

The job starts itself under `accelerate launch` (torchrun); each rank runs
`finetune.train_run` (the HF Trainer does DDP: NCCL on GPUs, gloo on CPU) and rank 0 alone writes
the run directory. `python -m ftlab.launch JOB.json` is one rank.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from . import finetune, tables

log = logging.getLogger(__name__)


def launch(
    trainset, base_model, out_dir, settings: finetune.Settings, seed, threads, record, device
):
    """`train_run` in `settings.num_processes` processes under `accelerate launch`; waits.

    accelerate's `--cpu` launcher starts one process (several only through MPI), so the
    multi-GPU launcher (torchrun) starts the ranks on CPU too; they pick gloo there. Their
    output goes line by line into this job's log.
    """
    n = settings.num_processes
    per_rank = max(1, threads // n)  # torch threads of each rank
    if device != "cpu" and torch.cuda.device_count() < n:
        raise ValueError(
            f"finetune.num_processes {n}: this job sees {torch.cuda.device_count()} GPU(s)"
        )
    with tempfile.TemporaryDirectory(prefix="ftlab-launch-") as tmp:
        if isinstance(trainset, pd.DataFrame):
            trainset = tables.write(trainset, Path(tmp) / "trainset.parquet", "trainset")
        job = Path(tmp) / "job.json"
        job.write_text(
            json.dumps(
                {
                    "trainset": str(trainset),
                    "base_model": str(base_model),
                    "out_dir": str(out_dir),
                    "settings": asdict(settings),
                    "seed": seed,
                    "threads": per_rank,
                    "record": record,
                    "device": device,
                },
                default=str,
            )
        )
        with socket.socket() as s:  # a free port for the ranks' rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(n), "--num_machines", "1", "--main_process_port", str(port),
            "--mixed_precision", "bf16" if settings.bf16 else "no", "--dynamo_backend", "no",
            "-m", "ftlab.launch", str(job),
        ]  # fmt: skip
        scripts = str(Path(__file__).resolve().parents[1])  # where `ftlab` lives
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [scripts, os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": str(per_rank),
            "TQDM_DISABLE": "1",  # bars piped line by line would flood the log
        }
        log.info("launching %d processes: %s", n, " ".join(cmd))
        with subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            try:
                for line in proc.stdout:
                    if line.strip():
                        log.info("| %s", line.rstrip())
            except BaseException:  # a cancelled job takes its ranks with it
                proc.terminate()
                raise
        if proc.returncode:
            raise RuntimeError(
                f"finetune: `accelerate launch` of {n} processes failed (exit {proc.returncode}); "
                "their output is above"
            )


def main(argv: list[str]) -> None:
    """`python -m ftlab.launch JOB.json`: one rank of a `launch`ed run."""
    job = json.loads(Path(argv[0]).read_text())
    logging.basicConfig(
        level=logging.INFO,
        format=f"rank {os.environ.get('RANK', '0')} %(levelname)s %(name)s: %(message)s",
    )
    job["settings"] = finetune.Settings.from_config(job["settings"])
    try:
        finetune.train_run(**job)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
