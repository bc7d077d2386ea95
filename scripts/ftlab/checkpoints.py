"""Shipped base models: embedded models pretrained once (`make pretrain`), adopted by build_model.

Pretraining the embedded models long enough to know their tasks takes longer than a default run
should, so the default config names a checkpoint per model (`models.<name>.checkpoint`) in
resources/base_models/. `make pretrain` rebuilds them with the pipeline's own build_model rule
(config.yaml + config/pretrain.yaml, which turns the checkpoints off) and `ftlab ship` copies each
into place in bf16, beside its pretraining record (provenance.json, train_log.parquet) and a
fingerprint (checkpoint.json): the model's architecture/pretrain/seed spec, the sha256 of the
tokenizer and of the exact pretraining token stream.

build_model adopts a checkpoint only when this run's fingerprint is the shipped one, so a config,
task or tokenizer that drifted from what the checkpoint was trained on is an error naming the
key, never a model silently trained on other data (or on the test questions of this run).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from . import pretrain, provenance, tables

FINGERPRINT = "checkpoint.json"
SPEC_KEYS = ("architecture", "pretrain", "seed")  # what the weights depend on, besides the corpus
WEIGHTS = "model.safetensors"


def fingerprint(spec: dict, tokenizer_dir: str | os.PathLike, table_paths: list[str]) -> dict:
    """What a pretrained embedded model is a function of (the corpus rebuilt from the tables)."""
    settings = pretrain.Settings.from_config(spec.get("pretrain", {}))
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    frames = [tables.read(p, "tasks") for p in table_paths]
    _, stream, mask = pretrain.corpus_tokens(frames, settings, int(spec.get("seed", 0)), tokenizer)
    corpus = hashlib.sha256(stream.numpy().tobytes() + mask.numpy().tobytes()).hexdigest()
    return {
        "spec": json.loads(provenance.stable_json({k: spec.get(k) for k in SPEC_KEYS})),
        "tokenizer_sha256": provenance.sha256_file(Path(tokenizer_dir) / "tokenizer.json"),
        "corpus_sha256": corpus,
        "corpus_tokens": len(stream),
    }


def mismatches(shipped: dict, here: dict) -> list[str]:
    """The fingerprint entries that differ, as 'key: shipped -> here' (spec keys one by one)."""
    out = []
    for key in SPEC_KEYS:
        a, b = shipped["spec"].get(key), here["spec"].get(key)
        if a != b:
            out.append(f"{key}: checkpoint {a!r}, config {b!r}")
    if shipped["tokenizer_sha256"] != here["tokenizer_sha256"]:
        out.append("tokenizer: not the tokenizer this run trained (tokenizer section or its tasks)")
    if not out and shipped["corpus_sha256"] != here["corpus_sha256"]:
        out.append(
            f"corpus: pretrained on {shipped['corpus_tokens']} other tokens than this run's "
            f"{here['corpus_tokens']} (the pretraining tasks' specs or seeds changed)"
        )
    return out


def adopt(name: str, spec: dict, tokenizer_dir, table_paths: list[str]):
    """(model in float32, its pretraining train_log): the checkpoint, after its fingerprint check."""
    ckpt = Path(spec["checkpoint"])
    where = f"models.{name}.checkpoint ({ckpt})"
    if not (ckpt / FINGERPRINT).is_file():
        raise ValueError(f"{where}: no {FINGERPRINT}: not a checkpoint shipped by `ftlab ship`")
    shipped = json.loads((ckpt / FINGERPRINT).read_text())
    problems = mismatches(shipped, fingerprint(spec, tokenizer_dir, table_paths))
    if problems:
        raise ValueError(
            f"{where} was pretrained on something else than this config asks for: "
            + "; ".join(problems)
            + ". Rebuild it (`make pretrain`) or set the checkpoint to null to pretrain here."
        )
    model = AutoModelForCausalLM.from_pretrained(
        ckpt, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
    )
    return model, tables.read(ckpt / "train_log.parquet", "train_log")


def ship(model_dir: str | os.PathLike, dest: str | os.PathLike, root: str | os.PathLike = ".") -> Path:  # fmt: skip
    """Copy a model pretrained by build_model into `dest` as a checkpoint (bf16 weights).

    Its provenance names the tokenizer and tables it was built from (paths relative to the run
    directory `root`); the fingerprint is computed from those same files.
    """
    model_dir, root = Path(model_dir), Path(root)
    record = json.loads((model_dir / provenance.PROVENANCE_FILE).read_text())
    spec = dict(record["config"]["spec"])
    if spec.get("checkpoint"):
        raise ValueError(f"{model_dir} was itself adopted from {spec['checkpoint']}: ship a model "
                         "pretrained here (make pretrain)")  # fmt: skip
    names = record["input_names"]
    tables_ = [str(root / p) for p in names["tables"]]
    fp = fingerprint(spec, root / names["tokenizer"], tables_)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, use_safetensors=True, dtype=torch.float32
    )
    with tables.atomic_dir(dest) as tmp:
        model.to(torch.bfloat16).save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp)
        for f in (provenance.PROVENANCE_FILE, "train_log.parquet"):
            shutil.copy2(model_dir / f, tmp / f)
        (tmp / FINGERPRINT).write_text(json.dumps(fp, indent=2, sort_keys=True) + "\n")
    return Path(dest)
