"""Label scoring: restricted log-likelihood over a label set (batched = one pass per label), the
k-shot layout (plain and chat template), ROUGE-L / exact match, chance levels, one model on a task."""

import math

import numpy as np
import pytest
import torch
from factories import task_table, tiny_llama, tiny_model, tiny_sliding_window, tiny_tokenizer

from ftlab import generate, generation_metrics, kshot, label_scoring, prompts, tables
from ftlab.settings import ConfigError

# A small chat template: every turn tagged with its role, the assistant turn opened on request.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def chat_tok():
    tok = tiny_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="module")
def model(tok):
    return tiny_llama(tok, seed=3)


def loop_logprobs(model, tokenizer, text, labels, eos=True):
    """The reference: one unpadded forward pass per label, log-probabilities summed by hand."""
    prompt = tokenizer(text)["input_ids"]
    out = []
    for label in labels:
        cont = label_scoring.continuation_ids(
            tokenizer, text, prompts.direct_completion(label), eos
        )
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt + cont])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        out.append(sum(logp[len(prompt) - 1 + j, t].item() for j, t in enumerate(cont)))
    return np.array(out)


TEXTS = [
    "Question: What is 3 + 4?\nAnswer:",
    "Question: All birds fly. Is a robin a bird?\n(A) yes\n(B) no\nAnswer:",
    "Question: How many legs do 2 cats have?\nAnswer:",
    "Question: x\nAnswer:",
    "Question: What is 3 + 4 + 5?\nReasoning: 3 + 4 = 7, 7 + 5 = 12.\nAnswer:",
]
LABELS = [
    ["7", "12", "8 cats"],
    ["A", "B"],
    ["8", "eight legs in all", "4"],
    ["yes", "no", "maybe so", "a"],
    ["12", "13"],
]


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_batched_label_logprobs_equal_a_per_label_loop(model, tok, batch_size):
    got = label_scoring.label_logprobs(model, tok, TEXTS, LABELS, batch_size=batch_size)
    for text, labels, values in zip(TEXTS, LABELS, got, strict=True):
        ref = loop_logprobs(model, tok, text, labels)
        np.testing.assert_allclose(values, ref, atol=1e-4)
        assert int(np.argmax(values)) == int(np.argmax(ref))  # the label a loop would pick


def test_labels_without_eos_and_multi_token_labels(model, tok):
    got = label_scoring.label_logprobs(model, tok, TEXTS, LABELS, batch_size=3, eos=False)
    for text, labels, values in zip(TEXTS, LABELS, got, strict=True):
        np.testing.assert_allclose(values, loop_logprobs(model, tok, text, labels, eos=False),
                                   atol=1e-4)  # fmt: skip
    # EOS after a label costs log-probability: never higher with it than without
    with_eos = label_scoring.label_logprobs(model, tok, TEXTS, LABELS, batch_size=3)
    assert all((w <= g + 1e-6).all() for w, g in zip(with_eos, got, strict=True))


def _forbid(monkeypatch, name):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"{name} should not run here")

    monkeypatch.setattr(label_scoring, name, forbidden)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_labels_of_a_prompt_score_as_one_tree_segment(tok, monkeypatch, attention):
    """SDPA / eager attention over full-attention layers: every prompt's labels in one segment
    under a 4D mask (`_tree`), never a copy of the prompt's cache per label (`_replicated`)."""
    model = tiny_llama(tok, seed=3)
    model.set_attn_implementation(attention)
    _forbid(monkeypatch, "_replicated")
    got = label_scoring.label_logprobs(model, tok, TEXTS, LABELS, batch_size=3)
    for text, labels, values in zip(TEXTS, LABELS, got, strict=True):
        np.testing.assert_allclose(values, loop_logprobs(model, tok, text, labels), atol=1e-4)


def test_a_bf16_model_takes_the_tree_mask_in_its_own_dtype(tok, monkeypatch):
    model = tiny_llama(tok, seed=3).to(torch.bfloat16)
    _forbid(monkeypatch, "_replicated")
    got = label_scoring.label_logprobs(model, tok, TEXTS, LABELS, batch_size=3)
    for text, labels, values in zip(TEXTS, LABELS, got, strict=True):
        np.testing.assert_allclose(values, loop_logprobs(model, tok, text, labels), atol=0.05)


