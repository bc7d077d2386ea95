"""Distillation (Wadhwa, Amir, Wallace 2024, *Investigating Mysteries of CoT-Augmented
Distillation*): a student fine-tuned on teacher rationales placed before or after the label, or on
shuffled, key-token or random-token versions of them, scored without a CoT at test time."""

from ftlab import settings

# the training targets, in the order tables list them
VARIANTS = (
    "label_only",  # direct prompt -> answer
    "cot_before",  # CoT prompt -> rationale, answer
    "cot_after",  # direct prompt -> answer, rationale
    "cot_after_shuffled",  # ... rationale words in a seeded random order
    "cot_after_key_tokens",  # ... only the top-k% most important rationale words
    "cot_after_random_tokens",  # ... as many rationale words chosen at random (the control)
)
NEEDS_TEACHER = ("cot_after_key_tokens",)  # variants whose trainset runs the teacher


def check(config: dict) -> list[str]:
    """Names the study refers to must be declared (the JSON schema cannot say so)."""
    study = config["studies"]["distillation"]
    problems = []
    for key in ("teacher", "student"):
        if study[key] not in config["models"]:
            problems.append(
                f"studies.distillation.{key}: unknown model {study[key]!r} "
                f"(known: {sorted(config['models'])})"
            )
    for i, task in enumerate(study["tasks"]):
        if task not in config["tasks"]:
            problems.append(
                f"studies.distillation.tasks[{i}]: unknown task {task!r} "
                f"(known: {sorted(config['tasks'])})"
            )
    for variant in study.get("eval_modes") or {}:
        if variant not in VARIANTS:
            problems.append(
                f"studies.distillation.eval_modes.{variant}: not a distillation variant "
                f"(known: {list(VARIANTS)})"
            )
    problems += settings.empty_test_splits(config, study["tasks"], "studies.distillation.tasks")
    return problems
