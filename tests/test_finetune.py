"""finetune: loss goes down, loss on the completion only, LoRA/QLoRA save, same seed same run,
atomic, QLoRA's clear errors, and two processes under accelerate launch (launch.py: a launcher
that knows nothing of the trainer)."""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from factories import save_model_dir, tiny_llama
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from ftlab import configcheck, finetune, launch, models, prompts, sft, tables, tokenizer

torch.set_num_threads(1)

PAIRS = [(a, b) for a in range(2, 6) for b in range(3, 5)]  # 8 memorisable sums


@pytest.fixture(scope="module")
def tok():
    questions = pd.DataFrame(
        {
            "example_id": [f"q{i}" for i in range(len(PAIRS))],
            "task": "sums",
            "split": "train",
            "task_type": "numeric",
            "question": [f"What is {a} plus {b}?" for a, b in PAIRS],
            "choices": None,
            "answer": [str(a + b) for a, b in PAIRS],
            "gold_rationale": [f"{a} plus {b} makes {a + b}." for a, b in PAIRS],
            "metadata": "{}",
        }
    )
    return tokenizer.build([questions], vocab_size=300)


@pytest.fixture(scope="module")
def trainset():
    return pd.DataFrame(
        {
            "example_id": [f"q{i}" for i in range(len(PAIRS))],
            "task": "sums",
            "study": "test",
            "variant": "cot",
            "prompt": [prompts.cot_prompt(f"What is {a} plus {b}?") for a, b in PAIRS],
            "completion": [
                prompts.cot_completion(f"{a} plus {b} makes {a + b}.", str(a + b)) for a, b in PAIRS
            ],
            "source": "gold",
        }
    )


@pytest.fixture(scope="module")
def base_model(tmp_path_factory, tok):
    model = tiny_llama(tok, layers=1, heads=2, max_positions=128, tie_word_embeddings=True)
    return save_model_dir(model, tok, tmp_path_factory.mktemp("base"))


SETTINGS = {"lr": 0.01, "max_steps": 30, "batch_size": 4, "warmup_ratio": 0.1, "log_every": 10}


def run(trainset, base_model, out, seed=0, **overrides):
    path = out.parent / f"{out.name}.parquet"
    tables.write(trainset, path, "trainset")
    return finetune.run(path, base_model, out, {**SETTINGS, **overrides}, seed=seed, threads=1)


def test_loss_decreases_and_train_log_has_a_row_per_step(trainset, base_model, tmp_path):
    assert run(trainset, base_model, tmp_path / "run") == "cpu"
    log = tables.read(tmp_path / "run" / finetune.TRAIN_LOG, "train_log")
    assert list(log.step) == list(range(1, 31))
    assert log.loss.tail(5).mean() < 0.5 * log.loss.iloc[0]
    assert (log.tokens > 0).all() and (log.tokens_per_s > 0).all()
    assert log.lr.iloc[-1] < log.lr.max()  # cosine decay after warm-up
    assert (tmp_path / "run" / "model.safetensors").exists()
    assert (tmp_path / "run" / "tokenizer.json").exists()


def first_batch(trainset, base_model, tok, work):
    """(model, the SFT trainer of a one-step run over it, its first training batch)."""
    model = AutoModelForCausalLM.from_pretrained(base_model)
    settings = finetune.Settings.from_config({"batch_size": 8, "max_steps": 1})
    trainer = sft.trainer(model, tok, sft.read_trainset(trainset), settings, 0, "cpu", work)
    return model, trainer, next(iter(trainer.get_train_dataloader()))


