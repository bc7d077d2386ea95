"""Teacher backends: fingerprints track what decides outputs; the transformers teacher is greedy."""

import sys
import types

import pytest
import torch
from factories import bpe_tokenizer, save_model_dir, tiny_llama

from ftlab import generate, rationales, teachers

torch.set_num_threads(1)

CORPUS = [
    "Question: What is 3 + 4?\nReasoning: 3 + 4 = 7\nAnswer: 7",
    "Question: 2 cats?\nAnswer: 8",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tokenizer = bpe_tokenizer(CORPUS, vocab_size=280)
    model = tiny_llama(tokenizer, layers=1, heads=2, max_positions=128)
    return save_model_dir(model, tokenizer, tmp_path_factory.mktemp("teacher"))


def test_fingerprint_follows_weights_and_tokenizer_only(model_dir, tmp_path):
    base = teachers.fingerprint(model_dir)
    assert base == teachers.fingerprint(model_dir)
    (model_dir / "provenance.json").write_text("{}")  # records, logs: not what the model is
    assert teachers.fingerprint(model_dir) == base
    weights = next(model_dir.glob("*.safetensors"))
    original = weights.read_bytes()
    try:
        weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        assert teachers.fingerprint(model_dir) != base
    finally:
        weights.write_bytes(original)
    pointer = tmp_path / "hub"  # no weights here (e.g. a recorded hub id): the whole content counts
    pointer.mkdir()
    (pointer / "resolved.json").write_text('{"id": "a", "revision": "1"}')
    first = teachers.fingerprint(pointer)
    (pointer / "resolved.json").write_text('{"id": "a", "revision": "2"}')
    assert teachers.fingerprint(pointer) != first


def test_transformers_teacher_is_lazy_and_matches_greedy(model_dir):
    from ftlab import models as ftmodels

    teacher = rationales.load_teacher(model_dir, batch_size=2, device="cpu")
    assert isinstance(teacher, teachers.TransformersTeacher) and teacher._loaded is None
    prompts = ["Question: What is 3 + 4?\nReasoning:", "Question: 2 cats?\nReasoning:", "Question:"]
    decoding = teachers.Decoding(max_new_tokens=6)
    got = teacher.complete(prompts, decoding)
    model, tok = ftmodels.load(model_dir, device="cpu")
    want = generate.greedy(model, tok, prompts, max_new_tokens=6, progress=False)
    assert [c.text for c in got] == [g.text for g in want]
    assert [c.completion_tokens for c in got] == [g.generated_tokens for g in want]
    assert all(c.prompt_tokens > 0 for c in got)


def test_decoding_key_ignores_seed_when_greedy():
    assert teachers.Decoding(seed=1).key() == teachers.Decoding(seed=2).key()
    assert (
        teachers.Decoding(do_sample=True, seed=1).key()
        != teachers.Decoding(do_sample=True, seed=2).key()
    )


def test_openai_json_selects_the_openai_backend(tmp_path, monkeypatch):
    (tmp_path / "openai.json").write_text('{"base_url": "http://localhost:8000/v1", "model": "m"}')
    fake = types.ModuleType("ftlab.openai_teacher")
    fake.OpenAITeacher = lambda model_dir: ("openai", str(model_dir))
    monkeypatch.setitem(sys.modules, "ftlab.openai_teacher", fake)
    import ftlab

    monkeypatch.setattr(ftlab, "openai_teacher", fake, raising=False)
    assert rationales.load_teacher(tmp_path) == ("openai", str(tmp_path))
