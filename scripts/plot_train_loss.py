"""Rule plot_train_loss: the training curves of one study's fine-tuning runs."""

from pathlib import Path

from ftlab import logs, runs, tables, train_curves

with logs.to(snakemake.log[0]):
    train_logs = {}
    for run_dir in snakemake.input.runs:
        run = runs.run_of(Path(run_dir).as_posix())
        train_logs[run] = tables.read(Path(run_dir) / "train_log.parquet", "train_log")
    train_curves.plot(
        train_logs, snakemake.output[0], f"{snakemake.wildcards.study}: training loss"
    )
