"""Make the ftlab library importable from tests (rule scripts get it from Snakemake's sys.path)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

try:  # the machine is shared: tests use one torch thread
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass
