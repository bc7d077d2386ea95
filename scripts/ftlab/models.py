"""Models: build an embedded Llama (and pretrain it here), resolve external ones, load any of them.

A model directory is a plain `save_pretrained` directory (safetensors weights, config, tokenizer),
so `AutoModelForCausalLM.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)` both work
on it, with or without ftlab. Directories are written to a temp dir and renamed into place, so an
interrupted build never leaves a directory that looks complete.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from . import checkpoints, hub, pretrain, provenance, tables
from .settings import ConfigError
from .settings import from_config as settings_from_config

log = logging.getLogger(__name__)

TRAIN_LOG = "train_log.parquet"


def pick_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def set_threads(n: int) -> None:
    """Torch intra-op threads from the rule's `threads`; interop threads once (torch allows one)."""
    n = max(1, int(n))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass  # already set, or parallel work has started in this process


@dataclass(frozen=True)
class Architecture:
    """`models.<name>.architecture` of the config: the shape of an embedded Llama."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int | None = None
    max_position_embeddings: int = 512

    @classmethod
    def from_config(cls, spec: dict, where: str = "architecture") -> Architecture:
        arch = settings_from_config(cls, spec, where)
        if arch.hidden_size % arch.num_heads:
            raise ConfigError(
                f"{where}.hidden_size: {arch.hidden_size} is not divisible by "
                f"num_heads {arch.num_heads}"
            )
        return arch

    @property
    def mlp_size(self) -> int:
        """The MLP width: given, or 8/3 * hidden rounded to a multiple of 16 (Llama's ratio)."""
        if self.intermediate_size:
            return self.intermediate_size
        return max(16, int(round(8 * self.hidden_size / 3 / 16)) * 16)


def llama_config(arch: Architecture, tokenizer) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.hidden_size,
        intermediate_size=arch.mlp_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_heads,
        head_dim=arch.hidden_size // arch.num_heads,
        max_position_embeddings=arch.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build(
    name: str,
    spec: dict,
    out_dir: str | os.PathLike,
    tokenizer_dir: str | os.PathLike | None,
    tables: list[str],
    threads: int,
) -> str:
    """Build model `name` from its config `spec` into `out_dir`; returns the device used."""
    set_threads(threads)
    if spec["source"] == "embedded":
        if not tokenizer_dir:
            raise ValueError(f"models.{name}: an embedded model needs the pipeline's tokenizer")
        return build_embedded(name, spec, out_dir, tokenizer_dir, tables)
    return build_external(name, spec, out_dir)


def build_embedded(name, spec, out_dir, tokenizer_dir, table_paths) -> str:
    """A Llama of `architecture`, pretrained on `pretrain` (see pretrain.py) or adopted from its
    shipped `checkpoint` (checkpoints.py), saved with its tokenizer and train log."""
    started = provenance.now()
    arch = Architecture.from_config(spec.get("architecture", {}), f"models.{name}.architecture")
    settings = pretrain.Settings.from_config(spec.get("pretrain", {}), f"models.{name}.pretrain")
    seed = int(spec.get("seed", 0))
    if settings.seq_len + 1 > arch.max_position_embeddings:
        raise ValueError(
            f"models.{name}: pretrain.seq_len {settings.seq_len} exceeds "
            f"architecture.max_position_embeddings {arch.max_position_embeddings}"
        )
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    device = pick_device()
    if spec.get("checkpoint"):
        model, train_log = checkpoints.adopt(name, spec, tokenizer_dir, table_paths)
        log.info("models.%s: adopted checkpoint %s (fingerprint matches)", name, spec["checkpoint"])
    else:
        frames = [tables.read(p, "tasks") for p in table_paths]
        texts, stream, mask = pretrain.corpus_tokens(frames, settings, seed, tokenizer)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(llama_config(arch, tokenizer))
        n_params = sum(p.numel() for p in model.parameters())
        log.info("models.%s: %d parameters, corpus %d texts / %d tokens",
                 name, n_params, len(texts), len(stream))  # fmt: skip
        train_log = pretrain.train(model, stream, settings, seed, device=device, mask=mask)
    record = provenance.collect(
        "build_model",
        {"tokenizer": str(tokenizer_dir), "tables": list(table_paths)},
        spec,
        seed=seed,
        device=device,
        started=started,
    )
    with tables.atomic_dir(out_dir) as tmp:
        model.to("cpu").save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tables.write(train_log, tmp / TRAIN_LOG, "train_log", record)
    return device


def build_external(name: str, spec: dict, out_dir: str | os.PathLike) -> str:
    """hf / gguf / openai: resolve an existing model into a model directory (hub.py)."""
    with tables.atomic_dir(out_dir) as tmp:
        hub.resolve(spec, tmp)
    log.info("models.%s: %s model recorded in %s", name, spec["source"], out_dir)
    return "cpu"


def load(model_dir: str | os.PathLike, device: str | None = None, quantization=None):
    """(model in eval mode on `device`, tokenizer) from any model directory; safetensors only.

    bf16 weights on CUDA, float32 on CPU. Padding side is the generator's business.
    `quantization` (a BitsAndBytesConfig, QLoRA) loads the weights quantised onto `device`.
    """
    device = device or pick_device()
    if hub.is_pointer(model_dir):
        model, tokenizer = hub.load_pointer(model_dir, device, quantization)
    else:
        model = AutoModelForCausalLM.from_pretrained(
            model_dir,
            use_safetensors=True,
            trust_remote_code=False,
            dtype=hub.torch_dtype("auto", device),
            **hub.quantized(quantization, device),
        )
        tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    if quantization is None:  # a quantised model is placed by from_pretrained and cannot move
        model = model.to(device)
    return model.eval(), tokenizer