def test_loss_is_on_the_completion_and_eos_only(trainset, base_model, tok, tmp_path):
    _, sft, batch = first_batch(trainset, base_model, tok, tmp_path / "work")
    assert sft.accelerator.mixed_precision == "bf16"  # bf16 autocast on CPU too
    assert not sft.args.activation_checkpointing
    by_prompt = {
        tuple(tok(p)["input_ids"]): tok(p + c)["input_ids"]
        for p, c in zip(trainset.prompt, trainset.completion, strict=True)
    }
    assert batch["num_real_tokens"] == sum(len(v) + 1 for v in by_prompt.values())
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True):
        prompt = next(p for p in by_prompt if tuple(ids[: len(p)]) == p)
        full = by_prompt[prompt] + [tok.eos_token_id]
        assert ids[: len(full)] == full
        assert labels[: len(prompt)] == [-100] * len(prompt)  # no loss on the prompt
        assert labels[len(prompt) : len(full)] == full[len(prompt) :]  # completion + EOS
        assert set(labels[len(full) :]) <= {-100}  # nor on padding
        assert set(ids[len(full) :]) <= {tok.pad_token_id}


def test_the_loss_is_the_mean_cross_entropy_of_completion_tokens(
    trainset, base_model, tok, tmp_path
):
    model, sft, batch = first_batch(trainset, base_model, tok, tmp_path / "work")
    targets = batch["labels"][:, 1:]
    n = int((targets != -100).sum())
    with torch.no_grad(), sft.compute_loss_context_manager():  # bf16 autocast, as in training
        loss = sft.compute_loss(sft.model, dict(batch), num_items_in_batch=torch.tensor(n))
        logits = model(input_ids=batch["input_ids"]).logits.float()[:, :-1]
    expected = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"
    )
    assert loss.item() == pytest.approx(expected.item() / n, rel=1e-3)


def test_lora_saves_adapter_and_a_merged_model(trainset, base_model, tmp_path):
    from peft import PeftModel

    run(trainset, base_model, tmp_path / "lora", method="lora", lora={"r": 4, "alpha": 8})
    out = tmp_path / "lora"
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    base = load_file(base_model / "model.safetensors")
    merged, _ = models.load(out, device="cpu")  # what evaluate loads: the merged weights
    peft = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_model), out / "adapter"
    )
    for name, param in peft.named_parameters():  # the adapter leaves the base weights as they were
        if "lora_" not in name:
            key = name.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(param, base[key]), name
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], base[q])  # training moved the merged weights
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, peft.eval()(ids).logits, atol=1e-5)


def test_same_seed_same_run(trainset, base_model, tmp_path):
    for name in ("a", "b"):
        run(trainset, base_model, tmp_path / name, seed=3, max_steps=6)
    run(trainset, base_model, tmp_path / "c", seed=4, max_steps=6)
    logs = {n: tables.read(tmp_path / n / finetune.TRAIN_LOG).loss.tolist() for n in "abc"}
    weights = {n: load_file(tmp_path / n / "model.safetensors") for n in "abc"}
    assert logs["a"] == logs["b"]
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert logs["a"] != logs["c"]  # the seed reaches the batch order


