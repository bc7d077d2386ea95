# ftlab: how fine-tuning changes an LLM's reasoning, as one chain of reproducible artifacts.
# The default config.yaml is the embedded, offline, CPU experiment; see README.md, docs/design.md.


# A --configfile on the command line replaces config.yaml instead of being merged into it, so a
# small experiment does not inherit the default's tasks and models.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/tasks.smk"
include: "rules/models.smk"
include: "rules/evaluate.smk"
include: "rules/rationales.smk"
include: "rules/distillation.smk"
include: "rules/data_scaling.smk"
include: "rules/generalization.smk"
include: "rules/response_source.smk"
include: "rules/finetune.smk"
include: "rules/faithfulness.smk"
include: "rules/analysis.smk"


rule all:
    default_target: True
    input:
        all_targets(),


rule foundation:
    """Only the foundation stages: task tables, tokenizer and models, base evaluations
    (`snakemake --cores all foundation`)."""
    input:
        foundation_targets(),
