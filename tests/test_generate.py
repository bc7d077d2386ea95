"""Batched generation gives exactly the per-example greedy output, in input order, and stops right."""

import pytest
import torch
from factories import tiny_model, tiny_sliding_window, tiny_tokenizer
from transformers import GenerationConfig

from ftlab import generate

torch.set_num_threads(1)

PROMPTS = [
    "Question: What is 1 + 2?\nAnswer:",
    "Question: How many legs do 3 dogs and 2 birds have?\nReasoning:",
    "Q",
    "Question: What is 9 + 8 + 7 + 6 + 5 + 4?\nReasoning:",
    "Answer:",
    "Question: All cats are animals. Is a cat an animal?\n(A) yes\n(B) no\nAnswer:",
    "12 + 4 =",
    "Question: Reasoning: Answer: Question: Reasoning: Answer:",
    "legs",
    "Question: What is 5 + 5?\nReasoning:",
]
CHAIN = "Question: What is 9 + 8 + 7?\nReasoning: 9 + 8 = 17\n17 + 7 = 24\nAnswer:"


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok)


def reference(model, tok, prompt, max_new_tokens):
    """Per-example greedy decoding with transformers' own `generate` (no padding at all)."""
    ids = tok(prompt, return_tensors="pt")
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    out = model.generate(**ids, generation_config=config)[0, ids["input_ids"].shape[1] :].tolist()
    return out


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batched_equals_per_example_generate(model, tok, batch_size):
    got = generate.greedy(
        model, tok, PROMPTS, max_new_tokens=24, batch_size=batch_size, progress=False
    )
    lengths, finished = set(), set()
    for prompt, g in zip(PROMPTS, got, strict=True):
        ref = reference(model, tok, prompt, 24)
        assert g.generated_tokens == len(ref)
        assert g.finished == (ref[-1] == tok.eos_token_id)
        assert g.text == tok.decode([t for t in ref if t != tok.eos_token_id])
        assert g.prompt_tokens == len(tok(prompt)["input_ids"])
        lengths.add(g.generated_tokens)
        finished.add(g.finished)
    assert len(lengths) > 2 and finished == {True, False}, (
        "fixture should stop rows at varied steps"
    )


@pytest.mark.parametrize("batch_size", [2, 16])
def test_shared_prefixes_give_the_same_outputs(model, tok, batch_size):
    """Cuts of a longer text (and unrelated prompts) reuse its KV cache: outputs are unchanged."""
    whole = "Question: What is 9 + 8 + 7?\nReasoning: 9 + 8 = 17\n17 + 7 = 24\nAnswer:"
    cuts = [whole[:n] for n in (10, 30, 45, 52, 60, len(whole))] + [whole + " 2", "legs", "Q"]
    shared = [whole] * 6 + [whole, "Answer: 5", "Q"]  # a trunk longer, shorter, equal, unrelated
    plain = generate.greedy(model, tok, cuts, 16, batch_size=batch_size, progress=False)
    reused = generate.greedy(
        model, tok, cuts, 16, batch_size=batch_size, progress=False, shared=shared
    )
    assert reused == plain
    assert [g.text for g in plain] == [
        tok.decode([t for t in reference(model, tok, c, 16) if t != tok.eos_token_id]) for c in cuts
    ]
    assert len({g.generated_tokens for g in plain}) > 1


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_a_common_instruction_runs_once_with_the_same_outputs(model, tok, batch_size, monkeypatch):
    instruction = "Answer the question. All cats are animals. Reasoning: Answer: "
    prompts_ = [instruction + p for p in PROMPTS]
    trunk_runs = []
    run_trunks = generate._shared_prefixes
    monkeypatch.setattr(generate, "_shared_prefixes",
                        lambda m, trunks, *a: trunk_runs.append(trunks) or run_trunks(m, trunks, *a))  # fmt: skip
    got = generate.greedy(model, tok, prompts_, 24, batch_size=batch_size, progress=False)
    common = tok(instruction)["input_ids"][:-1]  # its last token may merge with the prompt's
    assert len(trunk_runs) == 1 and trunk_runs[0][0][: len(common)] == common
    for prompt, g in zip(prompts_, got, strict=True):
        ref = reference(model, tok, prompt, 24)
        assert g.text == tok.decode([t for t in ref if t != tok.eos_token_id])
        assert g.generated_tokens == len(ref)


def test_groups_split_where_padding_costs_more_than_a_call(monkeypatch):
    monkeypatch.setattr(generate, "CALL_COST", 10)
    assert generate._groups([30, 29, 28, 3, 2, 2]) == [range(0, 3), range(3, 6)]
    assert generate._groups([5, 4, 4, 3]) == [range(0, 4)]  # padding 4 < one more call
    monkeypatch.setattr(generate, "CALL_COST", 0)
    assert len(generate._groups([3, 2, 1])) == 3


