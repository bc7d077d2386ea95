"""The SFT trainer of every fine-tuning run: TRL's SFTTrainer with ftlab's settings, collator and
train log (the finetune stage, finetune.py, runs it).

The loss is on the completion only (TRL's prompt-completion format; EOS appended). TRL's defaults
are tuned for GPUs and are slow on a CPU, so a run sets: no gradient checkpointing, bf16 autocast,
batches grouped by length and right-padded without an attention mask (`RightPadCollator`: with
right padding a causal model never attends to a pad from a real token, so SDPA keeps its fused
`is_causal` path), no evaluation and no checkpoints. `bench/finetune.py` measures the result
against a hand-written packed loop and against TRL's defaults. `report_to` is TRL's own: event
files for TensorBoard, or an MLflow run.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pandas as pd
import torch
from tqdm.auto import tqdm
from transformers import PrinterCallback, Trainer, TrainerCallback
from trl import SFTConfig, SFTTrainer

from . import prompts, tables
from .settings import ConfigError
from .settings import from_config as settings_from_config

log = logging.getLogger(__name__)

METHODS = ("full", "lora", "qlora")
REPORT_TO = ("none", "tensorboard", "mlflow")
TENSORBOARD_DIR = "tensorboard"  # event files, inside the run directory (report_to tensorboard)
LLAMA_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: float = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = LLAMA_LINEAR


@dataclass(frozen=True)
class Settings:
    """The `finetune:` config section (see resources/config.schema.yaml for each key)."""

    method: str = "full"
    num_processes: int = 1
    lr: float = 1e-3
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 16
    grad_accum: int = 1
    max_seq_len: int = 256
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool = True
    group_by_length: bool = True
    log_every: int = 10
    report_to: str = "none"  # none | tensorboard | mlflow: TRL's own loggers, see `tracking`
    lora: LoraSettings = field(default_factory=LoraSettings)

    @classmethod
    def from_config(cls, cfg: dict, where: str = "finetune") -> Settings:
        s = settings_from_config(cls, cfg, where)
        if s.method not in METHODS:
            raise ConfigError(f"{where}.method: {s.method!r} is not one of {METHODS}")
        if s.num_processes < 1:
            raise ConfigError(f"{where}.num_processes: {s.num_processes} is below 1")
        if s.report_to not in REPORT_TO:
            raise ConfigError(f"{where}.report_to: {s.report_to!r} is not one of {REPORT_TO}")
        return s


class RightPadCollator:
    """Right-pad input_ids/labels; no attention mask, so SDPA runs its `is_causal` kernel.

    Safe because padding sits after every real token of a row and the mask is causal: real
    tokens never see a pad, and pads carry label -100. `num_real_tokens` feeds the train log.
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict:
        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)
        for i, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[i, :n] = torch.tensor(e["input_ids"])
            labels[i, :n] = torch.tensor(e["labels"])
        # TRL's compute_loss wants an attention_mask or position_ids; plain 0..n-1 rows are exact
        positions = torch.arange(width).expand(len(examples), width)
        real = sum(len(e["input_ids"]) for e in examples)
        return {
            "input_ids": ids,
            "labels": labels,
            "position_ids": positions,
            "num_real_tokens": real,
        }


class TrainLog(TrainerCallback):
    """One train_log row per optimiser step; a tqdm bar, and a line in the job log every `every`.

    `tokens` counts the real (non-pad) tokens of the step, prompt and completion, of every rank
    (`_Trainer.log` sums them). Only rank 0 reports; with several ranks there is no bar (their
    output is piped into the job log line by line), the step lines show progress.

    Replaces the Trainer's own progress output, which prints every step's log dict.
    """

    def __init__(self, every: int):
        self.every = max(1, every)
        self.rows: list[dict] = []
        self.tokens = 0
        self.clock = time.perf_counter()
        self.bar = None

    def count(self, n: int) -> None:
        self.tokens += n

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = tqdm(
            total=state.max_steps,
            desc="finetune",
            unit="step",
            disable=args.world_size > 1 or not state.is_world_process_zero,
        )
        self.tokens, self.clock = 0, time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        now = time.perf_counter()
        seconds = now - self.clock
        row = {
            "step": state.global_step,
            "loss": float(logs["loss"]),
            "lr": float(logs.get("learning_rate", 0.0)),
            "tokens": self.tokens,
            "seconds": seconds,
            "tokens_per_s": self.tokens / seconds if seconds > 0 else 0.0,
        }
        self.rows.append(row)
        self.tokens, self.clock = 0, now
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
        last = state.global_step == state.max_steps
        if state.is_world_process_zero and (state.global_step % self.every == 0 or last):
            rate = sum(r["tokens"] for r in self.rows) / sum(r["seconds"] for r in self.rows)
            log.info(
                "step %d/%d  loss %.4f  lr %.2e  %.0f tok/s",
                state.global_step, state.max_steps, row["loss"], row["lr"], rate,
            )  # fmt: skip

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(tables.schema("train_log").names))


