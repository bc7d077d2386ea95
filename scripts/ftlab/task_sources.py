"""Where task rows come from: a reasoning-gym generator, a local file, or a hub dataset.

Readers return raw rows only; `tasks.py` maps columns, checks every row and splits. File and hub
readers return `[(source label, raw frame)]` so every error can name the file (or dataset split)
and the row.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ftlab import answers, solvers, task_wrappers

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
TASK_COLUMNS = [
    "example_id",
    "task",
    "split",
    "task_type",
    "question",
    "choices",
    "answer",
    "gold_rationale",
    "metadata",
]


def example_id(task: str, question: str, choices: list[str] | None) -> str:
    """Stable content hash: the same question (and choices) always gets the same id."""
    key = json.dumps([task, question, choices], ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# --- embedded -------------------------------------------------------------------------------------


def embedded(s) -> pd.DataFrame:
    """Seeded reasoning-gym examples with unique questions and gold rationales (not yet split).

    `s` is a `tasks.TaskSpec`.
    """
    import reasoning_gym

    generator = s.generator or s.name
    need = sum(s.sizes.values())
    tried = max(4 * need + 100, 1000)
    config, wrap = task_wrappers.split_wrap(s.generator_config)  # wrap: a few-label task over it
    wrapper = task_wrappers.Wrapper(wrap, s.seed, need) if wrap else None
    dataset = reasoning_gym.create_dataset(generator, seed=s.seed, size=tried, **config)
    rows, seen, duplicates, unsolved, disagreed = [], set(), 0, 0, 0
    for idx in range(tried):
        if len(rows) == need:
            break
        item = dataset[idx]
        solution = None
        if wrapper:
            item, solution = wrapper.transform(item, solvers.solve(generator, item, config), idx)
        question, answer = str(item["question"]).strip(), str(item["answer"]).strip()
        eid = example_id(s.name, question, None)
        if eid in seen:
            duplicates += 1
            continue
        seen.add(eid)
        if wrapper and not wrapper.accept(answer):
            continue  # its label's share is full
        if not wrapper:
            solution = solvers.solve(generator, item, config)
        rationale = None
        if solution is None:
            unsolved += 1
        elif answers.is_correct(answers.parse(solution.answer, s.task_type), answer, s.task_type):
            rationale = solution.rationale
        else:
            disagreed += 1
        meta = json.dumps(item.get("metadata", {}), sort_keys=True, default=str)
        rows.append([eid, s.name, None, s.task_type, question, None, answer, rationale, meta])
    if len(rows) < need:
        raise ValueError(
            f"tasks.{s.name}.sizes: generator {generator!r} gave only {len(rows)} unique questions "
            f"in {tried} draws, but the sizes ask for {need}; lower the sizes or widen generator_config"
        )
    log.info("task %s: %d repeated questions dropped while drawing %d", s.name, duplicates, need)
    if unsolved:
        log.warning("task %s: no ftlab solver for %r; gold_rationale is None", s.name, generator)
    if disagreed:
        log.warning(
            "task %s: %d solver answers disagreed with the generator; their gold_rationale is None",
            s.name,
            disagreed,
        )
    return pd.DataFrame(rows, columns=TASK_COLUMNS)


# --- local files ----------------------------------------------------------------------------------


def read_file(path: str) -> list[tuple[str, pd.DataFrame]]:
    """[(source label, raw frame)] of a local .jsonl / .csv / .parquet file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: task file not found")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return [(str(path), _read_jsonl(p))]
    if suffix == ".csv":
        # undecodable bytes survive as surrogates, so the row that holds them can be named
        df = pd.read_csv(p, dtype=object, keep_default_na=False, encoding_errors="surrogateescape")
        return [(str(path), df.replace("", None))]
    if suffix in (".parquet", ".pq"):
        return [(str(path), pd.read_parquet(p))]
    raise ValueError(
        f"{path}: unsupported task file type {suffix!r} (use .jsonl, .csv or .parquet)"
    )


def _read_jsonl(p: Path) -> pd.DataFrame:
    """One dict per line; a line that is not a JSON object becomes a row with `__error__`."""
    records = []
    with open(p, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            if not line.strip():
                records.append({"__error__": "empty line"})
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                obj = {"__error__": f"invalid JSON ({e.msg})", "__raw__": line.strip()}
            if not isinstance(obj, dict):
                obj = {"__error__": "not a JSON object", "__raw__": line.strip()}
            records.append(obj)
    while records and records[-1].get("__error__") == "empty line":
        records.pop()  # trailing blank lines are not rows
    return pd.DataFrame.from_records(records)


# --- hub datasets ---------------------------------------------------------------------------------


def read_hf(s) -> list[tuple[str, pd.DataFrame]]:
    """[(source label, frame with a `__split__` column)] for every mapped source split.

    `s` is a `tasks.TaskSpec`. One source split may feed several ftlab splits
    (`hf_splits: {train: train, validation: train}`): a seeded draw of `sizes.validation` rows
    becomes validation and the rest train, so datasets without a dev split still get one.
    """
    import datasets

    local = Path(s.path)
    if local.is_dir() and any((local / f).exists() for f in ("dataset_dict.json", "state.json")):
        loaded = datasets.load_from_disk(str(local))
        if isinstance(loaded, datasets.Dataset):
            loaded = datasets.DatasetDict({"train": loaded})
        available = list(loaded)

        def load(split):
            return loaded[split]
    else:
        available = None

        def load(split):
            return datasets.load_dataset(s.path, s.hf_name, split=split, revision=s.revision)

    mapping = s.hf_splits
    if not mapping:
        if available is None:
            available = list(
                datasets.get_dataset_split_names(s.path, s.hf_name, revision=s.revision)
            )
        mapping = {split: split for split in SPLITS if split in available}
        if not mapping:
            raise ValueError(
                f"tasks.{s.name}.hf_splits: {s.path} has splits {available}; map them "
                f"to {list(SPLITS)}"
            )
    feeds: dict[str, list[str]] = {}
    for split, source_split in mapping.items():
        if split not in SPLITS:
            raise ValueError(f"tasks.{s.name}.hf_splits: {split!r} is not one of {list(SPLITS)}")
        if available is not None and source_split not in available:
            raise ValueError(
                f"tasks.{s.name}.hf_splits.{split}: {s.path} has no split "
                f"{source_split!r} (has {available})"
            )
        feeds.setdefault(source_split, []).append(split)
    frames = []
    for source_split, splits in feeds.items():
        df = load(source_split).to_pandas()
        labels = _share(len(df), splits, s) if len(splits) > 1 else splits[0]
        frames.append((f"{s.path}[{source_split}]", df.assign(__split__=labels)))
    return frames


def _share(n: int, splits: list[str], s) -> np.ndarray:
    """Split labels for `n` rows of one source split feeding several ftlab splits.

    Seeded; test and validation take `sizes` rows each (in that order), train takes the rest.
    """
    order = sorted(splits, key=lambda sp: (sp == "train", SPLITS.index(sp)))
    perm = np.random.default_rng(s.seed).permutation(n)
    labels = np.full(n, order[-1], dtype=object)
    start = 0
    for split in order[:-1]:
        take = min(s.sizes[split], n - start)
        labels[perm[start : start + take]] = split
        start += take
    return labels
