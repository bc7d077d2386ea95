"""Pretraining: the corpus is what the config says, the loss falls, and runs are reproducible."""

import pandas as pd
import pytest
import torch
from factories import tiny_tasks
from transformers import AutoTokenizer, LlamaForCausalLM

from ftlab import models, pretrain, tokenizer

torch.set_num_threads(1)

TINY = models.Architecture(hidden_size=32, num_layers=1, num_heads=2)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    path = tokenizer.train([tiny_tasks()], tmp_path_factory.mktemp("tok") / "tokenizer", 320)
    return AutoTokenizer.from_pretrained(path)


def test_corpus_has_worked_examples_and_question_only_texts():
    frame = pd.concat([tiny_tasks(), tiny_tasks().assign(task="other")], ignore_index=True)
    frame.loc[frame.index[-3:], "split"] = "test"
    settings = pretrain.Settings(
        tasks=("chain_sum",), question_only_tasks=("other",), direct_fraction=0.0
    )
    docs = pretrain.corpus([frame], settings, seed=0)
    texts = [c + t for c, t in docs]
    worked = [t for t in texts if "Reasoning:" in t]
    questions_only = [t for t in texts if "Answer:" not in t]
    assert len(worked) == 30 and all(t.rstrip().split()[-1].isdigit() for t in worked)
    assert len(questions_only) == 31 - 3  # train rows of "other" only, without answers
    assert all(c == "" for c, t in docs if "Answer:" not in t)  # question-only: all target
    assert docs == pretrain.corpus([frame], settings, seed=0)
    assert docs != pretrain.corpus([frame], settings, seed=1)  # shuffled with the seed


def test_direct_fraction_mixes_in_direct_examples():
    settings = pretrain.Settings(tasks=("chain_sum",), direct_fraction=0.5)
    texts = [c + t for c, t in pretrain.corpus([tiny_tasks()], settings, seed=0)]
    direct = [t for t in texts if "Reasoning:" not in t]
    assert 5 <= len(direct) <= 25 and all(t.endswith(t.split()[-1]) for t in direct)


def test_missing_task_is_named():
    with pytest.raises(ValueError, match="nowhere"):
        pretrain.corpus([tiny_tasks()], pretrain.Settings(tasks=("nowhere",)), seed=0)


def test_lr_schedule_warms_up_then_decays_to_floor():
    s = pretrain.Settings(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [pretrain.lr_at(i, s) for i in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] == pytest.approx(0.1, abs=0.01)


def _run(tok, steps=30, seed=0):
    docs = [("Question: say abc\nAnswer:", " abc abc abc")] * 40
    stream, _ = pretrain.token_stream(docs, tok, question_loss=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(models.llama_config(TINY, tok))
    s = pretrain.Settings(steps=steps, batch_size=4, seq_len=32, lr=0.01, warmup_steps=2)
    return model, pretrain.train(model, stream, s, seed=seed, progress=False)


def test_loss_mask_covers_targets_and_eos_only(tok):
    docs = [("Question: 1 + 2\nAnswer:", " 3"), ("", "Question: 4 + 5")]
    stream, mask = pretrain.token_stream(docs, tok)
    ctx = tok(docs[0][0], add_special_tokens=False)["input_ids"]
    tgt = tok(docs[0][1], add_special_tokens=False)["input_ids"]
    first = len(ctx) + len(tgt) + 1
    assert stream[:first].tolist() == [*ctx, *tgt, tok.eos_token_id]
    assert mask[:first].tolist() == [False] * len(ctx) + [True] * (len(tgt) + 1)
    assert mask[first:].all()  # a question-only text is all target
    _, everything = pretrain.token_stream(docs, tok, question_loss=True)
    assert everything.all()


def test_loss_falls_on_a_repetitive_corpus(tok):
    _, log = _run(tok)
    assert list(log.columns) == ["step", "loss", "lr", "tokens", "seconds", "tokens_per_s"]
    assert log["loss"].tail(5).mean() < 0.5 * log["loss"].head(3).mean()
    assert log["tokens"].iloc[-1] == 30 * 4 * 33


def test_same_seed_same_weights_and_losses(tok):
    m1, log1 = _run(tok, steps=5)
    m2, log2 = _run(tok, steps=5)
    assert log1["loss"].tolist() == log2["loss"].tolist()
    for (n, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    _, log3 = _run(tok, steps=5, seed=1)
    assert log3["loss"].tolist() != log1["loss"].tolist()
