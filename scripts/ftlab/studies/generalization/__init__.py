"""Generalization (Yang et al. 2024, *Unveiling the Generalization Power of Fine-Tuned LLMs*): the
student fine-tuned on one (task, domain) source, plainly or with in-context demonstrations in its
training prompts (FTICL, demonstrations masked from the loss), then scored on every (task, domain)
test set, zero-shot and k-shot: the train x eval matrix. The paper: classification fine-tuning
transfers positively to other domains of the same task, generation fine-tuning often negatively,
and FTICL keeps more of the model's generalization, notably for generation tasks.

Config (`studies.generalization`): `tasks` maps each task to its `kind` (classification: scored by
restricted log-likelihood over its label set; generation: ROUGE-L and exact match) and its
`domains`, each an entry of `tasks:` (embedded: the same reasoning-gym generator with another
generator_config; real: a preset of resources/presets/tasks.yaml, e.g. sentiment on imdb,
yelp_polarity and amazon_polarity reviews). `sources` are the domains fine-tuned on (default: the
first domain of each task). A run is "generalization/{plain|fticl}/{source}/seed{n}".

A cell is (run group, eval task, eval setting): in_domain (the source itself), cross_domain
(another domain of the source's task) or cross_task (any domain of another task).

The real path is the same study over hub datasets (each a preset; `source: file` + `path:` reads
a local export with the hub's columns), e.g. with an instruct student fine-tuned by LoRA:

    tasks:
      imdb: {preset: imdb, sizes: {train: 2000, validation: 100, test: 500}}
      yelp_polarity: {preset: yelp_polarity, sizes: {train: 2000, validation: 100, test: 500}}
      amazon_polarity: {preset: amazon_polarity, sizes: {train: 2000, validation: 100, test: 500}}
      mrpc: {preset: mrpc}
      paws: {preset: paws}
      mnli: {preset: mnli}
      snli: {preset: snli}
      xsum: {preset: xsum}
      cnn_dailymail: {preset: cnn_dailymail}
      squad_qg: {preset: squad_qg}
    studies:
      generalization:
        student: smollm2
        tasks:
          sentiment: {kind: classification, domains: [imdb, yelp_polarity, amazon_polarity]}
          paraphrase: {kind: classification, domains: [mrpc, paws]}
          nli: {kind: classification, domains: [mnli, snli]}
          summarisation: {kind: generation, domains: [xsum, cnn_dailymail]}
          question_generation: {kind: generation, domains: [squad_qg]}
        finetune: {method: lora, max_seq_len: 2048}
"""

from __future__ import annotations

from ftlab import runs, settings

STUDY = "generalization"
VARIANTS = ("plain", "fticl")  # FTICL: k demonstrations prepended to every training prompt
CELL_TYPES = ("in_domain", "cross_domain", "cross_task")
EVAL_SETTINGS = ("zero_shot", "k_shot")


def groups(study: dict) -> dict[str, dict]:
    """task -> {kind, domains, rouge_tokens} (rouge_tokens filled in)."""
    return {
        task: {
            "kind": spec["kind"],
            "domains": list(spec["domains"]),
            "rouge_tokens": spec.get("rouge_tokens") or "words",
        }
        for task, spec in study["tasks"].items()
    }


def eval_tasks(study: dict) -> list[str]:
    """Every (task, domain) test set: the domains of every task, in config order."""
    return [d for spec in study["tasks"].values() for d in spec["domains"]]


def task_of(study: dict) -> dict[str, str]:
    """domain (a `tasks:` entry) -> its task."""
    return {d: task for task, spec in study["tasks"].items() for d in spec["domains"]}


def sources(study: dict) -> list[str]:
    """The domains fine-tuned on: `sources`, or the first domain of each task."""
    return list(study.get("sources") or [s["domains"][0] for s in study["tasks"].values()])


def run_ids(study: dict) -> list[str]:
    return [
        runs.run_id(STUDY, variant, source, seed)
        for source in sources(study)
        for variant in study["variants"]
        for seed in study["seeds"]
    ]


def cell_type(study: dict, source: str, eval_task: str) -> str:
    if source == eval_task:
        return "in_domain"
    of = task_of(study)
    return "cross_domain" if of[source] == of[eval_task] else "cross_task"


def check(config: dict) -> list[str]:
    """What the JSON schema cannot say: names that must exist, one task per domain, sources among
    the domains, and train splits large enough for the demonstrations and the trainset."""
    where = f"studies.{STUDY}"
    study = config["studies"][STUDY]
    problems = []
    if study["student"] not in config["models"]:
        problems.append(
            f"{where}.student: unknown model {study['student']!r} "
            f"(known: {sorted(config['models'])})"
        )
    seen: dict[str, str] = {}
    for task, spec in study["tasks"].items():
        for i, domain in enumerate(spec["domains"]):
            key = f"{where}.tasks.{task}.domains[{i}]"
            if domain not in config["tasks"]:
                problems.append(
                    f"{key}: unknown task {domain!r} (known: {sorted(config['tasks'])})"
                )
            elif domain in seen:
                problems.append(f"{key}: {domain!r} is already a domain of task {seen[domain]!r}")
            seen.setdefault(domain, task)
        if spec.get("rouge_tokens", "words") != "words" and spec["kind"] != "generation":
            problems.append(
                f"{where}.tasks.{task}.rouge_tokens: {spec['rouge_tokens']!r} scores generation "
                "tasks only, and this task's kind is classification"
            )
    for i, source in enumerate(study.get("sources") or []):
        if source not in seen:
            problems.append(
                f"{where}.sources[{i}]: {source!r} is not a domain of any task in "
                f"{where}.tasks (domains: {sorted(seen)})"
            )
    k, size = study["k"], study.get("train_size")
    needs_k = "fticl" in study["variants"]
    for domain in seen:
        spec = config["tasks"].get(domain)
        train = ((spec or {}).get("sizes") or {}).get("train")
        if train is None:
            continue
        if "k_shot" in study["eval_settings"] and train < k:
            problems.append(
                f"tasks.{domain}.sizes.train: {train}, fewer than the k={k} demonstrations "
                f"{where}.k draws from it for k-shot evaluation"
            )
        if domain in sources(study):
            if size is not None and size > train:
                problems.append(
                    f"{where}.train_size: {size} is more than the train split of source "
                    f"{domain!r} (tasks.{domain}.sizes.train = {train})"
                )
            if needs_k and min(train, size or train) <= k:
                problems.append(
                    f"{where}.k: FTICL draws {k} demonstrations from the other training examples "
                    f"of source {domain!r}, which has {min(train, size or train)}"
                )
    for task, spec in study["tasks"].items():
        key = f"{where}.tasks.{task}.domains"
        problems += settings.empty_test_splits(config, list(spec["domains"]), key)
    return problems
