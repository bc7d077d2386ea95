# ftlab: how fine-tuning changes an LLM's reasoning, as one chain of reproducible artifacts.
# The default config.yaml is the embedded, offline, CPU experiment; see README.md and DESIGN.md.


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/tasks.smk"
include: "rules/models.smk"
include: "rules/evaluate.smk"
include: "rules/rationales.smk"
include: "rules/distillation.smk"
include: "rules/finetune.smk"
include: "rules/faithfulness.smk"
include: "rules/analysis.smk"


rule all:
    input:
        all_targets(),
    default_target: True
