"""Evaluate a model (base or fine-tuned) on a task's test split, directly and with CoT.

One row per example x mode, in the "eval" table. `direct` asks for the answer at once and stops at
the end of the line; `cot` lets the model write a rationale, then reads the "Answer:" line. A
generation whose answer cannot be parsed is a format error (parse_ok False), counted apart from a
wrong answer, and never correct.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from ftlab import answers, cells, generate, models, prompts
from ftlab.settings import ConfigError
from ftlab.settings import from_config as settings_from_config

log = logging.getLogger(__name__)

MODES = ("direct", "cot")


@dataclass(frozen=True)
class EvalSettings:
    modes: tuple[str, ...] = MODES
    max_new_tokens_direct: int = 16
    max_new_tokens_cot: int = 160
    batch_size: int = 64
    limit: int | None = None

    @classmethod
    def from_config(cls, cfg: dict, where: str = "evaluation") -> EvalSettings:
        """From the `evaluation:` settings of a job (not its `models`/`tasks` target lists: the
        rule leaves those out)."""
        s = settings_from_config(
            cls,
            cfg,
            where,
            max_new_tokens_direct=int,
            max_new_tokens_cot=int,
            batch_size=int,
            limit=lambda v: None if v is None else int(v),
        )
        if bad := [m for m in s.modes if m not in MODES]:
            raise ConfigError(f"{where}.modes: unknown mode(s) {bad}; known: {list(MODES)}")
        return s


def evaluation_examples(table: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """The test rows of a task table, in table order (first `limit` if set)."""
    test = table[table["split"] == "test"]
    if test.empty:
        tasks = sorted(table["task"].unique()) if "task" in table else []
        raise ValueError(f"task table for {tasks} has no test split rows")
    return (test if limit is None else test.head(limit)).reset_index(drop=True)


def score_mode(
    model, tokenizer, test: pd.DataFrame, run: str, mode: str, s: EvalSettings
) -> pd.DataFrame:
    """Generate and score every test example in one mode; rows of the "eval" table."""
    choices = [cells.choices(c) for c in test["choices"]]
    make_prompt = prompts.direct_prompt if mode == "direct" else prompts.cot_prompt
    texts = [make_prompt(q, c) for q, c in zip(test["question"], choices, strict=True)]
    gens = generate.greedy(
        model,
        tokenizer,
        texts,
        max_new_tokens=s.max_new_tokens_direct if mode == "direct" else s.max_new_tokens_cot,
        batch_size=s.batch_size,
        stop_at_newline=mode == "direct",
    )
    rows = []
    for ex, ch, prompt, gen in zip(test.itertuples(index=False), choices, texts, gens, strict=True):
        if mode == "direct":
            rationale, raw = None, prompts.split_direct(gen.text)
        else:
            rationale, raw = prompts.split_cot(gen.text)
        parsed = answers.parse(raw, ex.task_type, ch)
        rows.append(
            {
                "example_id": ex.example_id,
                "task": ex.task,
                "run": run,
                "mode": mode,
                "prompt": prompt,
                "generation": gen.text,
                "rationale": rationale,
                "parsed_answer": parsed,
                "parse_ok": parsed is not None,
                "answer": ex.answer,
                "correct": answers.is_correct(parsed, ex.answer, ex.task_type, ch),
                "prompt_tokens": gen.prompt_tokens,
                "generated_tokens": gen.generated_tokens,
            }
        )
    return pd.DataFrame(rows)


def run(
    model_dir, table: pd.DataFrame, run: str, settings: dict, threads: int
) -> tuple[pd.DataFrame, str]:
    """(the "eval" table of `run` on the task in `table`, the device it ran on)."""
    s = EvalSettings.from_config(settings)
    models.set_threads(threads)
    test = evaluation_examples(table, s.limit)
    model, tokenizer = models.load(model_dir)
    device = model.device.type
    log.info(
        "evaluating %s on %d test examples of %s (%s, modes %s)",
        run,
        len(test),
        sorted(test["task"].unique()),
        device,
        list(s.modes),
    )
    frames = []
    for mode in s.modes:
        frame = score_mode(model, tokenizer, test, run, mode, s)
        log.info(
            "%s %s: accuracy %.3f (%d/%d), parse failures %d",
            run,
            mode,
            frame["correct"].mean(),
            frame["correct"].sum(),
            len(frame),
            int((~frame["parse_ok"]).sum()),
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), device