def test_sliding_window_layers_copy_the_prompt_cache_per_label(tok, monkeypatch):
    """Layers that need their own masks (sliding window) take the 2D mask: `_replicated`."""
    model = tiny_sliding_window(tok)
    _forbid(monkeypatch, "_tree")
    got = label_scoring.label_logprobs(model, tok, TEXTS, LABELS, batch_size=3)
    for text, labels, values in zip(TEXTS, LABELS, got, strict=True):
        np.testing.assert_allclose(values, loop_logprobs(model, tok, text, labels), atol=1e-4)


def test_restricted_scoring_on_a_chat_template_model(chat_tok):
    model = tiny_llama(chat_tok, seed=5)
    demos = [("What is 1 + 1?", None, "2"), ("What is 2 + 2?", None, "4")]
    texts = [
        kshot.render(chat_tok, "What is 3 + 4?", None, demos),
        kshot.render(chat_tok, "Is a robin a bird?", ["yes", "no"], []),
    ]
    # k-shot: every demonstration an earlier exchange, the assistant turn opened with "Answer:"
    assert texts[0] == (
        f"<|system|>{prompts.SYSTEM}\n<|user|>Question: What is 1 + 1?\n<|assistant|>Answer: 2\n"
        "<|user|>Question: What is 2 + 2?\n<|assistant|>Answer: 4\n"
        "<|user|>Question: What is 3 + 4?\n<|assistant|>Answer:"
    )
    # zero-shot: exactly what evaluate shows the model (prompts.render)
    assert texts[1] == prompts.render(chat_tok, prompts.direct_prompt("Is a robin a bird?",
                                                                      ["yes", "no"]))  # fmt: skip
    labels = [["7", "12", "5"], ["A", "B"]]
    got = label_scoring.label_logprobs(model, chat_tok, texts, labels, batch_size=2)
    for text, labs, values in zip(texts, labels, got, strict=True):
        np.testing.assert_allclose(values, loop_logprobs(model, chat_tok, text, labs), atol=1e-4)


def classification_table(n_test=6, n_train=8):
    rows = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            rows.append({
                "example_id": f"{split}{i}", "task": "pets", "split": split,
                "task_type": "classification", "question": f"Is pet {i} of {split} a cat?",
                "answer": ["Yes", "No"][i % 2],
            })  # fmt: skip
    rows.append({"example_id": "train-m", "task": "pets", "split": "train",
                 "task_type": "classification", "question": "Is it?", "answer": "Maybe"})  # fmt: skip
    return task_table(rows)


def test_score_picks_the_argmax_label_of_the_table_label_set(chat_tok):
    model = tiny_llama(chat_tok, seed=7)
    table = classification_table()
    s = label_scoring.Settings.from_config({"kind": "classification", "k": 2, "seed": 1})
    frame = label_scoring.score(model, chat_tok, table, "student", s)
    tables.to_arrow(frame, "label_scores")  # fits its schema
    assert label_scoring.label_set(table) == ["Maybe", "No", "Yes"]  # every answer, all splits
    assert list(frame["setting"].unique()) == ["zero_shot", "k_shot"]
    for r in frame.itertuples(index=False):
        assert list(r.labels) == ["Maybe", "No", "Yes"]
        ref = loop_logprobs(model, chat_tok, r.prompt, list(r.labels))
        np.testing.assert_allclose(r.label_logprobs, ref, atol=1e-4)
        assert r.prediction == r.labels[int(np.argmax(ref))]
        assert r.correct == (r.prediction == r.answer) and r.score == float(r.correct)
        assert math.isnan(r.rouge_l)
        assert len(r.demo_ids) == r.shots == (0 if r.setting == "zero_shot" else 2)
        assert not set(r.demo_ids) & set(table.loc[table.split == "test", "example_id"])
    # the same demonstrations for every model: prepared once, independent of the model
    again = label_scoring.score(tiny_llama(chat_tok, seed=8), chat_tok, table, "other", s)
    assert [list(d) for d in again["demo_ids"]] == [list(d) for d in frame["demo_ids"]]


def test_choice_tasks_score_the_letters():
    assert label_scoring.row_labels("choice", ["dog", "duck", "cat"], ["x"]) == ["A", "B", "C"]
    assert label_scoring.row_labels("classification", ["yes", "no"], ["x"]) == ["yes", "no"]
    assert label_scoring.row_labels("short_answer", None, ["son", "wife"]) == ["son", "wife"]


