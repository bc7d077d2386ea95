# The scorecard, the audit of the whole chain, the DuckDB lab database and the report's tables.
# The audit and the lab depend on every final artifact of the other stages (study_targets) and on
# the scorecard, so they rerun whenever any artifact changes.


include: "inputs/analysis.smk"


rule scorecard:
    """Every seed paper's headline claims with this run's verdicts (all claims rows gathered)."""
    input:
        claims=claims_tables,
        headlines=HEADLINES,
    output:
        scorecard=SCORECARD[0],
        claims=SCORECARD[1],
    log:
        "logs/analysis/scorecard.log",
    benchmark:
        "benchmarks/analysis/scorecard.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        studies=list(config["studies"]),
        code=code_hash("scorecard.py"),
    script:
        "../scripts/scorecard.py"


rule check_gates:
    """Can this run resolve the claims? Learnable-with-room students, reasoning teachers,
    pretrained students, intervals narrow enough (`ftlab gates` prints the same)."""
    input:
        unpack(gates_inputs),
    output:
        f"{RESULTS}/analysis/gates.parquet",
    log:
        "logs/analysis/check_gates.log",
    benchmark:
        "benchmarks/analysis/check_gates.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        plan=gates_plan(),
        thresholds=config["analysis"]["gates"],
        code=code_hash("check_gates.py"),
    script:
        "../scripts/check_gates.py"


rule render_gates:
    """The gates, beside the scorecard: a failed gate is a line in the report."""
    input:
        f"{RESULTS}/analysis/gates.parquet",
    output:
        report(
            f"{RESULTS}/report/gates.html",
            category="0 scorecard",
            subcategory="gates",
            caption="../report/gates.rst",
            labels={"table": "gates"},
        ),
    log:
        "logs/analysis/render_gates.log",
    benchmark:
        "benchmarks/analysis/render_gates.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        title="Gates: can this run resolve the claims?",
        max_rows=1000,
        code=code_hash("render_table.py"),
    script:
        "../scripts/render_table.py"


rule render_scorecard:
    """The scorecard as the report's first section (categories sort by name: "0 ...")."""
    input:
        SCORECARD[0],
    output:
        report(
            f"{RESULTS}/report/scorecard.html",
            category="0 scorecard",
            caption="../report/scorecard.rst",
            labels={"table": "scorecard"},
        ),
    log:
        "logs/analysis/render_scorecard.log",
    benchmark:
        "benchmarks/analysis/render_scorecard.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        title="Replication scorecard",
        max_rows=1000,
        code=code_hash("render_table.py"),
    script:
        "../scripts/render_table.py"


rule render_claims:
    """A study's claims rows, first in its report section."""
    input:
        f"{RESULTS}/analysis/claims/{{study}}.parquet",
    output:
        report(
            f"{RESULTS}/report/claims/{{study}}.html",
            category="{study}",
            subcategory="claims",
            caption="../report/claims.rst",
            labels={"table": "claims"},
        ),
    log:
        "logs/analysis/render_claims/{study}.log",
    benchmark:
        "benchmarks/analysis/render_claims/{study}.tsv"
    wildcard_constraints:
        study=r"[A-Za-z0-9_]+",
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        title="claims",
        max_rows=1000,
        code=code_hash("render_table.py"),
    script:
        "../scripts/render_table.py"


rule plot_train_loss:
    """A study's training curves: loss per step, mean over seeds, one line per design cell."""
    input:
        unpack(train_loss_inputs),
    output:
        report(
            f"{RESULTS}/plots/train_loss/{{study}}.png",
            category="{study}",
            subcategory="training",
            caption="../report/train_loss.rst",
        ),
    log:
        "logs/analysis/plot_train_loss/{study}.log",
    benchmark:
        "benchmarks/analysis/plot_train_loss/{study}.tsv"
    wildcard_constraints:
        study=r"[A-Za-z0-9_]+",
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=code_hash("plot_train_loss.py"),
    script:
        "../scripts/plot_train_loss.py"


rule audit:
    """Recompute every recorded input hash under results/; record findings and provenance edges."""
    input:
        audited,
    output:
        report=f"{RESULTS}/analysis/audit.parquet",
        provenance=f"{RESULTS}/analysis/provenance.parquet",
    log:
        "logs/analysis/audit.log",
    benchmark:
        "benchmarks/analysis/audit.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        fail=config["analysis"]["fail_on_audit_findings"],
        code=code_hash("audit.py"),
    script:
        "../scripts/audit.py"


rule build_lab:
    """results/analysis/lab.duckdb: one DuckDB view per artifact family (see ftlab/lab.py)."""
    input:
        artifacts=audited,
        provenance=rules.audit.output.provenance,
        audit=rules.audit.output.report,
    output:
        f"{RESULTS}/analysis/lab.duckdb",
    log:
        "logs/analysis/build_lab.log",
    benchmark:
        "benchmarks/analysis/build_lab.tsv"
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=code_hash("build_lab.py"),
    script:
        "../scripts/build_lab.py"


rule render_table:
    """An analysis table (a study's summary, or the audit) as HTML, in its study's report section."""
    input:
        f"{RESULTS}/analysis/{{name}}.parquet",
    output:
        report(
            f"{RESULTS}/report/tables/{{name}}.html",
            category="{name}",
            subcategory="tables",
            caption="../report/table.rst",
            labels={"table": "{name}"},
        ),
    log:
        "logs/analysis/render_table/{name}.log",
    benchmark:
        "benchmarks/analysis/render_table/{name}.tsv"
    wildcard_constraints:
        name=r"[A-Za-z0-9_]+",
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        max_rows=500,
        code=code_hash("render_table.py"),
    script:
        "../scripts/render_table.py"
