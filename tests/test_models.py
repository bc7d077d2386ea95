"""Building an embedded model: a loadable tied-embedding Llama of the configured size, atomically."""

import pytest
import torch
from factories import tiny_tasks
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from ftlab import models, pretrain, tables, tokenizer

torch.set_num_threads(1)

SPEC = {
    "source": "embedded",
    "architecture": {"hidden_size": 32, "num_layers": 2, "num_heads": 2},
    "pretrain": {
        "tasks": ["chain_sum"],
        "steps": 3,
        "batch_size": 2,
        "seq_len": 32,
        "warmup_steps": 1,
    },
    "seed": 0,
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    table = tables.write(tiny_tasks(), root / "chain_sum.parquet", "tasks")
    tok = tokenizer.train([tiny_tasks()], root / "tokenizer", 320)
    return tok, [str(table)]


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory):
    tok, tabs = inputs
    out = tmp_path_factory.mktemp("models") / "teacher"
    device = models.build("teacher", SPEC, out, tok, tabs, threads=1)
    return out, device


def test_built_model_is_a_tied_llama_of_the_configured_size(built):
    out, device = built
    assert device in ("cpu", "cuda")
    model = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True)
    assert isinstance(model, LlamaForCausalLM)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (32, 2, 2)
    assert cfg.intermediate_size == 80 and cfg.head_dim == 16  # 8/3 * 32 rounded to 16
    assert cfg.tie_word_embeddings
    assert model.get_input_embeddings().weight.data_ptr() == model.lm_head.weight.data_ptr()
    tok = AutoTokenizer.from_pretrained(out)
    assert cfg.vocab_size == len(tok) and cfg.pad_token_id == tok.pad_token_id
    assert (out / "model.safetensors").exists()


def test_train_log_has_one_row_per_step_with_provenance(built):
    out, _ = built
    log = tables.read(out / models.TRAIN_LOG, "train_log")
    assert log["step"].tolist() == [0, 1, 2]
    prov = tables.provenance(out / models.TRAIN_LOG)
    assert prov["rule"] == "build_model" and prov["seed"] == 0


def test_load_returns_eval_model_and_tokenizer(built):
    model, tok = models.load(built[0], device="cpu")
    assert not model.training and tok.eos_token == "<|eos|>"
    ids = tok("Question: What is 1 + 2?", return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape[-1] == len(tok)


def test_interrupted_build_leaves_no_directory(inputs, tmp_path, monkeypatch):
    tok, tabs = inputs

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-training")

    monkeypatch.setattr(pretrain, "train", crash)
    out = tmp_path / "teacher"
    with pytest.raises(RuntimeError, match="killed"):
        models.build("teacher", SPEC, out, tok, tabs, threads=1)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_unloadable_external_model_fails_the_build_and_leaves_no_directory(tmp_path):
    spec = {
        "source": "hf",
        "name_or_path": str(tmp_path / "missing"),
        "revision": None,
        "dtype": "auto",
        "trust_remote_code": False,
    }
    with pytest.raises(OSError):
        models.build("big", spec, tmp_path / "big", None, [], 1)
    assert not (tmp_path / "big").exists()


def test_bad_architecture_is_named():
    with pytest.raises(ValueError, match="num_heads"):
        models.Architecture.from_config({"hidden_size": 30, "num_heads": 4})
