"""External models: a hub id or local `save_pretrained` directory (`source: hf`), a GGUF file
(`source: gguf`) or a model behind an OpenAI-compatible server (`source: openai`), turned into a
model directory the rest of the pipeline uses like any other.

* hf: the model directory holds `source.json` (name_or_path, revision, dtype, trust_remote_code),
  a pointer, so an 8B model is not copied per experiment; `load` follows it.
* gguf: the file is de-quantised once by transformers (`gguf_file=`), its quantisation config
  cleared, and saved as safetensors with its tokenizer and chat template; downstream stages then
  load plain safetensors, never the GGUF again.
* openai: the model directory holds only `openai.json` (`OpenAISettings`: where the server is,
  which model it serves, the NAME of the environment variable holding the API key, never the key),
  written without contacting the server; `openai_teacher` is the client that reads it.

Weights load as safetensors only; `trust_remote_code` stays off unless the config turns it on.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from .provenance import WORKFLOW_ROOT

log = logging.getLogger(__name__)

POINTER = "source.json"
OPENAI_POINTER = "openai.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str, device: str):
    """`auto` = bf16 on CUDA, float32 on CPU (bf16 greedy decoding differs by batch on CPU)."""
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return DTYPES[name]


def gguf_location(spec: dict) -> tuple[str, str]:
    """(directory, file name) of a GGUF model from `gguf_file` (+ `name_or_path`).

    A relative directory that does not exist from the working directory is looked up in the
    workflow checkout, so a config can name `.venv/...` and still run with `snakemake -d`.
    """
    path = Path(spec["gguf_file"])
    if path.is_absolute() or spec.get("name_or_path") is None:
        return str(path.parent), path.name
    directory = Path(spec["name_or_path"])
    if not directory.is_absolute() and not directory.exists():
        in_checkout = Path(WORKFLOW_ROOT) / directory
        if in_checkout.exists():
            directory = in_checkout
    if not (directory / spec["gguf_file"]).exists():
        raise FileNotFoundError(f"GGUF file {spec['gguf_file']!r} not found in {directory}")
    return str(directory), spec["gguf_file"]


@dataclass(frozen=True)
class OpenAISettings:
    """A model's `source: openai` keys (resources/config.schema.yaml documents each)."""

    base_url: str
    served_model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 6
    backoff_s: float = 1.0  # first retry's wait; doubles per attempt (capped at 60 s)

    @classmethod
    def from_spec(cls, spec: dict) -> OpenAISettings:
        """The openai keys of a model spec (its other keys, for other sources, are not these)."""
        for key in ("base_url", "served_model"):
            if not spec.get(key):
                raise ValueError(f"model with source: openai needs `{key}` (got {spec.get(key)!r})")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in spec.items() if k in names})

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


def write_openai_pointer(spec: dict, out_dir: str | os.PathLike) -> Path:
    """Write `openai.json` (settings, no secret) into a model directory; return its path."""
    settings = OpenAISettings.from_spec(spec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / OPENAI_POINTER
    path.write_text(json.dumps({"source": "openai", **asdict(settings)}, indent=2, sort_keys=True))
    return path


def read_openai_pointer(model_dir: str | os.PathLike) -> OpenAISettings:
    path = Path(model_dir) / OPENAI_POINTER
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable openai.json ({e})") from None
    data.pop("source", None)
    return OpenAISettings.from_spec(data)


def resolve(spec: dict, out_dir: str | os.PathLike) -> None:
    """Fill `out_dir` (an empty temp directory) for an hf, gguf or openai model spec."""
    out_dir = Path(out_dir)
    if spec["source"] == "openai":  # a pointer only: the server is not contacted here
        write_openai_pointer(spec, out_dir)
    elif spec["source"] == "hf":
        pointer = {
            k: spec.get(k) for k in ("name_or_path", "revision", "dtype", "trust_remote_code")
        }
        # Fail here, not three stages later, if the model cannot be loaded at all.
        AutoTokenizer.from_pretrained(
            pointer["name_or_path"],
            revision=pointer["revision"],
            trust_remote_code=pointer["trust_remote_code"],
        )
        (out_dir / POINTER).write_text(json.dumps(pointer, indent=2, sort_keys=True))
        log.info("hf model %s (revision %s) recorded", pointer["name_or_path"], pointer["revision"])
    elif spec["source"] == "gguf":
        directory, name = gguf_location(spec)
        log.info("de-quantising GGUF %s/%s", directory, name)
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(
            directory, gguf_file=name, dtype=torch_dtype(spec.get("dtype", "auto"), "cpu")
        )
        # A GGUF-loaded model carries a quantization config that save_pretrained refuses.
        model.config.quantization_config = None
        if hasattr(model, "hf_quantizer"):
            model.hf_quantizer = None
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
    else:
        raise ValueError(f"hub.resolve: source {spec['source']!r} is not an external model")


def is_pointer(model_dir: str | os.PathLike) -> bool:
    return (Path(model_dir) / POINTER).exists()


def quantized(quantization, device: str) -> dict:
    """from_pretrained arguments that load the weights quantised (a BitsAndBytesConfig: QLoRA's
    4-bit base) straight onto `device`; none without a quantization."""
    if quantization is None:
        return {}
    return {"quantization_config": quantization, "device_map": {"": device}}


def load_pointer(model_dir: str | os.PathLike, device: str, quantization=None):
    """(model, tokenizer) for a model directory that points at a hub id or local directory."""
    p = json.loads((Path(model_dir) / POINTER).read_text())
    kwargs = dict(revision=p["revision"], trust_remote_code=bool(p["trust_remote_code"]))
    tokenizer = AutoTokenizer.from_pretrained(p["name_or_path"], **kwargs)
    model = AutoModelForCausalLM.from_pretrained(
        p["name_or_path"],
        dtype=torch_dtype(p.get("dtype") or "auto", device),
        use_safetensors=True,
        **kwargs,
        **quantized(quantization, device),
    )
    return model, tokenizer
