"""Teacher backends: whatever writes rationales, behind one small interface.

A teacher has a `fingerprint` (what it *is*: changes whenever its outputs could change) and
`complete(prompts, decoding)`. The rationale cache is keyed by the fingerprint, so swapping the
weights behind a model directory can never serve stale generations. The backends: local
transformers here, an OpenAI-compatible server in openai_teacher.py (which builds on this module,
so this one never imports it); `rationales.load_teacher` picks one by what the model directory
holds.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from ftlab import provenance

log = logging.getLogger(__name__)

# Files whose bytes decide a transformers model's outputs (weights, shape, tokenizer).
FINGERPRINT_PATTERNS = (
    "*.safetensors",
    "*.bin",
    "*.gguf",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
)


@dataclass(frozen=True)
class Decoding:
    """How a teacher decodes; part of every cache key."""

    max_new_tokens: int = 160
    do_sample: bool = False
    temperature: float = 1.0
    seed: int = 0

    def key(self) -> dict:
        # Greedy decoding does not depend on seed or temperature: keep them out of its key.
        d = asdict(self)
        if not self.do_sample:
            d.pop("seed"), d.pop("temperature")
        return d


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


class Teacher(Protocol):
    fingerprint: str

    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]: ...


def fingerprint(model_dir: str | Path) -> str:
    """sha256 of the files that decide a model's outputs (all files if none is recognised)."""
    model_dir = Path(model_dir)
    files = sorted({f for pat in FINGERPRINT_PATTERNS for f in model_dir.rglob(pat) if f.is_file()})
    if not files:  # e.g. a directory that records a hub id + revision: its content is the identity
        return provenance.sha256_path(model_dir)
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(model_dir).as_posix().encode() + b"\0")
        h.update(provenance.sha256_file(f).encode() + b"\n")
    return h.hexdigest()


class TransformersTeacher:
    """A local model through `generate.greedy`; loaded only when something is not cached."""

    def __init__(self, model_dir: str | Path, batch_size: int = 64, device: str | None = None):
        self.model_dir = str(model_dir)
        self.batch_size = batch_size
        self.device = device
        self.fingerprint = fingerprint(model_dir)
        self._loaded = None

    def _model(self):
        if self._loaded is None:
            from ftlab import models

            self._loaded = models.load(self.model_dir, device=self.device)
            self.device = str(self._loaded[0].device)
            log.info("loaded teacher %s on %s", self.model_dir, self.device)
        return self._loaded

    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        from ftlab import generate

        model, tokenizer = self._model()
        out = generate.greedy(
            model,
            tokenizer,
            list(prompts),
            max_new_tokens=decoding.max_new_tokens,
            batch_size=self.batch_size,
            do_sample=decoding.do_sample,
            seed=decoding.seed,
            temperature=decoding.temperature,
            progress=False,
        )
        return [Completion(g.text, g.prompt_tokens, g.generated_tokens) for g in out]