class _Trainer(SFTTrainer):
    """SFTTrainer that hands each batch's real-token count to the train log and takes the loss
    from the model's own forward (bf16 logits under autocast, mean over completion tokens).

    TRL >= 1.x instead projects through a fused LM head in fp32 tiles and also computes entropy
    and top-1 accuracy for its metrics: on a CPU that is ~30% of a step for the small models here
    (bench/finetune.py: 0.60x -> 0.87x of a hand packed loop). The loss is the same quantity.
    """

    def __init__(self, *args, train_log: TrainLog, **kwargs):
        super().__init__(*args, **kwargs)
        self.train_log = train_log

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.train_log.count(int(inputs.pop("num_real_tokens", 0)))
        inputs["use_cache"] = False
        return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:  # an optimiser step, logged by every rank: count all ranks' tokens
            tokens = torch.tensor(self.train_log.tokens, device=self.accelerator.device)
            self.train_log.tokens = int(self.accelerator.reduce(tokens, reduction="sum"))
        super().log(logs, *args, **kwargs)


def sft_config(
    settings: Settings, seed: int, device: str, out: Path, run_name: str | None = None
) -> SFTConfig:
    """The SFTConfig of a run: TRL's prompt-completion SFT with CPU-friendly settings."""
    return SFTConfig(
        output_dir=str(out),
        seed=seed,
        data_seed=seed,
        use_cpu=device == "cpu",
        learning_rate=settings.lr,
        lr_scheduler_type="cosine",
        warmup_steps=settings.warmup_ratio,  # a float < 1 is a fraction of the steps
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        bf16=settings.bf16,
        max_length=settings.max_seq_len,
        completion_only_loss=True,
        packing=False,
        padding_free=False,
        activation_checkpointing=False,  # TRL turns it on by default: ~30% slower on CPU
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # several processes: every weight gets a gradient
        dataset_num_proc=None,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=1,
        report_to=settings.report_to,
        run_name=run_name,
        disable_tqdm=True,  # TrainLog shows progress
    )


def lora_config(lora: LoraSettings):
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )


def read_trainset(trainset: str | os.PathLike | pd.DataFrame) -> datasets.Dataset:
    frame = trainset if isinstance(trainset, pd.DataFrame) else tables.read(trainset, "trainset")
    if frame.empty:
        raise ValueError(f"{trainset}: the trainset has no rows")
    bad = frame[frame.prompt.isna() | frame.completion.isna() | (frame.completion == "")]
    if len(bad):
        raise ValueError(f"{trainset}: example {bad.example_id.iloc[0]!r} has no prompt/completion")
    return datasets.Dataset.from_pandas(frame[["prompt", "completion"]], preserve_index=False)


def trainer(
    model,
    tokenizer,
    data: datasets.Dataset,
    settings: Settings,
    seed: int,
    device: str,
    work: Path,
    run_name: str | None = None,
) -> _Trainer:
    """The SFTTrainer of a run (LoRA: it wraps `model` with PEFT); checkpoints would go to `work`."""
    train_log = TrainLog(settings.log_every)
    if getattr(tokenizer, "chat_template", None):  # instruct models see their chat format
        data = data.map(lambda row: {"prompt": prompts.render(tokenizer, row["prompt"])})
    sft = _Trainer(
        model=model,
        args=sft_config(settings, seed, device, work, run_name),
        train_dataset=data,
        processing_class=tokenizer,
        data_collator=RightPadCollator(tokenizer.pad_token_id),
        peft_config=lora_config(settings.lora) if settings.method != "full" else None,
        callbacks=[train_log],
        train_log=train_log,
    )
    sft.remove_callback(PrinterCallback)  # it prints every step's log dict; TrainLog reports
    return sft


def train(model, tokenizer, data, settings: Settings, seed: int, device: str, work: Path,
          run_name: str | None = None):  # fmt: skip
    """Fine-tune `model` (in place; LoRA: wrapped); returns (trainer, train_log frame)."""
    sft = trainer(model, tokenizer, data, settings, seed, device, work, run_name)
    sft.train()
    return sft, sft.train_log.frame()
