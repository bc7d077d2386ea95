"""Key-token importance: the word the answer depends on ranks first; batching and order are exact."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from factories import bpe_tokenizer, tiny_llama
from transformers import PreTrainedTokenizerFast

from ftlab import prompts
from ftlab.studies.distillation import key_tokens

torch.set_num_threads(1)

WORDS = "red blue green cat dog sun moon tree".split()
PROMPT = prompts.cot_prompt("Which colour or thing?")


def tokenizer() -> PreTrainedTokenizerFast:
    corpus = [
        PROMPT + prompts.cot_completion(" ".join(WORDS[i:] + WORDS[:i]), w)
        for i, w in enumerate(WORDS)
    ]
    return bpe_tokenizer(corpus, vocab_size=290)


class CountingLM(torch.nn.Module):
    """logit(v) at position t = 9 x (occurrences of token v up to t): the answer copies a word."""

    def __init__(self, vocab: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, vocab)
        with torch.no_grad():
            self.embed.weight.copy_(3 * torch.eye(vocab))

    @property
    def device(self):
        return torch.device("cpu")

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        h = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        return SimpleNamespace(logits=3 * torch.cumsum(h * attention_mask.unsqueeze(-1), dim=1))


def examples(n=12, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = list(rng.choice(WORDS, 6, replace=False))
        out.append((PROMPT, " ".join(words), words[int(rng.integers(6))]))
    return out


@pytest.mark.parametrize("method", key_tokens.METHODS)
def test_the_word_the_answer_copies_ranks_first(method):
    tok = tokenizer()
    ex = examples()
    scores = key_tokens.score(CountingLM(len(tok)), tok, ex, method, batch_size=5, progress=False)
    for (_, rationale, answer), s in zip(ex, scores, strict=True):
        words = rationale.split()
        assert len(s) == len(words)
        assert words[int(np.argmax(s))] == answer
        assert key_tokens.top_words(s, 0.15) == [words.index(answer)]


@pytest.mark.parametrize("method", key_tokens.METHODS)
def test_scores_do_not_depend_on_batching_and_are_deterministic(method):
    tok = tokenizer()
    model = tiny_llama(tok)
    ex = [
        (PROMPT, "redgreen blue  cat\nsun", "dog"),
        *examples(4, seed=1),
    ]  # a multi-token word, odd spacing
    one = key_tokens.score(model, tok, ex, method, batch_size=1, progress=False)
    many = key_tokens.score(model, tok, ex, method, batch_size=4, progress=False)
    again = key_tokens.score(model, tok, ex, method, batch_size=4, progress=False)
    for a, b, c in zip(one, many, again, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(b, c)
    assert len(one[0]) == 4 and (one[0] > 0).all()


def test_leave_one_out_is_the_answer_logprob_change():
    tok = tokenizer()
    model = tiny_llama(tok, seed=3)
    prompt, rationale, answer = examples(1, seed=2)[0]

    def logprob(r):
        text = prompt + prompts.cot_completion(r, answer)
        ids = tok(text)["input_ids"]
        n_answer = len(tok(text)["input_ids"]) - len(tok(text[: -len(answer) - 1])["input_ids"])
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], -1)
        return sum(logp[i - 1, ids[i]].item() for i in range(len(ids) - n_answer, len(ids)))

    words = rationale.split()
    expected = [
        abs(logprob(rationale) - logprob(" ".join(words[:i] + words[i + 1 :])))
        for i in range(len(words))
    ]
    (got,) = key_tokens.score(
        model, tok, [(prompt, rationale, answer)], "leave_one_out", progress=False
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_selection_keeps_order_and_count():
    assert key_tokens.keep_count(0, 0.15) == 0
    assert key_tokens.keep_count(3, 0.15) == 1  # never empty
    assert key_tokens.keep_count(20, 0.15) == 3
    assert key_tokens.top_words(np.array([0.1, 0.9, 0.2, 0.8, 0.9, 0.0] * 3), 0.15) == [1, 4, 7]
    with pytest.raises(ValueError, match="importance method"):
        key_tokens.score(None, None, [], "attention")
