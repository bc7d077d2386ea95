"""Teacher rationales for a task's questions, through a crash-safe per-prompt cache.

Generation is the expensive step of every distillation-style study, so finished generations must
outlive the job that made them: a crash, a `kill -9`, a config change elsewhere or another study
asking for the same questions reuses them. The cache is not a Snakemake output (Snakemake deletes
the outputs of failed jobs); it is an append-only JSONL file per task under
`results/cache/rationales/{teacher}/`, one line per generation keyed by
sha256(teacher fingerprint, decoding, prompt), flushed and fsynced after every batch. A torn last
line (the writer killed mid-write) is ignored and cut off before the next append. Lookups read
every file in the directory, so any job's generations serve every other job of the same teacher;
writes go only to the job's own file, so parallel jobs never interleave lines.

Greedy decoding (the default) makes a resumed run equal to an uninterrupted one. Sampled
generations depend on which prompts share a batch, so with `do_sample` a resumed run is a valid
sample but not the same one.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ftlab import answers, cells, prompts, provenance, tables, teachers
from ftlab.settings import ConfigError
from ftlab.settings import from_config as settings_from_config

log = logging.getLogger(__name__)

FILTERS = ("correct", "all")


@dataclass(frozen=True)
class Settings:
    """The `rationales:` config section."""

    batch_size: int = 64
    max_new_tokens: int = 160
    do_sample: bool = False
    temperature: float = 1.0
    seed: int = 0
    filter: str = "correct"
    splits: tuple[str, ...] = ("train", "validation")
    limit: int | None = None

    @classmethod
    def from_config(cls, cfg: dict, where: str = "rationales") -> Settings:
        s = settings_from_config(cls, cfg, where)
        if s.filter not in FILTERS:
            raise ConfigError(f"{where}.filter: {s.filter!r} is not one of {FILTERS}")
        return s

    @property
    def decoding(self) -> teachers.Decoding:
        return teachers.Decoding(self.max_new_tokens, self.do_sample, self.temperature, self.seed)


OPENAI_BACKEND = "ftlab.openai_teacher"  # hashed per teacher: rules/inputs/rationales.smk


def load_teacher(
    model_dir: str | Path, batch_size: int = 64, device: str | None = None
) -> teachers.Teacher:
    """The teacher behind a model directory: `openai.json` (hub.write_openai_pointer) -> an
    OpenAI-compatible server, else local transformers.

    The server backend is imported by name, not statically: the code hash of generate_rationales
    includes it only for teachers whose source is openai (rules/inputs/rationales.smk), so an
    HTTP-retry tweak reruns nothing that a local teacher produced.
    """
    if (Path(model_dir) / "openai.json").exists():
        openai_teacher = importlib.import_module(OPENAI_BACKEND)
        return openai_teacher.OpenAITeacher(model_dir)
    return teachers.TransformersTeacher(model_dir, batch_size=batch_size, device=device)


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def cache_key(fingerprint: str, decoding: teachers.Decoding, prompt: str) -> str:
    blob = provenance.stable_json(
        {"teacher": fingerprint, "decoding": decoding.key(), "prompt": prompt}
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    """Append-only JSONL generations of one teacher: reads the whole directory, writes one file."""

    def __init__(self, directory: str | Path, name: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{name}.jsonl"
        self._repair(self.path)
        self.entries: dict[str, teachers.Completion] = {}
        for f in sorted(self.directory.glob("*.jsonl")):
            self._load(f)

    @staticmethod
    def _repair(path: Path) -> None:
        """Cut a torn last line (no trailing newline), so the next append starts a fresh line."""
        if not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        log.warning("%s: cutting a torn last line (%d bytes)", path, len(data) - keep)
        with open(path, "r+b") as f:
            f.truncate(keep)

    def _load(self, path: Path) -> None:
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                    self.entries[rec["key"]] = teachers.Completion(
                        rec["text"], rec["prompt_tokens"], rec["completion_tokens"]
                    )
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: unreadable cache line ignored", path, n)

    def get(self, key: str) -> teachers.Completion | None:
        return self.entries.get(key)

    def put(self, items: list[tuple[str, teachers.Completion]]) -> None:
        """Append a batch durably (one write, flush, fsync)."""
        lines = "".join(
            json.dumps(
                {
                    "key": key,
                    "text": c.text,
                    "prompt_tokens": c.prompt_tokens,
                    "completion_tokens": c.completion_tokens,
                },
                ensure_ascii=False,
            )
            + "\n"
            for key, c in items
        )
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())
        self.entries.update(items)


def complete_cached(
    teacher: teachers.Teacher,
    prompt_list: list[str],
    decoding: teachers.Decoding,
    cache: Cache,
    batch_size: int,
    progress: bool = True,
) -> list[teachers.Completion]:
    """Completions for every prompt; only the ones missing from the cache reach the teacher."""
    keys = [cache_key(teacher.fingerprint, decoding, p) for p in prompt_list]
    todo = sorted(
        {k: p for k, p in zip(keys, prompt_list, strict=True) if cache.get(k) is None}.items(),
        key=lambda kp: len(kp[1]),
    )  # similar lengths share a batch: less padding
    log.info(
        "%d prompts: %d cached, %d to generate",
        len(set(keys)),
        len(set(keys)) - len(todo),
        len(todo),
    )
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    for batch in tqdm(batches, desc="rationales", unit="batch", disable=not progress):
        out = teacher.complete([p for _, p in batch], decoding)
        if len(out) != len(batch):
            raise RuntimeError(f"teacher returned {len(out)} completions for {len(batch)} prompts")
        cache.put([(k, c) for (k, _), c in zip(batch, out, strict=True)])
    return [cache.get(k) for k in keys]


def select_questions(table: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The questions of the configured splits (the first `limit` of each, if set)."""
    rows = table[table["split"].isin(settings.splits)]
    if settings.limit is not None:
        rows = rows.groupby("split", sort=False).head(settings.limit)
    return rows.reset_index(drop=True)


