"""Faithfulness (Lobo, Agarwal, Lakkaraju 2024, *On the Impact of Fine-Tuning on CoT Reasoning*;
tests of Lanham et al. 2023): Lanham's four tests on a model's own CoT, before and after
fine-tuning, on the same questions."""

from ftlab import settings


def check(config: dict) -> list[str]:
    """Names the study refers to must exist, and every scored model must be evaluated with CoT."""
    study = config["studies"]["faithfulness"]
    problems = []
    for key in ("models", "tasks"):
        for i, name in enumerate(study[key]):
            if name not in config[key]:
                problems.append(f"studies.faithfulness.{key}[{i}]: unknown {name!r}")
    baseline = study["baseline"]
    named = {"helper": [study["helper"]] if study["helper"] else []}
    named["baseline"] = [baseline] if isinstance(baseline, str) else list(baseline or [])
    if study["finetune_model"]:
        named["finetune_model"] = [study["finetune_model"]]
    elif study["finetune_tasks"]:
        problems.append(
            "studies.faithfulness.finetune_tasks: set finetune_model, the model to fine-tune"
        )
    for i, task in enumerate(study["finetune_tasks"]):
        if task not in config["tasks"]:
            problems.append(f"studies.faithfulness.finetune_tasks[{i}]: unknown task {task!r}")
    for key, values in named.items():
        for name in values:
            if name not in config["models"]:
                problems.append(f"studies.faithfulness.{key}: unknown model {name!r}")
    if "cot" not in config["evaluation"]["modes"] and study["models"]:
        problems.append(
            f"studies.faithfulness.models: {study['models']} are evaluated with modes "
            f"{config['evaluation']['modes']}, without cot (the faithfulness tests read its CoT): "
            "add cot to evaluation.modes"
        )
    for i, entry in enumerate(study["runs"]):
        key = f"studies.faithfulness.runs[{i}]"
        other = config["studies"].get(entry["from_study"])
        if other is None:
            problems.append(f"{key}.from_study: study {entry['from_study']!r} is not configured")
            continue
        for variant in entry["variants"]:
            if variant not in other.get("variants", []):
                problems.append(
                    f"{key}.variants: {variant!r} is not a variant of {entry['from_study']!r}"
                )
                continue
            modes = (other.get("eval_modes") or {}).get(variant) or config["evaluation"]["modes"]
            if "cot" not in modes:
                problems.append(
                    f"studies.faithfulness: {entry['from_study']}/{variant} runs are evaluated "
                    f"with modes {modes}, without cot (the faithfulness tests read its CoT): add "
                    f"cot to studies.{entry['from_study']}.eval_modes.{variant}"
                )
    problems += settings.empty_test_splits(config, study["tasks"], "studies.faithfulness.tasks")
    return problems