def test_demonstrations_are_seeded_per_example_and_never_the_question_itself():
    pool = kshot.train_pool(classification_table(n_train=10))
    a = kshot.demonstrations(pool, 3, 0, "q1")
    assert list(a["example_id"]) == list(kshot.demonstrations(pool, 3, 0, "q1")["example_id"])
    assert list(a["example_id"]) != list(kshot.demonstrations(pool, 3, 0, "q2")["example_id"])
    for key in pool["example_id"]:
        drawn = kshot.demonstrations(pool, 4, 0, key, exclude=key)
        assert key not in set(drawn["example_id"]) and len(set(drawn["example_id"])) == 4
    with pytest.raises(ValueError, match="only 11"):
        kshot.demonstrations(pool, 12, 0, "q")


def test_plain_fewshot_layout():
    text = kshot.fewshot_text("Q3?", None, [("Q1?", None, "a"), ("Q2?", ["x", "y"], "B")])
    assert text == (
        "Question: Q1?\nAnswer: a\n\nQuestion: Q2?\n(A) x\n(B) y\nAnswer: B\n\nQuestion: Q3?\nAnswer:"
    )
    assert kshot.render(None, "Q3?", None, []) == prompts.direct_prompt("Q3?")


def test_rouge_l_exact_match_and_chance():
    assert generation_metrics.rouge_l("the cat sat", "the cat sat") == pytest.approx(1.0)
    assert generation_metrics.rouge_l("sat the cat", "the cat sat") == pytest.approx(2 / 3)
    assert generation_metrics.rouge_l("", "the cat") == 0.0
    # characters: partial credit inside one word, where words give none
    assert generation_metrics.rouge_l("olleh", "olleh", "characters") == pytest.approx(1.0)
    assert 0 < generation_metrics.rouge_l("ollhe", "olleh", "characters") < 1
    assert generation_metrics.rouge_l("ollhe", "olleh", "words") == 0.0
    assert generation_metrics.exact_match(" The Cat ", "the cat")
    assert not generation_metrics.exact_match("the dog", "the cat")
    majority = generation_metrics.chance(["Yes", "No", "yes", "No", "No"], "accuracy")
    assert majority == pytest.approx(0.6)
    gold = ["alpha beta", "gamma delta", "alpha gamma", "beta beta"]
    got = generation_metrics.chance(gold, "rouge_l", seed=0)
    assert 0 <= got < 1 and got == generation_metrics.chance(gold, "rouge_l", seed=0)
    # no example pairs itself
    assert generation_metrics.chance(["a", "b", "c"], "exact_match") == 0.0
    assert math.isnan(generation_metrics.chance(["a"], "accuracy"))


def test_generation_scores_the_greedy_answer_line(tok):
    model = tiny_model(tok, seed=2)
    rows = [{"example_id": f"{sp}{i}", "task": "sums", "split": sp, "task_type": "generation",
             "question": f"What is {i} + {i + 3}?", "answer": str(2 * i + 3)}
            for sp in ("train", "test") for i in range(5)]  # fmt: skip
    table = task_table(rows)
    s = label_scoring.Settings.from_config(
        {"kind": "generation", "k": 1, "max_new_tokens": 6, "rouge_tokens": "characters"}
    )
    frame = label_scoring.score(model, tok, table, "m", s)
    tables.to_arrow(frame, "label_scores")
    for _, part in frame.groupby("setting"):
        gens = generate.greedy(model, tok, part["prompt"].tolist(), max_new_tokens=6,
                               stop_at_newline=True, progress=False)  # fmt: skip
        assert part["prediction"].tolist() == [prompts.split_direct(g.text) for g in gens]
    for r in frame.itertuples(index=False):
        rouge = generation_metrics.rouge_l(r.prediction, r.answer, "characters")
        assert r.score == r.rouge_l == rouge
        assert r.correct == generation_metrics.exact_match(r.prediction, r.answer)
        assert list(r.labels) == [] and list(r.label_logprobs) == []


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="kind"):
        label_scoring.Settings.from_config({"kind": "regression"})
    with pytest.raises(ConfigError, match="eval_settings"):
        label_scoring.Settings.from_config({"eval_settings": ["few_shot"]})
    with pytest.raises(ConfigError, match="unknown key"):
        label_scoring.Settings.from_config({"shots": 3})


def test_a_prompt_longer_than_the_model_is_named(tok):
    model = tiny_llama(tok, max_positions=16)
    with pytest.raises(ValueError, match="positions"):
        label_scoring.label_logprobs(model, tok, [TEXTS[4]], [["12"]])


def test_path_names_run_and_task():
    run = "generalization/plain/syllogism/seed0"
    assert label_scoring.path(run, "spell") == f"results/label_scores/{run}/spell.parquet"