@pytest.mark.parametrize("call_cost", [0, 10**6])
def test_length_groups_give_the_same_outputs(model, tok, monkeypatch, call_cost):
    """Prompts prefilled one length group at a time (0: a group per length; huge: one group)
    and stacked into one cache decode as when they ran as one padded batch."""
    whole = CHAIN
    cuts = [whole[:n] for n in (10, 30, 45, 60, len(whole))] + ["legs", "Q"]
    monkeypatch.setattr(generate, "CALL_COST", call_cost)
    plain = generate.greedy(model, tok, PROMPTS, 16, batch_size=8, progress=False)
    reused = generate.greedy(model, tok, cuts, 16, batch_size=8, progress=False,
                             shared=[whole] * 5 + ["legs", "Q"])  # fmt: skip
    for prompt, g in zip(PROMPTS + cuts, plain + reused, strict=True):
        assert g.text == tok.decode(
            [t for t in reference(model, tok, prompt, 16) if t != tok.eos_token_id]
        )


def test_kept_caches_run_each_shared_text_once(model, tok, monkeypatch):
    whole = CHAIN
    cuts = [whole[:n] for n in (30, 45, 60)]
    trunk_runs, prefill = [], generate._prefill

    def counting(m, rows, pad_id, prefixes=None, room=0):
        if prefixes is None:  # a trunk (prompts come with their prefix caches)
            trunk_runs.append(rows)
        return prefill(m, rows, pad_id, prefixes, room)

    monkeypatch.setattr(generate, "_prefill", counting)
    kept: dict = {}
    first = generate.greedy(model, tok, cuts, 8, progress=False, shared=[whole] * 3, kept=kept)
    again = generate.greedy(
        model, tok, cuts[::-1], 8, progress=False, shared=[whole] * 3, kept=kept
    )
    assert len(trunk_runs) == 1 and list(kept) == [tuple(tok(whole)["input_ids"])]
    assert again == first[::-1]
    assert first == generate.greedy(model, tok, cuts, 8, progress=False, shared=[whole] * 3)


def test_eager_attention_gives_the_same_outputs(tok):
    """Decoding steps pass eager attention the same additive mask as SDPA (`step_mask`)."""
    eager = tiny_model(tok)
    eager.set_attn_implementation("eager")
    got = generate.greedy(eager, tok, PROMPTS, 16, batch_size=4, progress=False)
    for prompt, g in zip(PROMPTS, got, strict=True):
        ref = reference(eager, tok, prompt, 16)
        assert g.text == tok.decode([t for t in ref if t != tok.eos_token_id])
        assert g.generated_tokens == len(ref)


def test_sliding_window_layers_decode_in_one_batch_with_the_same_outputs(tok):
    """A cache that cannot be windowed (sliding-window layers) runs as one batch, its own masks."""
    model = tiny_sliding_window(tok)
    assert not generate._can_share(model)
    got = generate.greedy(model, tok, PROMPTS, 12, batch_size=4, progress=False)
    for prompt, g in zip(PROMPTS, got, strict=True):
        ref = reference(model, tok, prompt, 12)
        assert g.text == tok.decode([t for t in ref if t != tok.eos_token_id])


def test_shared_needs_one_text_per_prompt(model, tok):
    with pytest.raises(ValueError, match="shared has 1 texts for 2 prompts"):
        generate.greedy(model, tok, ["a", "b"], 4, progress=False, shared=["a"])


def test_results_in_input_order(model, tok):
    forward = generate.greedy(model, tok, PROMPTS, max_new_tokens=12, batch_size=4, progress=False)
    backward = generate.greedy(
        model, tok, PROMPTS[::-1], max_new_tokens=12, batch_size=4, progress=False
    )
    assert forward == backward[::-1]
    assert [g.prompt_tokens for g in forward] == [len(tok(p)["input_ids"]) for p in PROMPTS]


def test_stop_at_newline_cuts_at_first_newline(model, tok):
    full = generate.greedy(model, tok, PROMPTS, max_new_tokens=24, batch_size=4, progress=False)
    cut = generate.greedy(
        model, tok, PROMPTS, max_new_tokens=24, batch_size=4, stop_at_newline=True, progress=False
    )
    assert any("\n" in g.text for g in full), "fixture should produce newlines"
    for f, c in zip(full, cut, strict=True):
        assert "\n" not in c.text
        if "\n" in f.text:
            assert c.text == f.text.split("\n", 1)[0]
            assert c.finished and c.generated_tokens < f.generated_tokens
        else:
            assert c == f


def test_sampling_is_seeded_and_reproducible(model, tok):
    def sample(seed):
        return generate.greedy(
            model,
            tok,
            PROMPTS,
            max_new_tokens=16,
            batch_size=4,
            do_sample=True,
            seed=seed,
            temperature=1.5,
            progress=False,
        )

    a, b, c = sample(1), sample(1), sample(2)
    assert a == b
    assert a != c
    greedy = generate.greedy(model, tok, PROMPTS, max_new_tokens=16, batch_size=4, progress=False)
    assert a != greedy


def test_sampling_without_seed_is_refused(model, tok):
    with pytest.raises(ValueError, match="seed"):
        generate.greedy(model, tok, PROMPTS, max_new_tokens=4, do_sample=True, progress=False)


def test_max_new_tokens_bounds_unfinished_generations(model, tok):
    got = generate.greedy(model, tok, PROMPTS, max_new_tokens=3, batch_size=8, progress=False)
    assert all(g.generated_tokens <= 3 for g in got)
    assert all(g.finished or g.generated_tokens == 3 for g in got)
    assert generate.greedy(model, tok, [], max_new_tokens=3, progress=False) == []