def test_interrupted_run_leaves_nothing_and_a_rerun_completes(
    trainset, base_model, tmp_path, monkeypatch
):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        run(trainset, base_model, tmp_path / "run", max_steps=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.parquet"]
    (tmp_path / ".run.abc.tmp").mkdir()  # what a killed (SIGKILL) run leaves: cleaned up next time
    monkeypatch.undo()
    run(trainset, base_model, tmp_path / "run", max_steps=2)
    assert (tmp_path / "run" / finetune.TRAIN_LOG).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.parquet"]


def test_settings_reject_unknown_keys():
    with pytest.raises(ValueError, match="learning_rate"):
        finetune.Settings.from_config({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="finetune.method"):
        finetune.Settings.from_config({"method": "qdora"})
    with pytest.raises(ValueError, match="finetune.num_processes"):
        finetune.Settings.from_config({"num_processes": 0})
    with pytest.raises(ValueError, match="finetune.lora"):
        finetune.Settings.from_config({"lora": {"rank": 4}})
    settings = finetune.Settings.from_config({"lora": {"r": 4, "target_modules": ["q_proj"]}})
    assert settings.lora.r == 4 and settings.lora.target_modules == ("q_proj",)


def without_bitsandbytes(monkeypatch, installed: bool):
    """importlib.util.find_spec as if bitsandbytes were (not) installed; nothing else changes."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "bitsandbytes":
            return SimpleNamespace(name=name) if installed else None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_qlora_without_bitsandbytes_is_a_config_error(monkeypatch):
    without_bitsandbytes(monkeypatch, installed=False)
    study = {"teacher": "m", "student": "m", "tasks": ["t"], "finetune": {"method": "lora"}}
    config = {
        "tasks": {"t": {"source": "embedded"}},
        "models": {"m": {"source": "embedded", "pretrain": {"tasks": ["t"]}}},
        "finetune": {"method": "full"},
        "studies": {"distillation": study},
    }
    configcheck.check(config)  # full and lora need nothing extra
    study["finetune"]["method"] = "qlora"
    with pytest.raises(configcheck.ConfigError) as error:
        configcheck.check(config)
    assert str(error.value).startswith(
        "studies.distillation.finetune.method: qlora needs bitsandbytes"
    )
    assert "pip install bitsandbytes" in str(error.value)
    del study["finetune"]
    config["finetune"]["method"] = "qlora"  # the default every study inherits
    with pytest.raises(
        configcheck.ConfigError, match=r"^finetune\.method: .*pip install bitsandbytes"
    ):
        configcheck.check(config)
    without_bitsandbytes(monkeypatch, installed=True)
    configcheck.check(config)  # CUDA is the job's check: a submit host may have no GPU


def test_qlora_on_cpu_fails_before_loading_anything(trainset, base_model, tmp_path, monkeypatch):
    without_bitsandbytes(monkeypatch, installed=False)
    with pytest.raises(ValueError, match="needs bitsandbytes: pip install bitsandbytes"):
        run(trainset, base_model, tmp_path / "run", method="qlora")
    without_bitsandbytes(monkeypatch, installed=True)
    with pytest.raises(ValueError) as error:
        run(trainset, base_model, tmp_path / "run", method="qlora")
    assert str(error.value) == (
        "finetune.method qlora needs a CUDA GPU (4-bit bitsandbytes weights); this job runs on cpu"
    )
    assert not (tmp_path / "run").exists()


def test_qlora_config_is_4bit_nf4_with_bf16_compute():
    quant = finetune.quantization(finetune.Settings.from_config({"method": "qlora"}))
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4"
    assert quant.bnb_4bit_use_double_quant and quant.bnb_4bit_compute_dtype == torch.bfloat16
    assert finetune.quantization(finetune.Settings.from_config({"method": "lora"})) is None


def test_qlora_merges_its_adapter_into_a_bf16_reload_of_the_base(base_model, tok, tmp_path):
    from peft import get_peft_model

    settings = finetune.Settings.from_config({"method": "qlora", "lora": {"r": 4}})
    trained = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_model), sft.lora_config(settings.lora)
    )
    torch.manual_seed(1)
    for name, param in trained.named_parameters():  # stands in for training (B starts at 0)
        if "lora_B" in name:
            param.data.normal_(std=0.1)
    finetune.save(SimpleNamespace(model=trained), tok, settings, tmp_path, base_model, "cpu")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    merged = load_file(tmp_path / "model.safetensors")
    base = load_file(base_model / "model.safetensors")
    expected = trained.merge_and_unload().state_dict()  # float32 merge
    q = "model.layers.0.self_attn.q_proj.weight"
    assert all(w.dtype == torch.bfloat16 for w in merged.values())
    assert not torch.equal(merged[q], base[q].bfloat16())  # the adapter is in
    for key, weight in merged.items():
        assert torch.allclose(weight.float(), expected[key], atol=2e-2, rtol=1e-2), key
    model, _ = models.load(tmp_path, device="cpu")  # evaluation loads it like any run
    assert model(torch.tensor([[5, 6, 7]])).logits.shape == (1, 3, len(tok))


def test_two_processes_train_one_run_and_count_every_ranks_tokens(
    trainset, base_model, tok, tmp_path
):
    out = tmp_path / "ddp"
    settings = {"num_processes": 2, "epochs": 1, "max_steps": None, "batch_size": 2}
    finetune.run(trainset, base_model, out, {**SETTINGS, **settings}, seed=0, threads=2)
    log = tables.read(out / finetune.TRAIN_LOG, "train_log")
    # 8 examples, 2 per rank and step: 2 steps, and together they saw every token once
    assert list(log.step) == [1, 2]
    every_token = sum(
        len(tok(p + c)["input_ids"]) + 1
        for p, c in zip(trainset.prompt, trainset.completion, strict=True)
    )
    assert log.tokens.sum() == every_token
    record = json.loads((out / "provenance.json").read_text())
    assert record["num_processes"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # rank 1 wrote nothing here
    model, _ = models.load(out, device="cpu")
    base = load_file(base_model / "model.safetensors")
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(model.state_dict()[q], base[q])


def test_the_launcher_runs_any_module_plainly_or_as_ranks(tmp_path, caplog):
    assert launch.command("pkg.mod", ["a"])[1:] == ["-m", "pkg.mod", "a"]
    cmd = launch.command("pkg.mod", ["a"], num_processes=2, mixed_precision="bf16", port=29555)
    assert cmd[1:4] == ["-m", "accelerate.commands.launch", "--multi_gpu"]
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("--main_process_port") + 1] == "29555"
    assert cmd[cmd.index("--mixed_precision") + 1] == "bf16"
    assert cmd[-3:] == ["-m", "pkg.mod", "a"]
    assert [launch.per_rank_threads(t, 2) for t in (1, 2, 5)] == [1, 1, 2]
    with caplog.at_level("INFO", logger="ftlab.launch"):
        launch.run("json.tool", ["--help"], num_processes=1, threads=1)
    assert "| usage:" in caplog.text  # the process's output, line by line in the job's log
    with pytest.raises(RuntimeError, match=r"^probe: `python -m json.tool` failed \(exit"):
        launch.run("json.tool", [str(tmp_path / "missing.json")], 1, 1, name="probe")


def test_report_to_tensorboard_writes_event_files_into_the_run(trainset, base_model, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(trainset, base_model, tmp_path / "run", max_steps=4, report_to="tensorboard")
    events = sorted((tmp_path / "run" / finetune.TENSORBOARD_DIR).rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file in the run directory"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    loss = acc.Scalars("train/loss")
    log = tables.read(tmp_path / "run" / finetune.TRAIN_LOG, "train_log")
    assert [e.step for e in loss] == list(log.step)  # one point per optimiser step
    assert [e.value for e in loss] == pytest.approx(list(log.loss), rel=1e-5)


def test_report_to_mlflow_logs_a_run_in_a_local_store(trainset, base_model, tmp_path, monkeypatch):
    import mlflow

    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(var, raising=False)
    store = tmp_path / "mlruns"
    path = tmp_path / "ts.parquet"
    tables.write(trainset, path, "trainset")
    settings = {**SETTINGS, "max_steps": 3, "report_to": "mlflow"}
    finetune.run(path, base_model, tmp_path / "run", settings, seed=0, threads=1,
                 run_name="study_x/cot/sums/seed0", tracking_dir=store)  # fmt: skip
    client = mlflow.tracking.MlflowClient(tracking_uri=store.resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "study_x"]
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "study_x/cot/sums/seed0"
    history = client.get_metric_history(logged.info.run_id, "loss")
    assert len(history) == 3 and all(h.value > 0 for h in history)
    with pytest.raises(ValueError, match="tracking directory"):
        finetune.run(path, base_model, tmp_path / "run2", settings, seed=0, threads=1)
