# Input functions of rules/rationales.smk (kept beside it; `snakemake --lint` wants rules and
# functions in separate files).


def rationales_code(wildcards):
    """The code hash of a teacher's rationales: the rule script's, plus the OpenAI-compatible
    backend for a teacher behind a server (it is imported by name, so only those rerun on edits).
    """
    code = code_hash("generate_rationales.py")
    if config["models"][wildcards.teacher]["source"] != "openai":
        return code
    backend = Path(workflow.basedir) / "scripts" / "ftlab" / "openai_teacher.py"
    return f"{code}/{codehash.stage_hash(backend)}"
