"""Key-token importance: the word the answer depends on ranks first; batching and order are exact."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from ftlab import importance, prompts

torch.set_num_threads(1)

WORDS = "red blue green cat dog sun moon tree".split()
PROMPT = prompts.cot_prompt("Which colour or thing?")


def tokenizer() -> PreTrainedTokenizerFast:
    corpus = [
        PROMPT + prompts.cot_completion(" ".join(WORDS[i:] + WORDS[:i]), w)
        for i, w in enumerate(WORDS)
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=290,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


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


@pytest.mark.parametrize("method", importance.METHODS)
def test_the_word_the_answer_copies_ranks_first(method):
    tok = tokenizer()
    ex = examples()
    scores = importance.score(CountingLM(len(tok)), tok, ex, method, batch_size=5, progress=False)
    for (_, rationale, answer), s in zip(ex, scores, strict=True):
        words = rationale.split()
        assert len(s) == len(words)
        assert words[int(np.argmax(s))] == answer
        assert importance.top_words(s, 0.15) == [words.index(answer)]


def tiny_llama(tok, seed=0):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("method", importance.METHODS)
def test_scores_do_not_depend_on_batching_and_are_deterministic(method):
    tok = tokenizer()
    model = tiny_llama(tok)
    ex = [
        (PROMPT, "redgreen blue  cat\nsun", "dog"),
        *examples(4, seed=1),
    ]  # a multi-token word, odd spacing
    one = importance.score(model, tok, ex, method, batch_size=1, progress=False)
    many = importance.score(model, tok, ex, method, batch_size=4, progress=False)
    again = importance.score(model, tok, ex, method, batch_size=4, progress=False)
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
    (got,) = importance.score(
        model, tok, [(prompt, rationale, answer)], "leave_one_out", progress=False
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_selection_keeps_order_and_count():
    assert importance.keep_count(0, 0.15) == 0
    assert importance.keep_count(3, 0.15) == 1  # never empty
    assert importance.keep_count(20, 0.15) == 3
    assert importance.top_words(np.array([0.1, 0.9, 0.2, 0.8, 0.9, 0.0] * 3), 0.15) == [1, 4, 7]
    with pytest.raises(ValueError, match="importance method"):
        importance.score(None, None, [], "attention")
