"""The finetune stage: a student fine-tuned on a trainset (prompt, completion), full, LoRA or
QLoRA, with the SFT trainer of sft.py.

A run directory holds the weights (safetensors) and tokenizer, loadable by `models.load`; for
LoRA these are the merged weights and the adapter alone is in `adapter/`. QLoRA trains the same
adapter over 4-bit NF4 base weights (bitsandbytes, CUDA only); 4-bit weights cannot take a merge,
so the adapter is merged into a bf16 reload of the base. `train_log.parquet` has one row per
optimiser step. The directory is built in a temp dir and renamed into place last, so an
interrupted run leaves nothing that looks finished.

`num_processes` > 1 trains data-parallel: the job starts this module in that many processes
under `accelerate launch` (launch.py; `python -m ftlab.finetune JOB.json` is one rank), each rank
trains its shard of every batch (the Trainer's DDP: NCCL on GPUs, gloo on CPU), the train log sums
the tokens of all ranks, and only rank 0 writes the run.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
from accelerate import PartialState

from . import launch, models, provenance, tables
from .sft import Settings, read_trainset, train

log = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
TRAIN_LOG = "train_log.parquet"
TENSORBOARD_DIR = "tensorboard"  # event files, inside the run directory (report_to tensorboard)


def quantization(settings: Settings):
    """QLoRA's 4-bit base weights (NF4, double quantisation, bf16 compute); None otherwise."""
    if settings.method != "qlora":
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def check_qlora(device: str) -> None:
    """QLoRA needs bitsandbytes and CUDA: say so before loading anything."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("finetune.method qlora needs bitsandbytes: pip install bitsandbytes")
    if not device.startswith("cuda"):
        raise ValueError(
            "finetune.method qlora needs a CUDA GPU (4-bit bitsandbytes weights); "
            f"this job runs on {device}"
        )


def save(trainer, tokenizer, settings: Settings, out: Path, base_model=None, device="cpu") -> None:
    """Weights as safetensors + tokenizer; (Q)LoRA: the adapter in adapter/, merged weights at top.

    QLoRA merges the adapter into the base reloaded in bf16 (on `device`), not into 4-bit weights.
    """
    model = trainer.model
    if settings.method != "full":
        model.save_pretrained(out / ADAPTER_DIR)
    if settings.method == "qlora":
        from peft import PeftModel

        base, _ = models.load(base_model, device=device)
        model = PeftModel.from_pretrained(base.to(torch.bfloat16), out / ADAPTER_DIR)
    if settings.method != "full":
        model = model.merge_and_unload()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def run(
    trainset: str | os.PathLike | pd.DataFrame,
    base_model: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: dict | Settings,
    seed: int,
    threads: int,
    record: dict | None = None,
    run_name: str | None = None,
    tracking_dir: str | os.PathLike | None = None,
) -> str:
    """Fine-tune `base_model` on `trainset` into `out_dir`; returns the device used.

    `record` (from `provenance.collect`) goes, with the device, the number of processes and the
    finish time, into the train log's metadata and `provenance.json`. `settings.report_to` adds
    TRL's own logging: tensorboard event files under `out_dir/tensorboard/`, or an MLflow run
    `run_name` (experiment: its study) in the local file store `tracking_dir`.
    """
    if not isinstance(settings, Settings):
        settings = Settings.from_config(settings)
    device = models.pick_device()
    if settings.method == "qlora":
        check_qlora(device)
    if settings.report_to == "mlflow":
        if tracking_dir is None:
            raise ValueError("finetune.report_to mlflow needs a tracking directory")
        os.environ["MLFLOW_TRACKING_URI"] = Path(tracking_dir).resolve().as_uri()
        # a local file store, one directory per run (safe for parallel jobs); MLflow 3 keeps it
        # in maintenance mode and asks for this opt-in
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        os.environ["MLFLOW_EXPERIMENT_NAME"] = (run_name or "ftlab").split("/")[0]
    args = (trainset, base_model, out_dir, settings, seed, threads, record, device, run_name)
    if settings.num_processes > 1:
        launch_ranks(*args)
    else:
        train_run(*args)
    return device


def launch_ranks(
    trainset, base_model, out_dir, settings: Settings, seed, threads, record, device, run_name
) -> None:
    """`train_run` in `settings.num_processes` processes under `accelerate launch`; waits.

    Each rank is `python -m ftlab.finetune JOB.json` (`main`) with its share of the threads.
    """
    n = settings.num_processes
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
                    "threads": launch.per_rank_threads(threads, n),
                    "record": record,
                    "device": device,
                    "run_name": run_name,
                },
                default=str,
            )
        )
        launch.run(
            "ftlab.finetune",
            [str(job)],
            num_processes=n,
            threads=threads,
            mixed_precision="bf16" if settings.bf16 else "no",
            name="finetune",
        )


def train_run(
    trainset, base_model, out_dir, settings: Settings, seed, threads, record, device, run_name=None
):
    """One process's share of `run` (all of it when there is one): train; rank 0 writes the run."""
    models.set_threads(threads)
    state = PartialState(cpu=device == "cpu")  # a launched rank joins its process group here
    place = "cpu" if device == "cpu" else str(state.device)  # a rank's own GPU
    data = read_trainset(trainset)
    model, tokenizer = models.load(base_model, device=place, quantization=quantization(settings))
    if settings.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    elif settings.method == "full" or device == "cpu":
        model = model.float()  # fp32 master weights; bf16 is autocast
    out = Path(out_dir)
    log.info(
        "fine-tuning %s (%s, %s, rank %d of %d) on %s: %d examples, seed %d",
        base_model, settings.method, place, state.process_index, state.num_processes, trainset,
        len(data), seed,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"ftlab-{out.name}-") as work:  # trainer scratch
        events = Path(work) / TENSORBOARD_DIR
        if settings.report_to == "tensorboard":
            os.environ["TENSORBOARD_LOGGING_DIR"] = str(events)
        sft, train_log = train(model, tokenizer, data, settings, seed, device, Path(work), run_name)
        if not state.is_main_process:
            return
        with tables.atomic_dir(out) as tmp:
            save(sft, tokenizer, settings, tmp, base_model, place)
            if events.exists():
                shutil.copytree(events, tmp / TENSORBOARD_DIR)
            record = {
                **(record or {}),
                "device": device,
                "num_processes": state.num_processes,
                "finished": provenance.now(),
            }
            tables.write(train_log, tmp / TRAIN_LOG, "train_log", record)
            provenance.write_json(record, tmp)
    log.info("saved %s (%d steps, final loss %.4f)", out, len(train_log), train_log.loss.iloc[-1])


def main(argv: list[str]) -> None:
    """`python -m ftlab.finetune JOB.json`: one rank of a `launch_ranks`ed run."""
    job = json.loads(Path(argv[0]).read_text())
    logging.basicConfig(
        level=logging.INFO,
        format=f"rank {os.environ.get('RANK', '0')} %(levelname)s %(name)s: %(message)s",
    )
    job["settings"] = Settings.from_config(job["settings"])
    try:
        train_run(**job)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
