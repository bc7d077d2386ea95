"""Response source (Ren, Wu, Liu 2024, *I Learn Better If You Speak My Language*): the student
fine-tuned on the same questions with responses from different sources, the same final answers and
the same number of optimiser steps; which source trains it best, how familiar each source is to
it before fine-tuning (perplexity), and how much it forgets of the other tasks it knew.

Sources (the variant part of a run id: "response_source/{source}/{task}/seed{n}"):

* `gold`             the task's gold rationale, in a human style (`style.py`) unless
                     `gold_style: original`
* `teacher`          the teacher's own rationale (shared rationale cache, `kept` rows)
* `teacher_rewrite`  the teacher rewriting the gold in its own words (`rewrite.py`): a rewrite
                     prompt through the cached teacher path (real models), or gold-constrained
                     decoding (embedded teachers, which cannot follow an instruction)
* `self`             the student's own kept rationales (shared rationale cache), optional

Training targets are CoT completions (`prompts.cot_prompt` -> `prompts.cot_completion`) ending in
the gold answer. A question missing from gold, teacher or self is dropped from every source
(`trainset.align`, counts logged and stored); the rewrite is made for exactly the kept questions.
"""

from __future__ import annotations

from ftlab import settings

STUDY = "response_source"
SOURCES = ("gold", "teacher", "teacher_rewrite", "self")
REFERENCE = "gold"  # every comparison is against the gold responses
REWRITE = "teacher_rewrite"
ALIGNED = ("gold", "teacher", "self")  # sources whose missing questions are dropped from all
REWRITE_METHODS = ("auto", "prompt", "constrained")
# placeholders of `rewrite_prompt` (rewrite.render_prompt fills them)
PROMPT_FIELDS = ("question", "question_block", "choices", "rationale", "answer", "cot_prompt")


def rewrite_method(config: dict) -> str:
    """`prompt` or `constrained`: `auto` is constrained for an embedded teacher, else prompt."""
    study = config["studies"][STUDY]
    method = study["rewrite_method"]
    if method != "auto":
        return method
    teacher = config["models"].get(study["teacher"]) or {}
    return "constrained" if teacher.get("source") == "embedded" else "prompt"


def forgetting_tasks(config: dict) -> list[str]:
    """The other tasks forgetting is measured on: `forgetting_tasks`, or (null) the tasks the
    student knows: an embedded student's worked-example pretraining tasks, any other student's
    every configured task; the study's own tasks left out either way."""
    study = config["studies"][STUDY]
    own = set(study["tasks"])
    listed = study.get("forgetting_tasks")
    if listed is None:
        student = config["models"].get(study["student"]) or {}
        if student.get("source") == "embedded":
            listed = (student.get("pretrain") or {}).get("tasks") or []
        else:
            listed = list(config["tasks"])
    return [t for t in dict.fromkeys(listed) if t not in own]


def _template_problems(template: str, where: str) -> list[str]:
    import string

    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        return [f"{where}: not a format string ({e}); write a literal brace as {{{{ or }}}}"]
    unknown = sorted({n for n in names if n not in PROMPT_FIELDS})
    if unknown:
        return [f"{where}: unknown placeholder(s) {unknown} (known: {list(PROMPT_FIELDS)})"]
    if not {"question", "question_block", "cot_prompt"} & set(names):
        return [f"{where}: names no {{question}}, {{question_block}} or {{cot_prompt}}"]
    return []


def check(config: dict) -> list[str]:
    """What the JSON schema cannot say: names that must exist, a gold arm to compare with, test
    modes that are evaluated, a rewrite prompt that can be filled, a teacher that can do it."""
    where = f"studies.{STUDY}"
    study = config["studies"][STUDY]
    problems = []
    for key in ("teacher", "student"):
        if study[key] not in config["models"]:
            problems.append(f"{where}.{key}: unknown model {study[key]!r} "
                            f"(known: {sorted(config['models'])})")  # fmt: skip
    for key in ("tasks", "forgetting_tasks"):
        for i, task in enumerate(study.get(key) or []):
            if task not in config["tasks"]:
                problems.append(f"{where}.{key}[{i}]: unknown task {task!r} "
                                f"(known: {sorted(config['tasks'])})")  # fmt: skip
    if problems:
        return problems
    if REFERENCE not in study["sources"]:
        problems.append(f"{where}.sources: {study['sources']} lacks {REFERENCE!r}, the arm every "
                        "claim compares with")  # fmt: skip
    if study["mode"] not in config["evaluation"]["modes"]:
        problems.append(f"{where}.mode: {study['mode']!r} is not in evaluation.modes "
                        f"{config['evaluation']['modes']} (the base student is evaluated with those)")  # fmt: skip
    for source in study["sources"]:
        modes = (study.get("eval_modes") or {}).get(source) or config["evaluation"]["modes"]
        if study["mode"] not in modes:
            problems.append(f"{where}.eval_modes.{source}: {modes} lacks the study's mode "
                            f"{study['mode']!r}")  # fmt: skip
    for source in study.get("eval_modes") or {}:
        if source not in SOURCES:
            problems.append(f"{where}.eval_modes.{source}: not a source (known: {list(SOURCES)})")
    if {"teacher", "self"} & set(study["sources"]) and "train" not in config["rationales"][
        "splits"
    ]:
        problems.append("rationales.splits: the teacher and self sources read train-split "
                        f"rationales; add train to {config['rationales']['splits']}")  # fmt: skip
    if REWRITE in study["sources"]:
        problems += _template_problems(study["rewrite_prompt"], f"{where}.rewrite_prompt")
        teacher = config["models"][study["teacher"]]
        if rewrite_method(config) == "constrained":
            if teacher.get("source") == "openai":
                problems.append(f"{where}.rewrite_method: constrained decoding needs the teacher's "
                                "logits; an openai teacher takes rewrite_method prompt")  # fmt: skip
            for i, task in enumerate(study["tasks"]):
                kind = config["tasks"][task].get("task_type")
                if kind != "numeric":
                    problems.append(
                        f"{where}.tasks[{i}]: constrained rewriting fixes the gold's numbers, and "
                        f"{task!r} is {kind}; use rewrite_method prompt with a teacher that "
                        "follows instructions"
                    )
    problems += settings.empty_test_splits(config, study["tasks"], f"{where}.tasks")
    problems += settings.empty_test_splits(config, forgetting_tasks(config),
                                           f"{where}.forgetting_tasks")  # fmt: skip
    return problems
