"""Send a job's Python logging, warnings and stray prints to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings

log = logging.getLogger("ftlab")


@contextlib.contextmanager
def to(path: str):
    """Log to `path` (and stderr) for the duration of a rule script."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = [logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)]
    root = logging.getLogger()
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    try:
        yield log
    except Exception:
        log.exception("job failed")
        raise
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
