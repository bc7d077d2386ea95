# Input functions, settings and targets of rules/analysis.smk (kept beside it; `snakemake --lint`
# wants rules and functions in separate files).


def study_targets(wildcards=None):
    """Every final artifact the other stages request (all targets but this file's own)."""
    return [t for fn in TARGET_FUNCTIONS if fn is not analysis_targets for t in fn()]


def summary_tables():
    """Names of the studies' summary tables (results/analysis/{name}.parquet) among the targets."""
    prefix, suffix = f"{RESULTS}/analysis/", ".parquet"
    return sorted(
        t[len(prefix) : -len(suffix)]
        for t in study_targets()
        if t.startswith(prefix) and t.endswith(suffix) and "/" not in t[len(prefix) :]
    )


def claims_tables(wildcards=None):
    """Each configured study's claims rows (results/analysis/claims/{study}.parquet)."""
    prefix = f"{RESULTS}/analysis/claims/"
    return sorted(t for t in study_targets() if t.startswith(prefix))


def audited(wildcards=None):
    return [*study_targets(), *SCORECARD]


def train_loss_studies():
    """Configured studies with fine-tuning runs of their own: each gets a training-curve plot."""
    return [s for s, fn in STUDY_RUNS.items() if s in config["studies"] and fn()]


def train_loss_inputs(wildcards):
    return {"runs": [model_dir(run) for run in STUDY_RUNS[wildcards.study]()]}


def analysis_targets():
    names = ["audit", *summary_tables()]
    tables_ = [f"{RESULTS}/report/tables/{n}.html" for n in names]
    studies_ = [Path(t).stem for t in claims_tables()]
    tables_ += [f"{RESULTS}/report/claims/{s}.html" for s in studies_]
    plots = [f"{RESULTS}/plots/train_loss/{s}.png" for s in train_loss_studies()]
    return [
        f"{RESULTS}/analysis/lab.duckdb",
        f"{RESULTS}/report/scorecard.html",
        *tables_,
        *plots,
    ]


SCORECARD = [
    f"{RESULTS}/analysis/scorecard.parquet",
    f"{RESULTS}/analysis/claims.parquet",
]
# the papers' headline claims
HEADLINES = str(Path(workflow.basedir) / "resources" / "scorecard.yaml")


TARGET_FUNCTIONS.append(analysis_targets)
