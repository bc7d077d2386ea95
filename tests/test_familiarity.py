"""Familiarity scores: batched log-likelihoods equal one-at-a-time ones, with either padding, and
say what a completion's fine-tuning loss would be before any training."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from factories import tiny_llama, tiny_tokenizer

from ftlab import familiarity, tables
from ftlab.settings import ConfigError

PAIRS = [
    ("Question: What is 3 + 4 + 5?\nReasoning:", " 3 + 4 = 7, 7 + 5 = 12.\nAnswer: 12"),
    ("Question: How many legs do 2 cats have?\nReasoning:", " 2 * 4 = 8.\nAnswer: 8"),
    ("Question: All birds fly. Is a robin a bird?\n(A) yes\n(B) no\nAnswer:", " A"),
    ("Question: What is 3 + 4?\nReasoning:", " 3 + 4 = 7.\nAnswer: 7"),
    ("Question: How many legs do 12 birds have?\nReasoning:",
     " 12 * 2 = 24. The birds have 24 legs.\nAnswer: 24"),
]  # fmt: skip


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_llama(tok, seed=3)


def one_at_a_time(model, tok, pairs):
    return [familiarity.score_encoded(model, [familiarity.encode(tok, p, c)], batch_size=1)[0]
            for p, c in pairs]  # fmt: skip


def by_hand(model, tok, prompt, completion):
    """The completion's log-likelihood from one unpadded forward pass, token by token."""
    enc = familiarity.encode(tok, prompt, completion)
    with torch.no_grad():
        logits = model(torch.tensor([enc.ids])).logits[0].double()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(float(logprobs[t - 1, enc.ids[t]]) for t in range(enc.prompt_tokens, len(enc.ids)))


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("batch_size", [2, 3, 8])
def test_batched_log_likelihoods_equal_unbatched_ones(model, tok, padding_side, batch_size):
    alone = one_at_a_time(model, tok, PAIRS)
    encoded = [familiarity.encode(tok, p, c) for p, c in PAIRS]
    assert len({len(e.ids) for e in encoded}) > 2  # the batches really are padded
    batched = familiarity.score_encoded(model, encoded, batch_size, padding_side, tok.pad_token_id)
    for a, b in zip(alone, batched, strict=True):
        assert b.completion_tokens == a.completion_tokens
        assert b.logprob_sum == pytest.approx(a.logprob_sum, abs=1e-5)
        assert b.logprob_mean == pytest.approx(a.logprob_mean, abs=1e-5)


def test_scores_are_the_completion_log_likelihood_given_the_prompt(model, tok):
    (enc, score), *_ = familiarity.score(model, tok, [PAIRS[0][0]], [PAIRS[0][1]],
                                         familiarity.Settings())  # fmt: skip
    assert score.logprob_sum == pytest.approx(by_hand(model, tok, *PAIRS[0]), abs=1e-5)
    assert score.logprob_sum < 0
    assert score.logprob_mean == pytest.approx(score.logprob_sum / score.completion_tokens)
    # the prompt is not scored: a longer prompt leaves the number of scored tokens alone
    longer = familiarity.encode(tok, "Note.\n" + PAIRS[0][0], PAIRS[0][1])
    assert longer.completion_tokens == enc.completion_tokens


def test_encoding_is_the_fine_tuning_layout(tok):
    """prompt + completion as one text, the completion after the prompt's tokens, then EOS."""
    prompt, completion = PAIRS[1]
    enc = familiarity.encode(tok, prompt, completion)
    assert enc.ids[: enc.prompt_tokens] == tok(prompt)["input_ids"]
    assert enc.ids[-1] == tok.eos_token_id
    assert tok.decode(enc.ids[enc.prompt_tokens : -1]) == completion
    no_eos = familiarity.encode(tok, prompt, completion, add_eos=False)
    assert no_eos.completion_tokens == enc.completion_tokens - 1
    with pytest.raises(ValueError, match="nothing to score"):
        familiarity.encode(tok, prompt, "", add_eos=False)


def test_a_completion_the_model_was_trained_on_is_more_familiar(tok):
    """A few steps on one completion lower its NLL and leave an unrelated one's alone more."""
    model = tiny_llama(tok, seed=1).train()
    seen, unseen = PAIRS[0], PAIRS[1]
    before = one_at_a_time(model, tok, [seen, unseen])
    enc = familiarity.encode(tok, *seen)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    labels = [-100] * enc.prompt_tokens + enc.ids[enc.prompt_tokens :]
    for _ in range(20):
        loss = model(torch.tensor([enc.ids]), labels=torch.tensor([labels])).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = one_at_a_time(model.eval(), tok, [seen, unseen])
    gain_seen = after[0].logprob_mean - before[0].logprob_mean
    gain_unseen = after[1].logprob_mean - before[1].logprob_mean
    assert gain_seen > 1.0 and gain_seen > gain_unseen
    # the loss the trainer reports is minus the mean log-probability per completion token
    with torch.no_grad():
        loss = float(model(torch.tensor([enc.ids]), labels=torch.tensor([labels])).loss)
    assert -after[0].logprob_mean == pytest.approx(loss, abs=1e-4)


def trainset(pairs):
    return pd.DataFrame({
        "example_id": [f"e{i}" for i in range(len(pairs))], "task": "t", "study": "s",
        "variant": "v", "prompt": [p for p, _ in pairs], "completion": [c for _, c in pairs],
        "source": "gold",
    })  # fmt: skip


def test_trainset_rows_fit_the_familiarity_table(model, tok, tmp_path):
    frame = familiarity.score_trainset(trainset(PAIRS), model, tok, "student",
                                       familiarity.Settings(batch_size=2))  # fmt: skip
    tables.write(frame, tmp_path / "f.parquet", "familiarity")
    back = tables.read(tmp_path / "f.parquet", "familiarity")
    assert list(back["example_id"]) == [f"e{i}" for i in range(len(PAIRS))]  # input order kept
    assert (back["model"] == "student").all() and (back["completion_tokens"] > 0).all()
    alone = one_at_a_time(model, tok, PAIRS)
    assert back["logprob_sum"].to_numpy() == pytest.approx([s.logprob_sum for s in alone], abs=1e-5)


def test_mean_and_corpus_perplexity_are_different_averages():
    frame = pd.DataFrame({"logprob_sum": [-1.0, -30.0], "completion_tokens": [1, 10],
                          "logprob_mean": [-1.0, -3.0]})  # fmt: skip
    p = familiarity.perplexities(frame)
    assert p["mean_nll"] == pytest.approx(2.0)
    assert p["mean_perplexity"] == pytest.approx((math.e + math.e**3) / 2)  # examples weigh alike
    assert p["corpus_perplexity"] == pytest.approx(math.exp(31 / 11))  # tokens weigh alike
    assert p["mean_tokens"] == 5.5 and p["examples"] == 2
    assert np.isnan(familiarity.perplexities(frame.iloc[:0])["mean_nll"])


def test_settings_are_checked():
    assert familiarity.Settings.from_config({"batch_size": 4}).batch_size == 4
    with pytest.raises(ConfigError, match="padding_side"):
        familiarity.Settings.from_config({"padding_side": "middle"})
    with pytest.raises(ConfigError, match="unknown key"):
        familiarity.Settings.from_config({"batch": 4})