def generate(
    table: pd.DataFrame,
    teacher: teachers.Teacher,
    teacher_name: str,
    settings: Settings,
    cache: Cache,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per question of `settings.splits` (schema "rationales"), `kept` per the filter."""
    rows = select_questions(table, settings)
    prompt_list = [
        prompts.cot_prompt(q, cells.choices(c))
        for q, c in zip(rows["question"], rows["choices"], strict=True)
    ]
    done = complete_cached(
        teacher, prompt_list, settings.decoding, cache, settings.batch_size, progress
    )
    decoding = provenance.stable_json(settings.decoding.key())
    records = []
    for row, prompt, comp in zip(rows.itertuples(index=False), prompt_list, done, strict=True):
        choices = cells.choices(row.choices)
        rationale, raw = prompts.split_cot(comp.text)
        parsed = answers.parse(raw, row.task_type, choices)
        correct = parsed is not None and bool(
            answers.is_correct(parsed, row.answer, row.task_type, choices)
        )
        usable = bool(rationale)
        records.append(
            {
                "example_id": row.example_id,
                "task": row.task,
                "split": row.split,
                "teacher": teacher_name,
                "prompt": prompt,
                "prompt_hash": prompt_hash(prompt),
                "rationale": rationale,
                "parsed_answer": parsed,
                "answer": row.answer,
                "correct": correct,
                "kept": usable and (correct or settings.filter == "all"),
                "prompt_tokens": comp.prompt_tokens,
                "rationale_tokens": comp.completion_tokens,
                "decoding": decoding,
            }
        )
    out = pd.DataFrame.from_records(records, columns=tables.schema("rationales").names)
    for split, part in out.groupby("split", sort=False):
        log.info(
            "%s/%s: kept %d, dropped %d of %d (filter %s; %d correct)",
            teacher_name,
            split,
            part["kept"].sum(),
            (~part["kept"]).sum(),
            len(part),
            settings.filter,
            part["correct"].sum(),
        )
    return out
