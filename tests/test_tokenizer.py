"""The shared BPE tokenizer: round trips, digits one by one, distinct EOS and PAD, deterministic."""

import pytest
from factories import tiny_tasks
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ftlab import tokenizer


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return tokenizer.train([tiny_tasks()], tmp_path_factory.mktemp("tok") / "tokenizer", 320)


def test_saved_tokenizer_loads_with_eos_and_pad(tok_dir):
    tok = AutoTokenizer.from_pretrained(tok_dir)
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert tok.eos_token == "<|eos|>" and tok.pad_token == "<|pad|>"
    assert tok.eos_token_id != tok.pad_token_id
    assert 258 < len(tok) <= 320  # 256 bytes + 2 specials + merges, capped at vocab_size


def test_round_trips_text_with_unseen_characters(tok_dir):
    tok = AutoTokenizer.from_pretrained(tok_dir)
    text = "Question: What is 12 + 345?\nReasoning: 12 + 345 = 357\nAnswer: 357 ünïcode ✓"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_digits_are_single_tokens(tok_dir):
    tok = AutoTokenizer.from_pretrained(tok_dir)
    pieces = [tok.decode([i]) for i in tok("x 2024 + 77", add_special_tokens=False)["input_ids"]]
    digits = [p.strip() for p in pieces if any(c.isdigit() for c in p)]
    assert digits == ["2", "0", "2", "4", "7", "7"]


def test_training_is_deterministic(tmp_path):
    a = tokenizer.train([tiny_tasks()], tmp_path / "a", 320)
    b = tokenizer.train([tiny_tasks()], tmp_path / "b", 320)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
