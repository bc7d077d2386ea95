"""Does an embedded model reason? Greedy test-set accuracy with a rationale (CoT) and without.

    .venv/bin/python bench/teacher_accuracy.py results/models/teacher \
        results/data/tasks/chain_sum.parquet results/data/tasks/leg_counting.parquet [--limit 200]

Answers are compared as numbers (the first number of the answer line). A quick check for tuning
the `models:` section of config.yaml, independent of the evaluate stage.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from ftlab import generate, models, prompts, tables  # noqa: E402

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def as_number(text: str | None) -> float | None:
    m = NUMBER.search(text or "")
    return float(m.group()) if m else None


def accuracy(model, tokenizer, frame, mode: str, batch_size: int = 64) -> float:
    """Share of `frame`'s questions answered right (as numbers) in `mode` ("cot" | "direct")."""
    if mode == "cot":
        prompts_ = [prompts.cot_prompt(q) for q in frame["question"]]
        gens = generate.greedy(
            model, tokenizer, prompts_, 160, batch_size=batch_size, progress=False
        )
        raw = [prompts.split_cot(g.text)[1] for g in gens]
    else:
        prompts_ = [prompts.direct_prompt(q) for q in frame["question"]]
        gens = generate.greedy(
            model,
            tokenizer,
            prompts_,
            16,
            batch_size=batch_size,
            stop_at_newline=True,
            progress=False,
        )
        raw = [prompts.split_direct(g.text) for g in gens]
    gold = [as_number(a) for a in frame["answer"]]
    got = [as_number(r) for r in raw]
    return sum(g is not None and g == a for g, a in zip(got, gold, strict=True)) / len(gold)


def report(model, tokenizer, table_paths, limit: int = 200) -> dict[str, dict[str, float]]:
    out = {}
    for path in table_paths:
        frame = tables.read(path, "tasks")
        test = frame[frame["split"] == "test"].head(limit)
        task = str(test["task"].iloc[0])
        out[task] = {mode: accuracy(model, tokenizer, test, mode) for mode in ("cot", "direct")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("tables", nargs="+")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    models.set_threads(args.threads)
    model, tokenizer = models.load(args.model_dir, device="cpu")
    start = time.perf_counter()
    for task, acc in report(model, tokenizer, args.tables, args.limit).items():
        print(f"{task:20s} cot {acc['cot']:.3f}  direct {acc['direct']:.3f}")
    print(f"({time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
