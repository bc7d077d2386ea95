"""Shipped base models: ship a model pretrained here, adopt it only when its fingerprint matches."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from factories import tiny_tasks
from transformers import AutoModelForCausalLM

from ftlab import checkpoints, configcheck, models, provenance, tables, tokenizer

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]

SPEC = {
    "source": "embedded",
    "architecture": {"hidden_size": 32, "num_layers": 2, "num_heads": 2},
    "pretrain": {"tasks": ["chain_sum"], "steps": 3, "batch_size": 2, "seq_len": 32,
                 "warmup_steps": 1},
    "seed": 0,
}  # fmt: skip


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """(pretrained model dir, its shipped checkpoint, tokenizer dir, table paths)."""
    root = tmp_path_factory.mktemp("ckpt")
    table = str(tables.write(tiny_tasks(), root / "chain_sum.parquet", "tasks"))
    tok = tokenizer.train([tiny_tasks()], root / "tokenizer", 320)
    built = root / "models" / "teacher"
    models.build("teacher", SPEC, built, tok, [table], threads=1)
    record = provenance.collect("build_model", {"tokenizer": str(tok), "tables": [table]},
                                {"spec": SPEC})  # fmt: skip
    provenance.write_json(record, built)
    ckpt = checkpoints.ship(built, root / "base_models" / "teacher")
    return built, ckpt, tok, [table]


def _weights(path):
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=torch.float32)
    return model.state_dict()


def test_shipped_checkpoint_is_bf16_with_its_record_and_fingerprint(shipped):
    built, ckpt, tok, tabs = shipped
    config = json.loads((ckpt / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) == "bfloat16"
    fp = json.loads((ckpt / checkpoints.FINGERPRINT).read_text())
    assert fp == checkpoints.fingerprint(SPEC, tok, tabs)
    assert fp["spec"]["pretrain"]["steps"] == 3 and fp["corpus_tokens"] > 100
    assert (ckpt / "provenance.json").read_text() == (built / "provenance.json").read_text()
    assert tables.read(ckpt / "train_log.parquet", "train_log")["step"].tolist() == [0, 1, 2]


def test_adopted_model_is_the_pretrained_one_rounded_to_bf16(shipped, tmp_path):
    built, ckpt, tok, tabs = shipped
    out = tmp_path / "teacher"
    models.build("teacher", {**SPEC, "checkpoint": str(ckpt)}, out, tok, tabs, threads=1)
    got, want = _weights(out), _weights(built)
    assert got.keys() == want.keys()
    for name, w in want.items():
        assert got[name].dtype == torch.float32
        assert torch.equal(got[name], w.to(torch.bfloat16).to(torch.float32)), name
    assert tables.read(out / models.TRAIN_LOG, "train_log")["step"].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s["pretrain"].update(steps=4), "pretrain: checkpoint"),
        (lambda s: s["architecture"].update(num_layers=3), "architecture: checkpoint"),
        (lambda s: s.update(seed=1), "seed: checkpoint 0, config 1"),
    ],
)
def test_a_checkpoint_pretrained_with_another_spec_is_refused(shipped, tmp_path, change, message):
    _, ckpt, tok, tabs = shipped
    spec = json.loads(json.dumps({**SPEC, "checkpoint": str(ckpt)}))
    change(spec)
    with pytest.raises(ValueError, match=rf"models\.teacher\.checkpoint .*{message}"):
        models.build("teacher", spec, tmp_path / "teacher", tok, tabs, threads=1)
    assert not (tmp_path / "teacher").exists()


def test_a_checkpoint_pretrained_on_other_questions_is_refused(shipped, tmp_path):
    _, ckpt, tok, _ = shipped
    other = tiny_tasks(31)  # one more training question: another corpus, same tokenizer
    table = str(tables.write(other, tmp_path / "chain_sum.parquet", "tasks"))
    spec = {**SPEC, "checkpoint": str(ckpt)}
    with pytest.raises(ValueError, match="corpus: pretrained on"):
        models.build("teacher", spec, tmp_path / "teacher", tok, [table], threads=1)


def test_an_adopted_model_cannot_be_shipped_again(shipped, tmp_path):
    _, ckpt, tok, tabs = shipped
    out = tmp_path / "teacher"
    spec = {**SPEC, "checkpoint": str(ckpt)}
    models.build("teacher", spec, out, tok, tabs, threads=1)
    provenance.write_json(
        provenance.collect("build_model", {"tokenizer": str(tok), "tables": tabs}, {"spec": spec}),
        out,
    )
    with pytest.raises(ValueError, match="adopted from"):
        checkpoints.ship(out, tmp_path / "again")


def test_the_default_configs_checkpoints_were_pretrained_with_its_specs():
    """The cheap half of build_model's check on the real tree (the corpus half needs the run)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    configcheck.fill_defaults(config, ROOT / "resources" / "config.schema.yaml")
    named = {n: s for n, s in config["models"].items() if s.get("checkpoint")}
    assert named, "the default config ships no checkpoint"
    for name, spec in named.items():
        ckpt = ROOT / spec["checkpoint"]
        fp = json.loads((ckpt / checkpoints.FINGERPRINT).read_text())
        here = json.loads(provenance.stable_json({k: spec[k] for k in checkpoints.SPEC_KEYS}))
        assert fp["spec"] == here, f"models.{name}: rebuild its checkpoint (make pretrain)"
        size_mb = (ckpt / checkpoints.WEIGHTS).stat().st_size / 2**20
        assert size_mb < 20, f"{name}: {size_mb:.1f} MB of weights"
