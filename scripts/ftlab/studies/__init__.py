"""The studies: one package per seed paper, each adding trainsets, scoring and claims on top of
the shared stages (tasks, models, rationales, finetune, evaluate). Core modules never import a
study, and studies never import each other, so a study's edits rerun only that study.

Adding a study `foo`:
1. `studies/foo/__init__.py`: what it is, its variants, `check(config) -> list[str]` (one line
   per problem, naming the key path; run before any job, after the schema).
2. Its modules (`trainset.py`, `summary.py`, ...), its own table schemas registered with
   `tables.register` in the module that writes them, and its claims rows (`ftlab.claims`).
3. `rules/foo.smk` with its rules and input functions, a `studies.foo` section in
   `resources/config.schema.yaml`, and one line in `STUDIES` below.
Run ids and result paths come from `ftlab.runs`, statistics from `ftlab.stats`.
"""

# every study the workflow knows, in report order (rules/common.smk checks the configured ones)
STUDIES = ("distillation", "data_scaling", "faithfulness", "generalization", "response_source")
